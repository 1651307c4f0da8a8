//! Mesh validation: mTLS backends, their settings, and the mesh's name.

mod support;

use support::*;

/// A builtin CA with every setting in use.
const BASE: &str = r#"
type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    mode: STRICT
    dpCert:
      rotation:
        expiration: 1d
      requestTimeout: 10s
    conf:
      caCert:
        RSAbits: 2048
        expiration: 10y
routing:
  zoneEgress: true
networking:
  outbound:
    passthrough: false
"#;

/// A user-supplied CA.
const PROVIDED_BASE: &str = r#"
type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: provided
    conf:
      cert:
        secret: ca-cert
      key:
        secret: ca-key
"#;

#[test]
fn enabled_backend() {
    run_table(
        BASE,
        &[
            edit(
                "mTLS off",
                |v| {
                    remove(v, "mtls.enabledBackend");
                    remove(v, "routing.zoneEgress");
                },
                PASS,
            ),
            edit(
                "no mtls at all",
                |v| {
                    remove(v, "mtls");
                    remove(v, "routing.zoneEgress");
                },
                PASS,
            ),
            edit(
                "zone egress with mTLS off",
                |v| remove(v, "mtls.enabledBackend"),
                fail(
                    "mtls",
                    "must be enabled (enabledBackend set) when routing.zoneEgress is true",
                ),
            ),
            edit(
                "zone egress without mtls",
                |v| remove(v, "mtls"),
                fail("mtls", "must be enabled"),
            ),
            edit(
                "zone egress off without mtls",
                |v| {
                    remove(v, "mtls");
                    set(v, "routing.zoneEgress", json!(false));
                },
                PASS,
            ),
            edit(
                "enabledBackend names no backend",
                |v| set(v, "mtls.enabledBackend", json!("ca-2")),
                fail("mtls.enabledBackend", "must name one of the backends"),
            ),
            edit(
                "enabledBackend without backends",
                |v| remove(v, "mtls.backends"),
                fail("mtls.enabledBackend", "must name one of the backends"),
            ),
        ],
    );
}

#[test]
fn backends() {
    run_table(
        BASE,
        &[
            edit(
                "type missing",
                |v| remove(v, "mtls.backends[0].type"),
                fail("mtls.backends[0].type", "must be set"),
            ),
            edit(
                "type vault",
                |v| set(v, "mtls.backends[0].type", json!("vault")),
                fail("mtls.backends[0].type", "unknown value \"vault\""),
            ),
            edit(
                "type in upper case",
                |v| set(v, "mtls.backends[0].type", json!("BUILTIN")),
                fail("mtls.backends[0].type", "unknown value"),
            ),
            edit(
                "mode PERMISSIVE",
                |v| set(v, "mtls.backends[0].mode", json!("PERMISSIVE")),
                PASS,
            ),
            edit(
                "mode LAX",
                |v| set(v, "mtls.backends[0].mode", json!("LAX")),
                fail("mtls.backends[0].mode", "unknown value"),
            ),
            // Kuma keeps one CA backend per Mesh; a second would be a rotation Atoll cannot do.
            edit(
                "two backends with distinct names",
                |v| {
                    push(
                        v,
                        "mtls.backends",
                        json!({"name": "ca-2", "type": "builtin"}),
                    )
                },
                fail("mtls.backends", "must have at most one backend, found 2"),
            ),
            edit(
                "duplicate backend names",
                |v| {
                    push(
                        v,
                        "mtls.backends",
                        json!({"name": "ca-1", "type": "builtin"}),
                    )
                },
                fail("mtls.backends[1].name", "used by another backend"),
            ),
            edit(
                "backend without a name",
                |v| push(v, "mtls.backends", json!({"type": "builtin"})),
                fail("mtls.backends[1].name", "must be set"),
            ),
            edit(
                "builtin with cert and key",
                |v| set(v, "mtls.backends[0].conf.cert", json!({"secret": "c"})),
                fail("mtls.backends[0].conf", "belong to type provided"),
            ),
        ],
    );
}

#[test]
fn rsa_bits() {
    run_table(
        BASE,
        &[
            edit(
                "4096 bits",
                |v| set(v, "mtls.backends[0].conf.caCert.RSAbits", json!(4096)),
                PASS,
            ),
            edit(
                "bits omitted",
                |v| remove(v, "mtls.backends[0].conf.caCert.RSAbits"),
                PASS,
            ),
            edit(
                "1024 bits",
                |v| set(v, "mtls.backends[0].conf.caCert.RSAbits", json!(1024)),
                fail("mtls.backends[0].conf.caCert.RSAbits", "at least 2048"),
            ),
            edit(
                "2047 bits",
                |v| set(v, "mtls.backends[0].conf.caCert.RSAbits", json!(2047)),
                fail("mtls.backends[0].conf.caCert.RSAbits", "at least 2048"),
            ),
            edit(
                "misspelt rsaBits",
                |v| set(v, "mtls.backends[0].conf.caCert.rsaBits", json!(4096)),
                fail("mtls.backends[0].conf.caCert.rsaBits", "unknown field"),
            ),
        ],
    );
}

#[test]
fn durations() {
    run_table(
        BASE,
        &[
            edit(
                "rotation 24h",
                |v| {
                    set(
                        v,
                        "mtls.backends[0].dpCert.rotation.expiration",
                        json!("24h"),
                    )
                },
                PASS,
            ),
            edit(
                "rotation 1h30m",
                |v| {
                    set(
                        v,
                        "mtls.backends[0].dpCert.rotation.expiration",
                        json!("1h30m"),
                    )
                },
                PASS,
            ),
            edit(
                "CA expiration 1d",
                |v| set(v, "mtls.backends[0].conf.caCert.expiration", json!("1d")),
                PASS,
            ),
            edit(
                "request timeout 500ms",
                |v| set(v, "mtls.backends[0].dpCert.requestTimeout", json!("500ms")),
                PASS,
            ),
            edit(
                "CA expiration in weeks",
                |v| set(v, "mtls.backends[0].conf.caCert.expiration", json!("5w")),
                fail(
                    "mtls.backends[0].conf.caCert.expiration",
                    "is not a duration",
                ),
            ),
            edit(
                "rotation abc",
                |v| {
                    set(
                        v,
                        "mtls.backends[0].dpCert.rotation.expiration",
                        json!("abc"),
                    )
                },
                fail(
                    "mtls.backends[0].dpCert.rotation.expiration",
                    "\"abc\" is not a duration",
                ),
            ),
            edit(
                "request timeout without a unit",
                |v| set(v, "mtls.backends[0].dpCert.requestTimeout", json!("10")),
                fail(
                    "mtls.backends[0].dpCert.requestTimeout",
                    "is not a duration",
                ),
            ),
            edit(
                "empty rotation",
                |v| set(v, "mtls.backends[0].dpCert.rotation.expiration", json!("")),
                fail(
                    "mtls.backends[0].dpCert.rotation.expiration",
                    "is not a duration",
                ),
            ),
        ],
    );
}

#[test]
fn provided_backend() {
    run_table(
        PROVIDED_BASE,
        &[
            edit(
                "cert and key from files",
                |v| {
                    set(
                        v,
                        "mtls.backends[0].conf.cert",
                        json!({"file": "/ca/cert.pem"}),
                    );
                    set(
                        v,
                        "mtls.backends[0].conf.key",
                        json!({"file": "/ca/key.pem"}),
                    );
                },
                PASS,
            ),
            edit(
                "cert missing",
                |v| remove(v, "mtls.backends[0].conf.cert"),
                fail(
                    "mtls.backends[0].conf.cert",
                    "must be set for type provided",
                ),
            ),
            edit(
                "key missing",
                |v| remove(v, "mtls.backends[0].conf.key"),
                fail("mtls.backends[0].conf.key", "must be set for type provided"),
            ),
            edit(
                "conf missing",
                |v| remove(v, "mtls.backends[0].conf"),
                fail(
                    "mtls.backends[0].conf.cert",
                    "must be set for type provided",
                ),
            ),
            edit(
                "cert without a source",
                |v| set(v, "mtls.backends[0].conf.cert", json!({})),
                fail("mtls.backends[0].conf.cert", "exactly one"),
            ),
            edit(
                "key inline not base64",
                |v| set(v, "mtls.backends[0].conf.key", json!({"inline": "*"})),
                fail("mtls.backends[0].conf.key.inline", "base64"),
            ),
            edit(
                "provided with caCert",
                |v| set(v, "mtls.backends[0].conf.caCert", json!({"RSAbits": 2048})),
                fail("mtls.backends[0].conf.caCert", "belongs to type builtin"),
            ),
        ],
    );
}

#[test]
fn mesh_name() {
    run_table(
        BASE,
        &[
            edit("name demo-1", |v| set(v, "name", json!("demo-1")), PASS),
            edit(
                "name with upper case and underscore",
                |v| set(v, "name", json!("Default_Mesh")),
                fail("name", "must be a DNS label"),
            ),
            edit(
                "name with a dot",
                |v| set(v, "name", json!("my.mesh")),
                fail("name", "must be a DNS label"),
            ),
            edit(
                "name ending in a hyphen",
                |v| set(v, "name", json!("mesh-")),
                fail("name", "must be a DNS label"),
            ),
            edit(
                "name of 64 characters",
                |v| set(v, "name", json!("m".repeat(64))),
                fail("name", "must be a DNS label"),
            ),
            edit(
                "name missing",
                |v| remove(v, "name"),
                fail("name", "must be set"),
            ),
            edit(
                "mesh set on a Mesh",
                |v| set(v, "mesh", json!("default")),
                fail("mesh", "must not be set"),
            ),
        ],
    );
}

#[test]
fn kuma_observability_sections_round_trip_but_are_refused() {
    let text = "
type: Mesh
name: default
logging:
  defaultBackend: file-1
  backends:
  - name: file-1
    type: file
    conf:
      path: /var/log/access.log
tracing:
  backends:
  - name: zipkin
    type: zipkin
    sampling: 80.5
    conf:
      url: http://zipkin:9411/api/v2/spans
metrics:
  enabledBackend: prom
  backends:
  - name: prom
    type: prometheus
constraints:
  dataplaneProxy:
    requirements:
    - tags:
        kuma.io/zone: east
";
    let value = yaml(text);
    assert_exact_violations(
        "every section",
        value.clone(),
        &[
            (
                "logging",
                "is not supported yet: Atoll generates no access logs",
            ),
            (
                "tracing",
                "is not supported yet: Atoll configures no tracing",
            ),
            ("metrics", "is not supported yet"),
            ("constraints", "is not supported yet"),
        ],
    );
    // Read without validation (as a store does), the sections come back exactly as written.
    let stored = atoll_model::decode_stored(value.clone()).expect("shape is right");
    assert_eq!(atoll_model::encode_value(&stored), value);
}

#[test]
fn empty_observability_sections_are_accepted() {
    for section in ["logging", "tracing", "metrics", "constraints"] {
        let mut value = yaml("type: Mesh\nname: default\n");
        set(&mut value, section, json!({}));
        assert_exact_violations(section, value.clone(), &[]);
        set(&mut value, section, Value::Null);
        assert_exact_violations(section, value, &[]);
    }
}
