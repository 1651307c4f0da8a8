//! HostnameGenerator, Secret, GlobalSecret, ZoneIngress, ZoneEgress and Zone validation, and
//! the rules every resource's metadata follows.

mod support;

use support::*;

const HOSTNAME_GENERATOR: &str = r#"
type: HostnameGenerator
name: extsvc-hostnames
spec:
  selector:
    meshExternalService:
      matchLabels:
        kuma.io/origin: zone
  template: "{{ .DisplayName }}.extsvc.mesh.local"
"#;

const SECRET: &str = r#"
type: Secret
name: sample-secret
mesh: default
data: dGVzdAo=
"#;

const GLOBAL_SECRET: &str = r#"
type: GlobalSecret
name: sample-global-secret
data: dGVzdAo=
"#;

const ZONE_INGRESS: &str = r#"
type: ZoneIngress
name: zone-ingress-1
zone: east
networking:
  address: 192.168.0.1
  port: 10001
  advertisedAddress: 10.0.0.1
  advertisedPort: 10000
  admin:
    port: 9901
availableServices:
- tags:
    kuma.io/service: backend
    version: v1
  instances: 2
  mesh: default
"#;

const ZONE_EGRESS: &str = r#"
type: ZoneEgress
name: zone-egress-1
networking:
  address: 192.168.0.2
  port: 10002
"#;

const ZONE: &str = r#"
type: Zone
name: zone-1
enabled: true
"#;

#[test]
fn hostname_generator_selector() {
    run_table(
        HOSTNAME_GENERATOR,
        &[
            edit(
                "meshService selector: Atoll has no MeshService resources",
                |v| {
                    set(
                        v,
                        "spec.selector",
                        json!({"meshService": {"matchLabels": {"k": "v"}}}),
                    )
                },
                fail("spec.selector.meshService", "is not supported yet"),
            ),
            edit(
                "meshMultiZoneService selector",
                |v| set(v, "spec.selector", json!({"meshMultiZoneService": {}})),
                fail("spec.selector.meshMultiZoneService", "is not supported yet"),
            ),
            edit(
                "selector missing",
                |v| remove(v, "spec.selector"),
                fail("spec.selector", "must be set"),
            ),
            edit(
                "selector without a kind",
                |v| set(v, "spec.selector", json!({})),
                fail(
                    "spec.selector",
                    "exactly one of meshService, meshExternalService, meshMultiZoneService",
                ),
            ),
            edit(
                "selector with two kinds",
                |v| {
                    set(
                        v,
                        "spec.selector.meshService",
                        json!({"matchLabels": {"k": "v"}}),
                    )
                },
                fail("spec.selector", "exactly one of"),
            ),
            edit(
                "unknown selector kind",
                |v| set(v, "spec.selector.meshServices", json!({})),
                fail("spec.selector.meshServices", "unknown field"),
            ),
        ],
    );
}

#[test]
fn hostname_generator_template() {
    run_table(
        HOSTNAME_GENERATOR,
        &[
            edit(
                "every known field",
                |v| {
                    set(
                        v,
                        "spec.template",
                        json!("{{ .Name }}.{{ .Namespace }}.{{ .Zone }}.{{ .Mesh }}.mesh"),
                    )
                },
                PASS,
            ),
            edit(
                "label action",
                |v| {
                    set(
                        v,
                        "spec.template",
                        json!("{{ label \"kuma.io/display-name\" }}.svc.mesh.local"),
                    )
                },
                PASS,
            ),
            edit(
                "actions without spaces",
                |v| {
                    set(
                        v,
                        "spec.template",
                        json!("{{.DisplayName}}.{{label \"team\"}}.local"),
                    )
                },
                PASS,
            ),
            edit(
                "no actions",
                |v| set(v, "spec.template", json!("static.mesh.local")),
                PASS,
            ),
            edit(
                "template empty",
                |v| set(v, "spec.template", json!("")),
                fail("spec.template", "must not be empty"),
            ),
            edit(
                "template missing",
                |v| remove(v, "spec.template"),
                fail("spec.template", "must not be empty"),
            ),
            edit(
                "unknown field",
                |v| set(v, "spec.template", json!("{{ .Service }}.mesh")),
                fail("spec.template", "unknown template action"),
            ),
            edit(
                "field without dot",
                |v| set(v, "spec.template", json!("{{ DisplayName }}.mesh")),
                fail("spec.template", "unknown template action"),
            ),
            edit(
                "label without a key",
                |v| set(v, "spec.template", json!("{{ label }}.mesh")),
                fail("spec.template", "unknown template action"),
            ),
            edit(
                "label with an unquoted key",
                |v| set(v, "spec.template", json!("{{ label team }}.mesh")),
                fail("spec.template", "unknown template action"),
            ),
            edit(
                "other template function",
                |v| set(v, "spec.template", json!("{{ printf \"%s\" .Name }}.mesh")),
                fail("spec.template", "unknown template action"),
            ),
            edit(
                "unclosed action",
                |v| set(v, "spec.template", json!("{{ .DisplayName .mesh")),
                fail("spec.template", "'{{' without a matching '}}'"),
            ),
            edit(
                "unclosed second action",
                |v| set(v, "spec.template", json!("{{ .DisplayName }}.{{ .Zone")),
                fail("spec.template", "'{{' without a matching '}}'"),
            ),
            edit(
                "stray closing braces at the end",
                |v| set(v, "spec.template", json!("{{ .DisplayName }}.mesh}}")),
                fail("spec.template", "'}}' without a matching '{{'"),
            ),
            edit(
                "stray closing braces before an action",
                |v| set(v, "spec.template", json!("mesh}}.{{ .DisplayName }}")),
                fail("spec.template", "'}}' without a matching '{{'"),
            ),
            edit(
                "stray closing braces between actions",
                |v| set(v, "spec.template", json!("{{ .Name }}.}}.{{ .Zone }}")),
                fail("spec.template", "'}}' without a matching '{{'"),
            ),
            edit(
                "mesh set on a global-scoped type",
                |v| set(v, "mesh", json!("default")),
                fail(
                    "mesh",
                    "must not be set: HostnameGenerator is not mesh-scoped",
                ),
            ),
            edit(
                "extension",
                |v| {
                    set(
                        v,
                        "spec.extension",
                        json!({"type": "custom", "config": {"a": 1}}),
                    )
                },
                fail("spec.extension", "is not supported"),
            ),
        ],
    );
}

#[test]
fn secrets() {
    run_table(
        SECRET,
        &[
            edit("one zero byte", |v| set(v, "data", json!("AA==")), PASS),
            edit(
                "data missing",
                |v| remove(v, "data"),
                fail("data", "must not be empty"),
            ),
            edit(
                "data empty",
                |v| set(v, "data", json!("")),
                fail("data", "must not be empty"),
            ),
            edit(
                "data not base64",
                |v| set(v, "data", json!("not base64!")),
                fail("data", "must be base64"),
            ),
            edit(
                "data without padding",
                |v| set(v, "data", json!("dGVzdAo")),
                fail("data", "must be base64"),
            ),
            edit(
                "mesh missing",
                |v| remove(v, "mesh"),
                fail("mesh", "must be set"),
            ),
            edit(
                "data under spec",
                |v| {
                    remove(v, "data");
                    set(v, "spec", json!({"data": "dGVzdAo="}));
                },
                fail("spec", "unknown field"),
            ),
        ],
    );
    run_table(
        GLOBAL_SECRET,
        &[
            edit(
                "data missing",
                |v| remove(v, "data"),
                fail("data", "must not be empty"),
            ),
            edit(
                "data not base64",
                |v| set(v, "data", json!("@@@@")),
                fail("data", "must be base64"),
            ),
            edit(
                "mesh set",
                |v| set(v, "mesh", json!("default")),
                fail("mesh", "must not be set: GlobalSecret is not mesh-scoped"),
            ),
        ],
    );
}

#[test]
fn zone_ingress() {
    run_table(
        ZONE_INGRESS,
        &[
            edit(
                "no advertised address and port",
                |v| {
                    remove(v, "networking.advertisedAddress");
                    remove(v, "networking.advertisedPort");
                },
                PASS,
            ),
            edit(
                "no available services",
                |v| remove(v, "availableServices"),
                PASS,
            ),
            edit(
                "networking missing",
                |v| remove(v, "networking"),
                fail("networking", "must be set"),
            ),
            edit(
                "port 0",
                |v| set(v, "networking.port", json!(0)),
                fail("networking.port", "1-65535"),
            ),
            edit(
                "port 70000",
                |v| set(v, "networking.port", json!(70000)),
                fail("networking.port", "1-65535"),
            ),
            edit(
                "advertisedPort 70000",
                |v| set(v, "networking.advertisedPort", json!(70000)),
                fail("networking.advertisedPort", "1-65535"),
            ),
            edit(
                "advertisedAddress without advertisedPort",
                |v| remove(v, "networking.advertisedPort"),
                fail(
                    "networking",
                    "advertisedAddress and advertisedPort must be set together",
                ),
            ),
            edit(
                "advertisedPort without advertisedAddress",
                |v| remove(v, "networking.advertisedAddress"),
                fail("networking", "must be set together"),
            ),
            edit(
                "address invalid",
                |v| set(v, "networking.address", json!("not an address")),
                fail("networking.address", "IP address or a DNS name"),
            ),
            edit(
                "available service without service tag",
                |v| set(v, "availableServices[0].tags", json!({"version": "v1"})),
                fail(
                    r#"availableServices[0].tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
            edit(
                "available service without mesh",
                |v| remove(v, "availableServices[0].mesh"),
                fail("availableServices[0].mesh", "must not be empty"),
            ),
            edit(
                "mesh set",
                |v| set(v, "mesh", json!("default")),
                fail("mesh", "must not be set: ZoneIngress is not mesh-scoped"),
            ),
        ],
    );
}

#[test]
fn zone_egress() {
    run_table(
        ZONE_EGRESS,
        &[
            edit(
                "DNS address",
                |v| set(v, "networking.address", json!("egress.local")),
                PASS,
            ),
            edit(
                "networking missing",
                |v| remove(v, "networking"),
                fail("networking", "must be set"),
            ),
            edit(
                "address missing",
                |v| remove(v, "networking.address"),
                fail("networking.address", "must not be empty"),
            ),
            edit(
                "address invalid",
                |v| set(v, "networking.address", json!("-egress")),
                fail("networking.address", "IP address or a DNS name"),
            ),
            edit(
                "port missing",
                |v| remove(v, "networking.port"),
                fail("networking.port", "1-65535"),
            ),
            edit(
                "port 70000",
                |v| set(v, "networking.port", json!(70000)),
                fail("networking.port", "1-65535"),
            ),
            edit(
                "admin port 0",
                |v| set(v, "networking.admin", json!({"port": 0})),
                fail("networking.admin.port", "1-65535"),
            ),
            edit(
                "prometheus endpoint",
                |v| {
                    set(
                        v,
                        "networking.prometheus",
                        json!({"port": 9102, "path": "/stats"}),
                    )
                },
                PASS,
            ),
            edit(
                "prometheus port missing",
                |v| set(v, "networking.prometheus", json!({})),
                fail("networking.prometheus.port", "1-65535"),
            ),
            edit(
                "prometheus on the traffic port",
                |v| set(v, "networking.prometheus", json!({"port": 10002})),
                fail("networking.prometheus.port", "must differ"),
            ),
            edit(
                "prometheus on the admin port",
                |v| {
                    set(v, "networking.admin", json!({"port": 9901}));
                    set(v, "networking.prometheus", json!({"port": 9901}))
                },
                fail("networking.prometheus.port", "must differ"),
            ),
            edit(
                "prometheus path without a slash",
                |v| {
                    set(
                        v,
                        "networking.prometheus",
                        json!({"port": 9102, "path": "metrics"}),
                    )
                },
                fail("networking.prometheus.path", "must start with /"),
            ),
        ],
    );
}

#[test]
fn zone() {
    run_table(
        ZONE,
        &[
            edit("enabled omitted", |v| remove(v, "enabled"), PASS),
            edit("disabled", |v| set(v, "enabled", json!(false)), PASS),
            edit("digits", |v| set(v, "name", json!("1zone")), PASS),
            edit(
                "name with upper case and underscore",
                |v| set(v, "name", json!("Zone_1")),
                fail("name", "must be a DNS label"),
            ),
            edit(
                "name with a dot",
                |v| set(v, "name", json!("zone.east")),
                fail("name", "must be a DNS label"),
            ),
            edit(
                "name starting with a hyphen",
                |v| set(v, "name", json!("-zone")),
                fail("name", "must be a DNS label"),
            ),
            edit(
                "name missing",
                |v| remove(v, "name"),
                fail("name", "must be set"),
            ),
            edit(
                "mesh set",
                |v| set(v, "mesh", json!("default")),
                fail("mesh", "must not be set: Zone is not mesh-scoped"),
            ),
            edit(
                "enabled as a string",
                |v| set(v, "enabled", json!("yes")),
                fail("enabled", "invalid type"),
            ),
        ],
    );
}

#[test]
fn meta_name() {
    run_table(
        SECRET,
        &[
            edit(
                "dots, dashes and underscores",
                |v| set(v, "name", json!("a.b-c_d")),
                PASS,
            ),
            edit("upper case", |v| set(v, "name", json!("MySecret")), PASS),
            edit(
                "name missing",
                |v| remove(v, "name"),
                fail("name", "must be set"),
            ),
            edit(
                "name empty",
                |v| set(v, "name", json!("")),
                fail("name", "must be set"),
            ),
            edit(
                "name with a space",
                |v| set(v, "name", json!("my secret")),
                fail("name", "must start with a letter or digit and contain only"),
            ),
            edit(
                "name with a slash",
                |v| set(v, "name", json!("a/b")),
                fail("name", "contain only letters, digits"),
            ),
            edit(
                "name starting with a dot",
                |v| set(v, "name", json!(".hidden")),
                fail("name", "must start with a letter or digit"),
            ),
            edit(
                "name of 254 characters",
                |v| set(v, "name", json!("n".repeat(254))),
                fail("name", "at most 253 characters"),
            ),
            edit(
                "name is a number",
                |v| set(v, "name", json!(42)),
                fail("name", "invalid type"),
            ),
        ],
    );
}

#[test]
fn meta_mesh_and_labels() {
    run_table(
        SECRET,
        &[
            edit(
                "labels",
                |v| {
                    set(
                        v,
                        "labels",
                        json!({"kuma.io/origin": "zone", "team": "payments"}),
                    )
                },
                PASS,
            ),
            edit(
                "server timestamps",
                |v| {
                    set(v, "creationTime", json!("2024-01-01T00:00:00Z"));
                    set(v, "modificationTime", json!("2024-01-02T00:00:00Z"));
                },
                PASS,
            ),
            edit(
                "mesh missing",
                |v| remove(v, "mesh"),
                fail("mesh", "must be set"),
            ),
            edit(
                "mesh not a DNS label",
                |v| set(v, "mesh", json!("Bad_Mesh")),
                fail("mesh", "must be a DNS label"),
            ),
            edit(
                "label key with a space",
                |v| set(v, "labels", json!({"bad key": "x"})),
                fail(r#"labels["bad key"]"#, "label key"),
            ),
            edit(
                "label value too long",
                |v| set(v, "labels", json!({"team": "x".repeat(254)})),
                fail(r#"labels["team"]"#, "at most 253 characters"),
            ),
        ],
    );
    // Mesh-scoped types other than Secret need a mesh too.
    run_table(
        r#"
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.3
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
"#,
        &[edit(
            "Dataplane without mesh",
            |v| remove(v, "mesh"),
            fail("mesh", "must be set"),
        )],
    );
}

#[test]
fn meta_type() {
    run_table(
        ZONE,
        &[
            edit(
                "unknown type",
                |v| set(v, "type", json!("MeshGateways")),
                fail("type", "unknown resource type \"MeshGateways\""),
            ),
            edit(
                "type in lower case",
                |v| set(v, "type", json!("zone")),
                fail("type", "known types: Mesh, MeshGateway"),
            ),
            edit(
                "type missing",
                |v| remove(v, "type"),
                fail("type", "must be set"),
            ),
            edit(
                "type not a string",
                |v| set(v, "type", json!(3)),
                fail("type", "must be a string"),
            ),
            doc(
                "a list item that is not a mapping",
                "just a string",
                fail("", "must be a mapping"),
            ),
            doc(
                "JSON document",
                r#"{"type": "Zone", "name": "zone-2"}"#,
                PASS,
            ),
        ],
    );
}

#[test]
fn unknown_type_still_names_the_document() {
    let err = atoll_model::decode_value(json!({"type": "Nope", "name": "x"})).unwrap_err();
    assert_eq!(err.kind, None);
    assert_eq!(err.name.as_deref(), Some("x"));
    assert_eq!(err.violations.len(), 1, "{}", render(&err.violations));
    assert_eq!(err.violations[0].field, "type");
}

#[test]
fn hostname_generator_templates_must_give_dns_names() {
    const NOT_DNS: &str = "cannot give a DNS name";
    run_table(
        HOSTNAME_GENERATOR,
        &[
            edit(
                "leading dot",
                |v| set(v, "spec.template", json!(".{{ .DisplayName }}.mesh")),
                fail("spec.template", NOT_DNS),
            ),
            edit(
                "doubled dot",
                |v| set(v, "spec.template", json!("{{ .DisplayName }}..mesh")),
                fail("spec.template", "renders \"x..mesh\""),
            ),
            edit(
                "trailing dot",
                |v| set(v, "spec.template", json!("{{ .DisplayName }}.mesh.")),
                fail("spec.template", NOT_DNS),
            ),
            edit(
                "underscore",
                |v| set(v, "spec.template", json!("{{ .DisplayName }}_svc.mesh")),
                fail("spec.template", NOT_DNS),
            ),
            edit(
                "upper case",
                |v| set(v, "spec.template", json!("{{ .DisplayName }}.Mesh.local")),
                fail("spec.template", NOT_DNS),
            ),
            edit(
                "hyphens and several actions",
                |v| {
                    set(
                        v,
                        "spec.template",
                        json!("{{ .Name }}-{{ .Zone }}.{{ label \"team\" }}.mesh-1.local"),
                    )
                },
                PASS,
            ),
            edit(
                "extension without a type",
                |v| set(v, "spec.extension", json!({"config": {"a": 1}})),
                fail("spec.extension.type", "must not be empty"),
            ),
            edit(
                "extension with a type: still no plug-in to run it",
                |v| set(v, "spec.extension", json!({"type": "my-plugin"})),
                fail("spec.extension", "is not supported"),
            ),
        ],
    );
}
