//! The REST API against the memory store, driven through the router in-process.

use std::net::SocketAddr;
use std::sync::Arc;

use std::sync::LazyLock;
use std::time::Duration;

use atoll_api::{ApiAuth, ApiState, Connection, Mode, router};
use atoll_auth::{Credentials, Keyring, Purpose, Standard, StaticAccess, UserClaims};
use atoll_store::{MemoryStore, Store};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

/// One user signing key for every test, and tokens signed with it.
static KEYRING: LazyLock<Keyring> = LazyLock::new(|| {
    let user = atoll_auth::keys::generate_pem().unwrap();
    let dp = atoll_auth::keys::generate_pem().unwrap();
    let entry = |kind, mesh, name, data: &'static [u8]| atoll_auth::keyring::SecretEntry {
        kind,
        mesh,
        name,
        data,
    };
    let user: &'static str = Box::leak(user.into_boxed_str());
    let dp: &'static str = Box::leak(dp.into_boxed_str());
    Keyring::build([
        entry(
            atoll_model::Kind::GlobalSecret,
            None,
            "user-token-signing-key-1",
            user.as_bytes(),
        ),
        entry(
            atoll_model::Kind::GlobalSecret,
            None,
            "zone-token-signing-key-1",
            user.as_bytes(),
        ),
        entry(
            atoll_model::Kind::Secret,
            Some("default"),
            "dataplane-token-signing-key-default-1",
            dp.as_bytes(),
        ),
    ])
});

fn user_token(name: &str, groups: &[&str]) -> String {
    KEYRING
        .issue(
            &Purpose::User,
            &UserClaims {
                name: name.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                standard: Standard::new(atoll_auth::unix_now(), Duration::from_secs(600)),
            },
        )
        .unwrap()
}

static ADMIN: LazyLock<String> =
    LazyLock::new(|| user_token("mesh-system:admin", &["mesh-system:admin"]));

/// The admin's token.
fn admin() -> &'static str {
    &ADMIN
}

struct Api {
    router: axum::Router,
    store: Arc<dyn Store>,
    slot: atoll_api::IssuerSlot,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
}

impl Api {
    fn new(mode: Mode) -> Self {
        Self::with(mode, true)
    }

    fn with(mode: Mode, localhost_is_admin: bool) -> Self {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let slot = atoll_api::IssuerSlot::default();
        let state = ApiState {
            store: store.clone(),
            mode,
            auth: ApiAuth {
                credentials: Credentials::fixed(KEYRING.clone()),
                access: StaticAccess::default(),
                localhost_is_admin,
            },
            zone_certificates: slot.clone(),
            status: None,
        };
        Api {
            router: router(state),
            store,
            slot,
        }
    }

    async fn call(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.call(builder.body(body).unwrap()).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send("PUT", path, Some(body), Some(admin())).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, Some(admin())).await
    }
}

fn mesh(name: &str) -> Value {
    json!({"type": "Mesh", "name": name})
}

fn gateway(port: u32) -> Value {
    json!({
        "type": "MeshGateway", "mesh": "default", "name": "edge",
        "selectors": [{"match": {"kuma.io/service": "edge"}}],
        "conf": {"listeners": [{"port": port, "protocol": "HTTP", "hostname": "foo.example.com"}]}
    })
}

fn causes(reply: &Reply) -> Vec<String> {
    reply.body["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_get_update_unchanged_delete() {
    let api = Api::new(Mode::Global);
    let created = api.put("/meshes/default", mesh("default")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.headers["x-atoll-outcome"], "created");

    let put = api
        .put("/meshes/default/meshgateways/edge", gateway(8080))
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text);
    let etag = put.headers[header::ETAG].to_str().unwrap().to_string();

    let again = api
        .put("/meshes/default/meshgateways/edge", gateway(8080))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["x-atoll-outcome"], "unchanged");
    assert_eq!(
        again.headers[header::ETAG].to_str().unwrap(),
        etag,
        "an identical put must not bump the version"
    );

    let changed = api
        .put("/meshes/default/meshgateways/edge", gateway(9090))
        .await;
    assert_eq!(changed.headers["x-atoll-outcome"], "updated");
    assert_ne!(changed.headers[header::ETAG].to_str().unwrap(), etag);

    let got = api.get("/meshes/default/meshgateways/edge").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["conf"]["listeners"][0]["port"], 9090);
    assert!(
        got.body["creationTime"].is_string() && got.body["modificationTime"].is_string(),
        "{}",
        got.text
    );

    let deleted = api
        .send(
            "DELETE",
            "/meshes/default/meshgateways/edge",
            None,
            Some(admin()),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let gone = api.get("/meshes/default/meshgateways/edge").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(
        gone.body["details"]
            .as_str()
            .unwrap()
            .contains("MeshGateway \"edge\" in mesh \"default\"")
    );
}

#[tokio::test]
async fn invalid_resources_answer_400_with_every_cause() {
    let api = Api::new(Mode::Global);
    api.put("/meshes/default", mesh("default")).await;
    let mut bad = gateway(70000);
    bad["conf"]["listeners"][0]["protocol"] = json!("HTTPS");
    bad["selectors"] = json!([]);
    let reply = api.put("/meshes/default/meshgateways/edge", bad).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["title"], "Bad Request");
    let mut fields = causes(&reply);
    fields.sort();
    assert_eq!(
        fields,
        [
            "conf.listeners[0].port",
            "conf.listeners[0].tls",
            "selectors"
        ]
    );
}

#[tokio::test]
async fn the_path_names_the_resource() {
    let api = Api::new(Mode::Global);
    api.put("/meshes/default", mesh("default")).await;
    let reply = api
        .put("/meshes/default/meshgateways/other", gateway(8080))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(causes(&reply), ["name"]);

    // Type, name and mesh may be left to the path.
    let mut bare = gateway(8080);
    for key in ["type", "name", "mesh"] {
        bare.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(
        api.put("/meshes/default/meshgateways/edge", bare)
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn mesh_must_exist_and_unknown_types_are_404() {
    let api = Api::new(Mode::Global);
    let reply = api
        .put("/meshes/default/meshgateways/edge", gateway(8080))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(causes(&reply), ["mesh"]);
    assert_eq!(
        api.get("/meshes/default/gateways/edge").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/meshgateways/edge").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/meshes/default/zones").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn writes_need_the_token_except_local_plaintext() {
    let api = Api::new(Mode::Global);
    let anonymous = api
        .send("PUT", "/meshes/default", Some(mesh("default")), None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let wrong = api
        .send(
            "PUT",
            "/meshes/default",
            Some(mesh("default")),
            Some("guess"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let over = |remote: &str, tls: bool| {
        let conn = Connection {
            remote: remote.parse::<SocketAddr>().unwrap(),
            tls,
            client_certificate: None,
        };
        let mut request = Request::builder()
            .method("PUT")
            .uri("/meshes/default")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(mesh("default").to_string()))
            .unwrap();
        request.extensions_mut().insert(conn);
        request
    };
    assert_eq!(
        api.call(over("10.1.2.3:4000", false)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.call(over("127.0.0.1:4000", true)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.call(over("127.0.0.1:4000", false)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn secrets_are_not_readable_anonymously() {
    let api = Api::new(Mode::Global);
    api.put("/meshes/default", mesh("default")).await;
    let secret = json!({"type": "Secret", "mesh": "default", "name": "s", "data": "c2VjcmV0"});
    assert_eq!(
        api.put("/meshes/default/secrets/s", secret).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.send("GET", "/meshes/default/secrets/s", None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.send("GET", "/secrets", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/meshes/default/secrets/s").await.body["data"],
        "c2VjcmV0"
    );
}

#[tokio::test]
async fn stale_version_is_409() {
    let api = Api::new(Mode::Global);
    let first = api.put("/meshes/default", mesh("default")).await;
    let etag = first.headers[header::ETAG].to_str().unwrap().to_string();
    let mut changed = mesh("default");
    changed["routing"] = json!({"localityAwareLoadBalancing": true});
    let request = |body: &Value| {
        Request::builder()
            .method("PUT")
            .uri("/meshes/default")
            .header(header::AUTHORIZATION, format!("Bearer {}", admin()))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, etag.clone())
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    assert_eq!(api.call(request(&changed)).await.status, StatusCode::OK);
    changed["routing"] = json!({"localityAwareLoadBalancing": false});
    let stale = api.call(request(&changed)).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
}

#[tokio::test]
async fn ownership_decides_where_a_type_is_written() {
    let global = Api::new(Mode::Global);
    global.put("/meshes/default", mesh("default")).await;
    let dp = json!({"type": "Dataplane", "mesh": "default", "name": "dp-1",
        "networking": {"address": "127.0.0.1", "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}]}});
    let refused = global
        .put("/meshes/default/dataplanes/dp-1", dp.clone())
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["details"]
            .as_str()
            .unwrap()
            .contains("zone control plane"),
        "{}",
        refused.text
    );

    let zone = Api::new(Mode::Zone {
        name: "zone-1".into(),
    });
    let refused = zone.put("/meshes/default", mesh("default")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["details"]
            .as_str()
            .unwrap()
            .contains("apply it there"),
        "{}",
        refused.text
    );
    assert_eq!(
        zone.put("/meshes/default/dataplanes/dp-1", dp).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn lists_page_and_filter() {
    let api = Api::new(Mode::Global);
    for name in ["a", "b", "c"] {
        api.put(&format!("/meshes/{name}"), mesh(name)).await;
    }
    let mut labelled = json!({"type": "Zone", "name": "zone-1", "labels": {"env": "prod"}});
    api.put("/zones/zone-1", labelled.clone()).await;
    labelled["name"] = json!("zone-2");
    labelled["labels"] = json!({"env": "dev"});
    api.put("/zones/zone-2", labelled).await;

    let page = api.get("/meshes?size=2").await;
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let next = page.body["next"].as_str().unwrap().to_string();
    assert_eq!(next, "/meshes?size=2&offset=2");
    let rest = api.get(&next).await;
    assert_eq!(rest.body["items"][0]["name"], "c");
    assert!(rest.body["next"].is_null());

    let prod = api.get("/zones?filter%5Blabel%5D=env:prod").await;
    assert_eq!(prod.body["total"], 1, "{}", prod.text);
    assert_eq!(prod.body["items"][0]["name"], "zone-1");
    assert_eq!(
        api.get("/meshes?size=0").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn deleting_a_mesh_deletes_its_resources() {
    let api = Api::new(Mode::Global);
    api.put("/meshes/default", mesh("default")).await;
    api.put("/meshes/default/meshgateways/edge", gateway(8080))
        .await;
    assert_eq!(
        api.send("DELETE", "/meshes/default", None, Some(admin()))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(api.store.list(&Default::default()).await.unwrap().total, 0);
}

#[tokio::test]
async fn yaml_in_and_out() {
    let api = Api::new(Mode::Global);
    let request = Request::builder()
        .method("PUT")
        .uri("/meshes/default")
        .header(header::AUTHORIZATION, format!("Bearer {}", admin()))
        .header(header::CONTENT_TYPE, "application/yaml")
        .header(header::ACCEPT, "application/yaml")
        .body(Body::from("type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n"))
        .unwrap();
    let reply = api.call(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/yaml");
    assert!(
        reply.text.contains("enabledBackend: ca-1"),
        "{}",
        reply.text
    );

    let broken = Request::builder()
        .method("PUT")
        .uri("/meshes/default")
        .header(header::AUTHORIZATION, format!("Bearer {}", admin()))
        .header(header::CONTENT_TYPE, "application/yaml")
        .body(Body::from("type: Mesh\nname: [unclosed\n"))
        .unwrap();
    let reply = api.call(broken).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["details"]
            .as_str()
            .unwrap()
            .contains("not valid YAML")
    );
}

#[tokio::test]
async fn index_names_the_mode() {
    let api = Api::new(Mode::Zone {
        name: "zone-1".into(),
    });
    let reply = api.get("/").await;
    assert_eq!(reply.body["mode"], "zone");
    assert_eq!(reply.body["zone"], "zone-1");
}

struct FakeCa;

impl atoll_api::ZoneCertificateIssuer for FakeCa {
    fn issue(&self, zone: &str) -> Result<atoll_api::IssuedCertificate, String> {
        Ok(atoll_api::IssuedCertificate {
            certificate: format!("cert for {zone}"),
            key: Some("key".into()),
            ca_certificate: "ca".into(),
            serial: "1".into(),
        })
    }

    fn issue_for_csr(
        &self,
        _zone: &str,
        _csr: &str,
    ) -> Result<atoll_api::IssuedCertificate, atoll_api::CsrError> {
        Err(atoll_api::CsrError::Refused("not in this test".into()))
    }
}

#[tokio::test]
async fn zone_certificates_are_issued_by_the_global_to_admins() {
    let api = Api::new(Mode::Global);
    let not_ready = api
        .send("POST", "/zones/zone-1/certificate", None, Some(admin()))
        .await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let _ = api.slot.set(Arc::new(FakeCa));
    let issued = api
        .send("POST", "/zones/zone-1/certificate", None, Some(admin()))
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text);
    assert_eq!(issued.body["certificate"], "cert for zone-1");
    assert_eq!(issued.body["caCertificate"], "ca");
    let anonymous = api
        .send("POST", "/zones/zone-1/certificate", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let bad = api
        .send("POST", "/zones/Zone_1/certificate", None, Some(admin()))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(causes(&bad), ["name"]);

    let zone = Api::new(Mode::Zone {
        name: "zone-1".into(),
    });
    let refused = zone
        .send("POST", "/zones/zone-1/certificate", None, Some(admin()))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

/// What the global installs: zone certificates from a real CA.
struct RealCa(atoll_tls::Authority);

impl atoll_api::ZoneCertificateIssuer for RealCa {
    fn issue(&self, zone: &str) -> Result<atoll_api::IssuedCertificate, String> {
        let (certificate, key) = self.0.issue_client(zone).map_err(|e| e.to_string())?;
        Ok(atoll_api::IssuedCertificate {
            serial: atoll_tls::pem_certificate_serial(&certificate).unwrap(),
            certificate,
            key: Some(key),
            ca_certificate: self.0.cert_pem().to_string(),
        })
    }

    fn issue_for_csr(
        &self,
        zone: &str,
        csr: &str,
    ) -> Result<atoll_api::IssuedCertificate, atoll_api::CsrError> {
        let certificate = self
            .0
            .issue_client_for_csr(zone, csr)
            .map_err(|e| atoll_api::CsrError::Refused(e.to_string()))?;
        Ok(atoll_api::IssuedCertificate {
            serial: atoll_tls::pem_certificate_serial(&certificate).unwrap(),
            certificate,
            key: None,
            ca_certificate: self.0.cert_pem().to_string(),
        })
    }
}

#[tokio::test]
async fn issued_zone_certificates_name_the_zone_and_chain_to_the_returned_ca() {
    let api = Api::new(Mode::Global);
    let _ = api.slot.set(Arc::new(RealCa(
        atoll_tls::Authority::generate("test KDS CA").unwrap(),
    )));
    let issued = api
        .send("POST", "/zones/zone-7/certificate", None, Some(admin()))
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text);
    assert_eq!(issued.body["zone"], "zone-7");
    let field = |name: &str| issued.body[name].as_str().unwrap().to_string();
    let (cert, key, ca) = (field("certificate"), field("key"), field("caCertificate"));
    assert!(key.contains("PRIVATE KEY"));
    assert_eq!(
        atoll_tls::verify_zone_certificate(&ca, &cert).unwrap(),
        "zone-7"
    );
    // A second request gets a new key from the same CA.
    let again = api
        .send("POST", "/zones/zone-7/certificate", None, Some(admin()))
        .await;
    assert_eq!(again.body["caCertificate"], ca.as_str());
    assert_ne!(again.body["key"], key.as_str());
}

#[tokio::test]
async fn zone_certificate_names_must_be_lower_case_dns_labels() {
    let api = Api::new(Mode::Global);
    let _ = api.slot.set(Arc::new(FakeCa));
    let long = "a".repeat(64);
    for name in ["Zone-1", "zone_1", "-zone", "zone.1", long.as_str()] {
        let reply = api
            .send(
                "POST",
                &format!("/zones/{name}/certificate"),
                None,
                Some(admin()),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.text
        );
        assert_eq!(causes(&reply), ["name"], "{name}");
    }
    // Only POST issues: a GET must not hand out keys.
    let get = api.get("/zones/zone-1/certificate").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_zone_api_sends_certificate_requests_to_the_global() {
    let zone = Api::new(Mode::Zone {
        name: "zone-1".into(),
    });
    let _ = zone.slot.set(Arc::new(FakeCa));
    let refused = zone
        .send("POST", "/zones/zone-1/certificate", None, Some(admin()))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["details"]
            .as_str()
            .unwrap()
            .contains("global control plane"),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn the_kds_ca_secret_cannot_be_changed_through_the_api() {
    let api = Api::new(Mode::Global);
    let secret = json!({"type": "GlobalSecret", "name": "atoll-kds-ca", "data": "eA=="});
    let put = api.put("/globalsecrets/atoll-kds-ca", secret).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert!(
        put.body["details"]
            .as_str()
            .unwrap()
            .contains("managed by the control plane")
    );
    let delete = api
        .send("DELETE", "/globalsecrets/atoll-kds-ca", None, Some(admin()))
        .await;
    assert_eq!(delete.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn zone_insights_are_read_only() {
    let api = Api::new(Mode::Global);
    let insight = json!({"type": "ZoneInsight", "name": "zone-1", "connected": true});
    let reply = api.put("/zoneinsights/zone-1", insight).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["details"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_and_every_documented_path_answers() {
    let api = Api::new(Mode::Global);
    let doc = api.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    assert_eq!(doc.body["openapi"], "3.0.3");
    assert!(
        api.put("/meshes/default", mesh("default"))
            .await
            .status
            .is_success()
    );
    // Each documented path, filled in, reaches a handler (not the 404 fallback).
    let mut checked = vec!["/openapi.json"];
    for (template, concrete) in [
        ("/", "/"),
        ("/zones/_overview", "/zones/_overview"),
        ("/{plural}", "/meshgateways"),
        ("/{plural}/{name}", "/meshes/default"),
        ("/meshes/{mesh}/{plural}", "/meshes/default/meshgateways"),
        (
            "/meshes/{mesh}/{plural}/{name}",
            "/meshes/default/meshgateways/none",
        ),
    ] {
        assert!(
            doc.body["paths"].get(template).is_some(),
            "{template} undocumented"
        );
        checked.push(template);
        let reply = api.get(concrete).await;
        assert!(
            reply.status == StatusCode::OK
                || (reply.status == StatusCode::NOT_FOUND && concrete.ends_with("/none")),
            "{concrete}: {} {}",
            reply.status,
            reply.text
        );
    }
    // The POST-only paths answer a POST with something other than the fallback.
    for path in [
        "/zones/{name}/certificate",
        "/tokens/dataplane",
        "/tokens/zone",
        "/tokens/user",
    ] {
        let concrete = path.replace("{name}", "zone-1");
        let reply = post_json(&api, &concrete, json!({}), Some(admin())).await;
        assert!(
            reply.status != StatusCode::NOT_FOUND || !reply.text.contains("no such path"),
            "{concrete}: {} {}",
            reply.status,
            reply.text
        );
        checked.push(path);
    }
    let mut documented: Vec<&str> = doc.body["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    documented.sort();
    checked.sort();
    assert_eq!(documented, checked, "every documented path is tried");
}

async fn post_json(api: &Api, path: &str, body: Value, token: Option<&str>) -> Reply {
    api.send("POST", path, Some(body), token).await
}

#[tokio::test]
async fn dataplane_tokens_are_issued_to_the_allowed_and_admit_what_they_say() {
    let api = Api::new(Mode::Global);
    api.put("/meshes/default", mesh("default")).await;
    let request = json!({"mesh": "default", "name": "web-1", "tags": {"kuma.io/service": ["web"]}, "validFor": "1h"});
    let anonymous = post_json(&api, "/tokens/dataplane", request.clone(), None).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    let viewer = user_token("viewer", &["viewers"]);
    let forbidden = post_json(&api, "/tokens/dataplane", request.clone(), Some(&viewer)).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
    assert!(
        forbidden.body["details"]
            .as_str()
            .unwrap()
            .contains("KUMA_ACCESS_STATIC_GENERATE_DP_TOKEN"),
        "{}",
        forbidden.text
    );

    let issued = post_json(&api, "/tokens/dataplane", request, Some(admin())).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text);
    assert_eq!(
        issued.headers[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    let claims = KEYRING
        .verify_dataplane(&issued.text, atoll_auth::unix_now())
        .expect("the issued token verifies");
    assert_eq!(claims.name, "web-1");
    assert_eq!(claims.tags["kuma.io/service"], ["web"]);
    assert_eq!(claims.proxy_type, atoll_auth::ProxyType::Dataplane);
    let lifetime = claims.standard.exp - claims.standard.iat;
    assert_eq!(lifetime, 3600);

    // Every mistake is named by its field.
    let bad = post_json(
        &api,
        "/tokens/dataplane",
        json!({"mesh": "", "type": "sidecar", "validFor": "soon", "tags": {"k": []}}),
        Some(admin()),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let mut fields = causes(&bad);
    fields.sort();
    assert_eq!(
        fields,
        ["mesh", "tags[\"k\"]", "type", "validFor"],
        "{}",
        bad.text
    );
    let unknown = post_json(
        &api,
        "/tokens/dataplane",
        json!({"mesh": "default", "nmae": "x"}),
        Some(admin()),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.text.contains("nmae"), "{}", unknown.text);
    let no_mesh = post_json(
        &api,
        "/tokens/dataplane",
        json!({"mesh": "nope"}),
        Some(admin()),
    )
    .await;
    assert_eq!(causes(&no_mesh), ["mesh"], "{}", no_mesh.text);
    // A mesh whose signing key has not been generated yet: retry later, not an error of yours.
    api.put("/meshes/fresh", mesh("fresh")).await;
    let not_yet = post_json(
        &api,
        "/tokens/dataplane",
        json!({"mesh": "fresh"}),
        Some(admin()),
    )
    .await;
    assert_eq!(
        not_yet.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        not_yet.text
    );
}

#[tokio::test]
async fn zone_and_user_tokens_come_from_the_global_only() {
    let api = Api::new(Mode::Global);
    let zone_token = post_json(
        &api,
        "/tokens/zone",
        json!({"zone": "zone-1", "scope": ["ingress"]}),
        Some(admin()),
    )
    .await;
    assert_eq!(zone_token.status, StatusCode::OK, "{}", zone_token.text);
    let claims = KEYRING
        .verify_zone(&zone_token.text, atoll_auth::unix_now())
        .unwrap();
    assert_eq!(
        (claims.zone.as_str(), claims.scope.as_slice()),
        ("zone-1", &["ingress".to_string()][..])
    );
    let bad_scope = post_json(
        &api,
        "/tokens/zone",
        json!({"zone": "zone-1", "scope": ["cp"]}),
        Some(admin()),
    )
    .await;
    assert_eq!(causes(&bad_scope), ["scope[0]"], "{}", bad_scope.text);

    let user = post_json(
        &api,
        "/tokens/user",
        json!({"name": "alice", "groups": ["team-a"], "validFor": "24h"}),
        Some(admin()),
    )
    .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    let claims = KEYRING
        .verify_user(&user.text, atoll_auth::unix_now())
        .unwrap();
    assert_eq!(claims.groups, ["team-a"]);
    let unsaid = post_json(&api, "/tokens/user", json!({"name": "bob"}), Some(admin())).await;
    assert_eq!(unsaid.status, StatusCode::OK, "{}", unsaid.text);
    let claims = KEYRING
        .verify_user(&unsaid.text, atoll_auth::unix_now())
        .unwrap();
    assert_eq!(
        claims.standard.exp - claims.standard.iat,
        24 * 3600,
        "a user token without validFor lasts a day"
    );
    let never = post_json(
        &api,
        "/tokens/user",
        json!({"name": "bob", "validFor": "0"}),
        Some(admin()),
    )
    .await;
    assert_eq!(causes(&never), ["validFor"], "{}", never.text);

    let zone = Api::new(Mode::Zone {
        name: "zone-1".into(),
    });
    for path in ["/tokens/zone", "/tokens/user"] {
        let refused = post_json(
            &zone,
            path,
            json!({"zone": "zone-1", "name": "x", "validFor": "1h"}),
            Some(admin()),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            refused.text
        );
        assert!(
            refused.text.contains("global control plane"),
            "{}",
            refused.text
        );
    }
}

#[tokio::test]
async fn a_read_only_user_reads_but_neither_writes_nor_sees_secrets_or_keys() {
    let api = Api::new(Mode::Global);
    api.put("/meshes/default", mesh("default")).await;
    let mut gw = gateway(8443);
    gw["conf"]["listeners"][0]["protocol"] = "HTTPS".into();
    gw["conf"]["listeners"][0]["tls"] = json!({"mode": "TERMINATE", "certificates": [{"inlineString": "-----BEGIN PRIVATE KEY-----\nsecret"}]});
    let put = api.put("/meshes/default/meshgateways/edge", gw).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text);
    let secret = json!({"type": "Secret", "mesh": "default", "name": "s", "data": "c2VjcmV0"});
    api.put("/meshes/default/secrets/s", secret).await;

    let viewer = user_token("viewer", &["viewers"]);
    let read = api
        .send(
            "GET",
            "/meshes/default/meshgateways/edge",
            None,
            Some(&viewer),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let certificate = &read.body["conf"]["listeners"][0]["tls"]["certificates"][0]["inlineString"];
    assert!(
        certificate.as_str().unwrap().starts_with("<redacted"),
        "{}",
        read.text
    );
    let listed = api
        .send("GET", "/meshes/default/meshgateways", None, Some(&viewer))
        .await;
    assert!(
        !listed.text.contains("BEGIN PRIVATE KEY"),
        "{}",
        listed.text
    );
    // The admin sees the key.
    let full = api.get("/meshes/default/meshgateways/edge").await;
    assert!(full.text.contains("BEGIN PRIVATE KEY"));

    let write = api
        .send("PUT", "/meshes/other", Some(mesh("other")), Some(&viewer))
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);
    let delete = api
        .send("DELETE", "/meshes/default", None, Some(&viewer))
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    let secret = api
        .send("GET", "/meshes/default/secrets/s", None, Some(&viewer))
        .await;
    assert_eq!(secret.status, StatusCode::FORBIDDEN);
    // A forged or expired credential is refused outright, never treated as anonymous.
    let forged = api.send("GET", "/meshes", None, Some("a.b.c")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.headers[header::WWW_AUTHENTICATE], "Bearer");
    // Data plane tokens are not API credentials.
    let dp = KEYRING
        .issue(
            &Purpose::Dataplane("default".into()),
            &atoll_auth::DataplaneClaims {
                name: String::new(),
                mesh: "default".into(),
                tags: Default::default(),
                proxy_type: atoll_auth::ProxyType::Dataplane,
                standard: Standard::new(atoll_auth::unix_now(), Duration::from_secs(60)),
            },
        )
        .unwrap();
    let wrong_kind = api.send("GET", "/meshes", None, Some(&dp)).await;
    assert_eq!(wrong_kind.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong_kind.text.contains("dataplane token"),
        "{}",
        wrong_kind.text
    );
}

fn over(
    remote: &str,
    tls: bool,
    client_certificate: Option<&str>,
    method: &str,
    path: &str,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(mesh("default").to_string()))
        .unwrap();
    request.extensions_mut().insert(Connection {
        remote: remote.parse::<SocketAddr>().unwrap(),
        tls,
        client_certificate: client_certificate.map(String::from),
    });
    request
}

#[tokio::test]
async fn loopback_is_the_admin_only_when_configured_and_pinned_client_certificates_are() {
    let strict = Api::with(Mode::Global, false);
    let local = strict
        .call(over(
            "127.0.0.1:4000",
            false,
            None,
            "PUT",
            "/meshes/default",
        ))
        .await;
    assert_eq!(local.status, StatusCode::UNAUTHORIZED, "{}", local.text);
    let read = strict
        .call(over("127.0.0.1:4000", false, None, "GET", "/meshes"))
        .await;
    assert_eq!(read.status, StatusCode::OK, "reads stay open, as in Kuma");
    let certified = strict
        .call(over(
            "10.0.0.9:4000",
            true,
            Some("ops-laptop"),
            "PUT",
            "/meshes/default",
        ))
        .await;
    assert_eq!(certified.status, StatusCode::CREATED, "{}", certified.text);
}

#[tokio::test]
async fn a_signing_key_secret_must_hold_a_key() {
    let api = Api::new(Mode::Global);
    api.put("/meshes/default", mesh("default")).await;
    let garbage = json!({"type": "Secret", "mesh": "default", "name": "dataplane-token-signing-key-default-2", "data": "bm90IGEga2V5"});
    let refused = api
        .put(
            "/meshes/default/secrets/dataplane-token-signing-key-default-2",
            garbage,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(causes(&refused), ["data"]);
    use base64::Engine;
    let key =
        base64::engine::general_purpose::STANDARD.encode(atoll_auth::keys::generate_pem().unwrap());
    let good = json!({"type": "Secret", "mesh": "default", "name": "dataplane-token-signing-key-default-2", "data": key});
    let stored = api
        .put(
            "/meshes/default/secrets/dataplane-token-signing-key-default-2",
            good,
        )
        .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
}

#[tokio::test]
async fn zone_certificates_for_a_csr_carry_no_key() {
    let api = Api::new(Mode::Global);
    let _ = api.slot.set(Arc::new(RealCa(
        atoll_tls::Authority::generate("test KDS CA").unwrap(),
    )));
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let issued = post_json(
        &api,
        "/zones/zone-4/certificate",
        json!({"csr": csr}),
        Some(admin()),
    )
    .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text);
    assert!(issued.body.get("key").is_none(), "{}", issued.text);
    assert!(!issued.body["serial"].as_str().unwrap().is_empty());
    let ca = issued.body["caCertificate"].as_str().unwrap();
    let cert = issued.body["certificate"].as_str().unwrap();
    assert_eq!(
        atoll_tls::verify_zone_certificate(ca, cert).unwrap(),
        "zone-4"
    );
    let bad = post_json(
        &api,
        "/zones/zone-4/certificate",
        json!({"csr": "nope"}),
        Some(admin()),
    )
    .await;
    assert_eq!(causes(&bad), ["csr"], "{}", bad.text);
}

#[tokio::test]
async fn a_dry_run_validates_and_authorizes_but_stores_nothing() {
    let api = Api::new(Mode::Global);
    // No mesh yet: a plan checks a gateway before the mesh it names is created.
    let reply = api
        .put(
            "/meshes/default/meshgateways/edge?dryRun=true",
            gateway(8080),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers["x-atoll-outcome"], "valid");
    assert_eq!(reply.body["conf"]["listeners"][0]["port"], 8080);
    assert_eq!(
        api.get("/meshes/default/meshgateways/edge").await.status,
        StatusCode::NOT_FOUND
    );

    let reply = api
        .put(
            "/meshes/default/meshgateways/edge?dryRun=true",
            gateway(70000),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(causes(&reply), ["conf.listeners[0].port"]);

    let anonymous = Api::with(Mode::Global, false);
    let reply = anonymous
        .send("PUT", "/meshes/demo?dryRun=true", Some(mesh("demo")), None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = api.put("/meshes/demo?dryRun=true", mesh("demo")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(api.get("/meshes/demo").await.status, StatusCode::NOT_FOUND);
}
