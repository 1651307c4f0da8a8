//! Which policies apply to a proxy and what they configure, at Kuma's
//! `GET /meshes/{mesh}/dataplanes/{name}/_rules`: the Dataplane and its mesh's policies are
//! read from the store and given to [`rules::compute_for`], the function xDS generation
//! uses, so the answer is what the proxy's Envoy gets.
//!
//! The answer, per policy type: `toRules` per destination (the Dataplane's outbound
//! services), `fromRules` per caller (`Mesh`, or a service), and on a built-in gateway
//! `gatewayRules` per virtual host and MeshHTTPRoute; each with the merged `conf` and the
//! policies it came from (`origins`, weakest first).

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use atoll_api::rest::ApiError;
use atoll_model::types::{
    DataplaneGatewayType, DataplaneSpec, MeshGatewaySpec, MeshHttpRouteSpec, Outbound, SERVICE_TAG,
    TargetKind,
};
use atoll_model::{Kind, Layout, Scope, Spec};
use atoll_store::{Key, ListQuery, Store};

use crate::policy::rules::{self, GatewayScope, Merged, Policy, Rules};
use crate::xds::gateway::{self, GatewayInput};

/// The store, once the control plane has connected to it.
pub type StoreSlot = Arc<OnceLock<Arc<dyn Store>>>;

/// Served on the zone's REST API (behind its authentication, like every read).
pub fn router(store: StoreSlot) -> axum::Router {
    axum::Router::new()
        .route("/meshes/{mesh}/dataplanes/{name}/_rules", get(inspect))
        .with_state(store)
}

async fn inspect(
    State(slot): State<StoreSlot>,
    Path((mesh, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = slot
        .get()
        .ok_or_else(|| ApiError::unavailable("the store is not connected yet"))?;
    let not_found = || ApiError::not_found(format!("Dataplane {mesh}.{name} not found"));
    let stored = store
        .get(&Key::new(Kind::Dataplane, Some(&mesh), &name))
        .await?
        .ok_or_else(not_found)?;
    let Spec::Dataplane(dp) = stored.resource.spec else {
        return Err(not_found());
    };
    let mut policies = Vec::new();
    for kind in Kind::ALL
        .iter()
        .copied()
        .filter(|k| k.scope() == Scope::Mesh && k.layout() == Layout::Spec)
    {
        for item in list(store.as_ref(), kind, &mesh).await? {
            if let Some(view) = item.1.policy() {
                policies.push(Policy {
                    kind,
                    name: item.0,
                    view,
                });
            }
        }
    }
    let scope = if is_builtin_gateway(&dp) {
        let gateways = list(store.as_ref(), Kind::MeshGateway, &mesh).await?;
        let routes = list(store.as_ref(), Kind::MeshHttpRoute, &mesh).await?;
        let mtls = match store.get(&Key::new(Kind::Mesh, None, &mesh)).await? {
            Some(stored) => match &stored.resource.spec {
                Spec::Mesh(m) => crate::world::mtls_backend(m).is_some(),
                _ => false,
            },
            None => false,
        };
        gateway_scope(&mesh, &dp, mtls, &gateways, &routes)
    } else {
        None
    };
    let destinations = match &scope {
        Some((_, backends)) => backends.clone(),
        None => destinations(&dp),
    };
    let external: std::collections::BTreeSet<String> =
        list(store.as_ref(), Kind::MeshExternalService, &mesh)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
    let rules = rules::compute_full(
        &dp,
        &destinations,
        &external,
        scope.as_ref().map(|(s, _)| s),
        &policies,
    );
    Ok(Json(answer(&mesh, &name, &rules)).into_response())
}

/// Every resource of `kind` in `mesh`, by name.
async fn list(store: &dyn Store, kind: Kind, mesh: &str) -> Result<Vec<(String, Spec)>, ApiError> {
    let page = store
        .list(&ListQuery {
            kind: Some(kind),
            mesh: Some(mesh.to_string()),
            ..Default::default()
        })
        .await?;
    Ok(page
        .items
        .into_iter()
        .map(|s| (s.resource.meta.name, s.resource.spec))
        .collect())
}

fn is_builtin_gateway(dp: &DataplaneSpec) -> bool {
    dp.networking
        .as_ref()
        .and_then(|n| n.gateway.as_ref())
        .is_some_and(|g| g.gateway_type == DataplaneGatewayType::Builtin)
}

/// The service an outbound sends to, as the sidecar's policies know it.
pub fn outbound_service(outbound: &Outbound) -> Option<String> {
    let backend = outbound.backend_ref.as_ref();
    if let Some(b) = backend.filter(|b| b.kind == TargetKind::MeshExternalService) {
        return Some(b.name.clone());
    }
    outbound
        .tags
        .get(SERVICE_TAG)
        .cloned()
        .or_else(|| backend.map(|b| b.name.clone()))
}

/// The Dataplane's outbound services, each once.
pub fn destinations(dp: &DataplaneSpec) -> Vec<String> {
    let mut services: Vec<String> = dp
        .networking
        .iter()
        .flat_map(|n| &n.outbound)
        .filter_map(outbound_service)
        .collect();
    services.sort();
    services.dedup();
    services
}

/// The gateway's virtual hosts and routes, as the gateway generator lays them out (crossMesh
/// listeners only in an mTLS mesh), and the services its routes send to; `None` when no
/// single MeshGateway binds the Dataplane.
pub fn gateway_scope(
    mesh: &str,
    dp: &DataplaneSpec,
    mtls: bool,
    gateways: &[(String, Spec)],
    routes: &[(String, Spec)],
) -> Option<(GatewayScope, Vec<String>)> {
    let net = dp.networking.as_ref()?;
    let tags = net.gateway.as_ref()?.tags.clone();
    let specs: Vec<(&String, &MeshGatewaySpec)> = gateways
        .iter()
        .filter_map(|(n, s)| match s {
            Spec::MeshGateway(g) => Some((n, g)),
            _ => None,
        })
        .collect();
    let (name, spec) = gateway::binding(specs, &tags).ok()?;
    let http: Vec<(&str, &MeshHttpRouteSpec)> = routes
        .iter()
        .filter_map(|(n, s)| match s {
            Spec::MeshHttpRoute(r) if gateway::targets_gateway(r.target_ref.as_ref(), name) => {
                Some((n.as_str(), r))
            }
            _ => None,
        })
        .collect();
    // Certificates only decide whether an HTTPS listener is served; assume they resolve.
    let resolve = |_: &atoll_model::types::DataSource| Ok((String::new(), String::new()));
    let out = gateway::generate(&GatewayInput {
        mesh,
        gateway: name,
        address: &net.address,
        dataplane_tags: &tags,
        spec,
        http_routes: &http,
        tcp_routes: &[],
        certificate: &resolve,
        cross_mesh_tls: mtls.then(Default::default),
    });
    let backends: std::collections::BTreeSet<String> =
        out.backends.values().map(|b| b.name.clone()).collect();
    Some((
        GatewayScope {
            gateway: name.clone(),
            hosts: out.hosts,
        },
        backends.into_iter().collect(),
    ))
}

fn origins(kind: Kind, mesh: &str, merged: &Merged) -> Value {
    merged
        .origins
        .iter()
        .map(|name| json!({"kind": kind.name(), "mesh": mesh, "name": name}))
        .collect()
}

/// The answer for the Dataplane `mesh`/`name` with `rules`.
pub fn answer(mesh: &str, name: &str, rules: &Rules) -> Value {
    let rules: Vec<Value> =
        rules
            .iter()
            .map(|(kind, r)| {
                let to: Vec<Value> =
                    r.to.iter()
                        .map(|(service, m)| {
                            json!({
                                "destination": service,
                                "matchers": [{"key": SERVICE_TAG, "value": service}],
                                "conf": m.conf,
                                "origins": origins(*kind, mesh, m),
                            })
                        })
                        .collect();
                let from: Vec<Value> =
                    r.from_any
                        .iter()
                        .map(|m| ("Mesh", m, json!([])))
                        .chain(r.from_service.iter().map(|(s, m)| {
                            (s.as_str(), m, json!([{"key": SERVICE_TAG, "value": s}]))
                        }))
                        .map(|(caller, m, matchers)| {
                            json!({
                                "caller": caller,
                                "matchers": matchers,
                                "conf": m.conf,
                                "origins": origins(*kind, mesh, m),
                            })
                        })
                        .collect();
                let gateway: Vec<Value> = r
                    .gateway_routes
                    .iter()
                    .map(|((host, route), m)| {
                        json!({
                            "virtualHost": host,
                            "route": route,
                            "conf": m.conf,
                            "origins": origins(*kind, mesh, m),
                        })
                    })
                    .collect();
                let mut entry = json!({"type": kind.name(), "toRules": to, "fromRules": from});
                if !gateway.is_empty() {
                    entry["gatewayRules"] = Value::Array(gateway);
                }
                let routes: Vec<Value> = r
                    .to_routes
                    .iter()
                    .map(|(route, m)| {
                        json!({
                            "route": route,
                            "conf": m.conf,
                            "origins": origins(*kind, mesh, m),
                        })
                    })
                    .collect();
                if !routes.is_empty() {
                    entry["toRouteRules"] = Value::Array(routes);
                }
                if let Some(m) = &r.identities {
                    entry["inboundRules"] = json!([{
                        "conf": m.conf,
                        "origins": origins(*kind, mesh, m),
                    }]);
                }
                entry
            })
            .collect();
    json!({
        "resource": {"type": "Dataplane", "mesh": mesh, "name": name},
        "rules": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(yaml: &str) -> Vec<(String, Spec)> {
        atoll_model::parse_documents(yaml)
            .into_iter()
            .map(|d| {
                let r = d.outcome.expect("valid fixture");
                (r.meta.name.clone(), r.spec)
            })
            .collect()
    }

    fn policies(items: &[(String, Spec)]) -> Vec<Policy> {
        items
            .iter()
            .filter_map(|(n, s)| {
                Some(Policy {
                    kind: s.kind(),
                    name: n.clone(),
                    view: s.policy()?,
                })
            })
            .collect()
    }

    fn dataplane(yaml: &str) -> DataplaneSpec {
        match decode(yaml).remove(0).1 {
            Spec::Dataplane(dp) => dp,
            other => panic!("not a Dataplane: {other:?}"),
        }
    }

    const SIDECAR: &str = "
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.2
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
  outbound:
  - port: 10001
    tags:
      kuma.io/service: api
  - port: 10002
    tags:
      kuma.io/service: db
";

    const POLICIES: &str = "
type: MeshTimeout
mesh: default
name: mesh-wide
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 1h
  from:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 2h
---
type: MeshTimeout
mesh: default
name: to-api
spec:
  targetRef:
    kind: MeshService
    name: web
  to:
  - targetRef:
      kind: MeshService
      name: api
    default:
      http:
        requestTimeout: 2s
---
type: MeshTrafficPermission
mesh: default
name: deny-db
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: MeshService
      name: db
    default:
      action: Deny
";

    #[test]
    fn a_sidecar_gets_to_rules_per_destination_and_from_rules_per_caller() {
        let dp = dataplane(SIDECAR);
        let destinations = destinations(&dp);
        assert_eq!(destinations, ["api", "db"]);
        let rules = rules::compute_for(&dp, &destinations, None, &policies(&decode(POLICIES)));
        let answer = answer("default", "web-1", &rules);
        assert_eq!(
            answer["resource"],
            json!({"type": "Dataplane", "mesh": "default", "name": "web-1"})
        );
        let types: Vec<&str> = answer["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["MeshTrafficPermission", "MeshTimeout"]);
        let timeout = &answer["rules"][1];
        assert_eq!(
            timeout["toRules"][0],
            json!({
                "destination": "api",
                "matchers": [{"key": "kuma.io/service", "value": "api"}],
                "conf": {"idleTimeout": "1h", "http": {"requestTimeout": "2s"}},
                "origins": [
                    {"kind": "MeshTimeout", "mesh": "default", "name": "mesh-wide"},
                    {"kind": "MeshTimeout", "mesh": "default", "name": "to-api"},
                ],
            })
        );
        assert_eq!(timeout["toRules"][1]["destination"], "db");
        assert_eq!(timeout["toRules"][1]["conf"], json!({"idleTimeout": "1h"}));
        assert_eq!(
            timeout["fromRules"],
            json!([{
                "caller": "Mesh",
                "matchers": [],
                "conf": {"idleTimeout": "2h"},
                "origins": [{"kind": "MeshTimeout", "mesh": "default", "name": "mesh-wide"}],
            }])
        );
        let permission = &answer["rules"][0];
        assert_eq!(permission["toRules"], json!([]));
        assert_eq!(permission["fromRules"][0]["caller"], "db");
        assert_eq!(
            permission["fromRules"][0]["conf"],
            json!({"action": "Deny"})
        );
        assert!(timeout.get("gatewayRules").is_none());
    }

    #[test]
    fn a_gateway_gets_rules_per_virtual_host_and_route() {
        let dp = dataplane(
            "
type: Dataplane
mesh: default
name: edge-1
networking:
  address: 10.0.0.1
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge
",
        );
        let gateways = decode(
            "
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8080
    protocol: HTTP
",
        );
        let route = |name: &str| {
            format!(
                "
type: MeshHTTPRoute
mesh: default
name: {name}
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /{name}
      default:
        backendRefs:
        - kind: MeshService
          name: api
"
            )
        };
        let routes = decode(&format!("{}---{}", route("slow"), route("fast")));
        let policies = policies(&decode(
            "
type: MeshTimeout
mesh: default
name: slow-route
spec:
  targetRef:
    kind: MeshHTTPRoute
    name: slow
  to:
  - targetRef:
      kind: Mesh
    default:
      http:
        requestTimeout: 500ms
---
type: MeshLoadBalancingStrategy
mesh: default
name: edge-balancing
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: MeshService
      name: api
    default:
      loadBalancer:
        type: LeastRequest
",
        ));
        let (scope, backends) =
            gateway_scope("default", &dp, false, &gateways, &routes).expect("bound");
        assert_eq!(scope.gateway, "edge");
        assert_eq!(backends, ["api"]);
        let rules = rules::compute_for(&dp, &backends, Some(&scope), &policies);
        let answer = answer("default", "edge-1", &rules);
        // The gateway's balancing of the service its routes send to.
        assert_eq!(
            answer["rules"][1]["toRules"],
            json!([{
                "destination": "api",
                "matchers": [{"key": "kuma.io/service", "value": "api"}],
                "conf": {"loadBalancer": {"type": "LeastRequest"}},
                "origins": [{"kind": "MeshLoadBalancingStrategy", "mesh": "default", "name": "edge-balancing"}],
            }])
        );
        assert_eq!(
            answer["rules"][0]["gatewayRules"],
            json!([{
                "virtualHost": "default:edge:8080:*",
                "route": "slow",
                "conf": {"http": {"requestTimeout": "500ms"}},
                "origins": [{"kind": "MeshTimeout", "mesh": "default", "name": "slow-route"}],
            }])
        );
        // Not a sidecar's rule: nothing to destinations or from callers.
        assert_eq!(answer["rules"][0]["toRules"], json!([]));
    }
}
