//! MeshGateway validation, rule by rule (seeds 000 and 001).

mod support;

use support::*;

/// One HTTP listener, as in seed 001's first example.
const BASE: &str = r#"
type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: foo.example.com
    tags:
      port: http-8080
"#;

/// One HTTPS listener terminating TLS with one certificate.
const HTTPS_BASE: &str = r#"
type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    hostname: foo.example.com
    tls:
      mode: TERMINATE
      certificates:
      - secret: foo-example-com-certificate
"#;

/// Makes listener 0 a cross-mesh HTTP listener.
fn cross_mesh(v: &mut Value) {
    set(v, "conf.listeners[0].crossMesh", json!(true));
}

/// Appends a second HTTP listener on 8080 for `bar.example.com`.
fn second_listener(v: &mut Value) {
    push(
        v,
        "conf.listeners",
        json!({"port": 8080, "protocol": "HTTP", "hostname": "bar.example.com"}),
    );
}

#[test]
fn selectors() {
    run_table(
        BASE,
        &[
            edit(
                "selectors missing",
                |v| remove(v, "selectors"),
                fail("selectors", "at least one selector"),
            ),
            edit(
                "selectors empty",
                |v| set(v, "selectors", json!([])),
                fail("selectors", "at least one selector"),
            ),
            edit(
                "selector with empty match",
                |v| set(v, "selectors[0].match", json!({})),
                fail("selectors[0].match", "at least one tag"),
            ),
            edit(
                "selector without match",
                |v| set(v, "selectors[0]", json!({})),
                fail("selectors[0].match", "at least one tag"),
            ),
            edit(
                "second selector with empty match",
                |v| push(v, "selectors", json!({"match": {}})),
                fail("selectors[1].match", "at least one tag"),
            ),
            edit(
                "two selectors without crossMesh",
                |v| {
                    push(
                        v,
                        "selectors",
                        json!({"match": {"kuma.io/service": "other"}}),
                    )
                },
                PASS,
            ),
            edit("one selector with crossMesh", cross_mesh, PASS),
            edit(
                "two selectors with crossMesh",
                |v| {
                    cross_mesh(v);
                    push(
                        v,
                        "selectors",
                        json!({"match": {"kuma.io/service": "other"}}),
                    );
                },
                fail("selectors", "exactly one selector"),
            ),
            edit(
                "two selectors, crossMesh on the second listener",
                |v| {
                    push(
                        v,
                        "selectors",
                        json!({"match": {"kuma.io/service": "other"}}),
                    );
                    push(
                        v,
                        "conf.listeners",
                        json!({"port": 9090, "protocol": "HTTP", "crossMesh": true}),
                    );
                },
                fail("selectors", "exactly one selector"),
            ),
        ],
    );
}

#[test]
fn service_tag_is_forbidden() {
    run_table(
        BASE,
        &[
            edit(
                "gateway tags without kuma.io/service",
                |v| set(v, "tags", json!({"zone": "east"})),
                PASS,
            ),
            edit(
                "gateway tags with kuma.io/service",
                |v| set(v, "tags", json!({"kuma.io/service": "edge"})),
                fail(r#"tags["kuma.io/service"]"#, "must not be set"),
            ),
            edit(
                "listener tags with kuma.io/service",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tags[\"kuma.io/service\"]",
                        json!("edge"),
                    )
                },
                fail(
                    r#"conf.listeners[0].tags["kuma.io/service"]"#,
                    "must not be set",
                ),
            ),
            edit(
                "second listener tags with kuma.io/service",
                |v| {
                    second_listener(v);
                    set(v, "conf.listeners[1].tags", json!({"kuma.io/service": "x"}));
                },
                fail(
                    r#"conf.listeners[1].tags["kuma.io/service"]"#,
                    "must not be set",
                ),
            ),
        ],
    );
}

#[test]
fn conf_and_listeners() {
    run_table(
        BASE,
        &[
            edit(
                "conf missing",
                |v| remove(v, "conf"),
                fail("conf", "must be set"),
            ),
            edit(
                "conf null",
                |v| set(v, "conf", Value::Null),
                fail("conf", "must be set"),
            ),
            edit(
                "conf without listeners",
                |v| set(v, "conf", json!({})),
                fail("conf.listeners", "at least one listener"),
            ),
            edit(
                "listeners empty",
                |v| set(v, "conf.listeners", json!([])),
                fail("conf.listeners", "at least one listener"),
            ),
        ],
    );
}

#[test]
fn listener_port() {
    run_table(
        BASE,
        &[
            edit(
                "port 1",
                |v| set(v, "conf.listeners[0].port", json!(1)),
                PASS,
            ),
            edit(
                "port 65535",
                |v| set(v, "conf.listeners[0].port", json!(65535)),
                PASS,
            ),
            edit(
                "port 0",
                |v| set(v, "conf.listeners[0].port", json!(0)),
                fail("conf.listeners[0].port", "1-65535"),
            ),
            edit(
                "port 70000",
                |v| set(v, "conf.listeners[0].port", json!(70000)),
                fail("conf.listeners[0].port", "1-65535"),
            ),
            edit(
                "port 65536",
                |v| set(v, "conf.listeners[0].port", json!(65536)),
                fail("conf.listeners[0].port", "1-65535"),
            ),
            edit(
                "port missing",
                |v| remove(v, "conf.listeners[0].port"),
                fail("conf.listeners[0].port", "1-65535"),
            ),
            edit(
                "port negative",
                |v| set(v, "conf.listeners[0].port", json!(-1)),
                fail("conf.listeners[0].port", "whole number"),
            ),
            edit(
                "port as a string",
                |v| set(v, "conf.listeners[0].port", json!("8080")),
                fail("conf.listeners[0].port", "invalid type"),
            ),
        ],
    );
}

#[test]
fn listener_protocol() {
    run_table(
        BASE,
        &[
            edit(
                "protocol TCP without hostname",
                |v| {
                    set(v, "conf.listeners[0].protocol", json!("TCP"));
                    remove(v, "conf.listeners[0].hostname");
                },
                PASS,
            ),
            edit(
                "protocol missing",
                |v| remove(v, "conf.listeners[0].protocol"),
                fail("conf.listeners[0].protocol", "must be set"),
            ),
            edit(
                "protocol NONE",
                |v| set(v, "conf.listeners[0].protocol", json!("NONE")),
                fail(
                    "conf.listeners[0].protocol",
                    "NONE is not a usable protocol",
                ),
            ),
            edit(
                "protocol FOO",
                |v| set(v, "conf.listeners[0].protocol", json!("FOO")),
                fail("conf.listeners[0].protocol", "unknown value \"FOO\""),
            ),
            edit(
                "protocol in lower case",
                |v| set(v, "conf.listeners[0].protocol", json!("http")),
                fail("conf.listeners[0].protocol", "unknown value"),
            ),
            edit(
                "hostname on a TCP listener",
                |v| set(v, "conf.listeners[0].protocol", json!("TCP")),
                fail(
                    "conf.listeners[0].hostname",
                    "must not be set for protocol TCP",
                ),
            ),
        ],
    );
}

#[test]
fn listener_hostname() {
    run_table(
        BASE,
        &[
            edit(
                "no hostname",
                |v| remove(v, "conf.listeners[0].hostname"),
                PASS,
            ),
            edit(
                "leftmost wildcard",
                |v| set(v, "conf.listeners[0].hostname", json!("*.example.com")),
                PASS,
            ),
            edit(
                "any host",
                |v| set(v, "conf.listeners[0].hostname", json!("*")),
                PASS,
            ),
            edit(
                "single label",
                |v| set(v, "conf.listeners[0].hostname", json!("localhost")),
                PASS,
            ),
            edit(
                "wildcard in the middle",
                |v| set(v, "conf.listeners[0].hostname", json!("foo.*.com")),
                fail("conf.listeners[0].hostname", "valid DNS name"),
            ),
            edit(
                "label starting with a hyphen",
                |v| set(v, "conf.listeners[0].hostname", json!("-bad.com")),
                fail("conf.listeners[0].hostname", "valid DNS name"),
            ),
            edit(
                "empty label",
                |v| set(v, "conf.listeners[0].hostname", json!("a..b")),
                fail("conf.listeners[0].hostname", "valid DNS name"),
            ),
            edit(
                "partial-label wildcard",
                |v| set(v, "conf.listeners[0].hostname", json!("*foo.example.com")),
                fail("conf.listeners[0].hostname", "valid DNS name"),
            ),
            edit(
                "underscore",
                |v| set(v, "conf.listeners[0].hostname", json!("foo_bar.com")),
                fail("conf.listeners[0].hostname", "valid DNS name"),
            ),
            edit(
                "label longer than 63 characters",
                |v| {
                    let label = "a".repeat(64);
                    set(
                        v,
                        "conf.listeners[0].hostname",
                        json!(format!("{label}.com")),
                    );
                },
                fail("conf.listeners[0].hostname", "valid DNS name"),
            ),
        ],
    );
}

#[test]
fn https_and_tls() {
    run_table(
        HTTPS_BASE,
        &[
            edit(
                "two certificates",
                |v| {
                    push(
                        v,
                        "conf.listeners[0].tls.certificates",
                        json!({"secret": "foo-example-com-ecdsa"}),
                    )
                },
                PASS,
            ),
            edit(
                "HTTPS without tls",
                |v| remove(v, "conf.listeners[0].tls"),
                fail("conf.listeners[0].tls", "must be set for protocol HTTPS"),
            ),
            edit(
                "HTTPS without a tls mode",
                |v| remove(v, "conf.listeners[0].tls.mode"),
                fail("conf.listeners[0].tls.mode", "TERMINATE"),
            ),
            edit(
                "HTTPS with tls mode NONE",
                |v| set(v, "conf.listeners[0].tls.mode", json!("NONE")),
                fail("conf.listeners[0].tls.mode", "TERMINATE"),
            ),
            edit(
                "HTTPS with an unknown tls mode",
                |v| set(v, "conf.listeners[0].tls.mode", json!("STRICT")),
                fail("conf.listeners[0].tls.mode", "TERMINATE"),
            ),
            edit(
                "HTTPS with PASSTHROUGH",
                |v| {
                    set(v, "conf.listeners[0].tls.mode", json!("PASSTHROUGH"));
                    set(v, "conf.listeners[0].tls.certificates", json!([]));
                },
                fail(
                    "conf.listeners[0].tls.mode",
                    "must be TERMINATE for protocol HTTPS",
                ),
            ),
            edit(
                "no certificates",
                |v| set(v, "conf.listeners[0].tls.certificates", json!([])),
                fail(
                    "conf.listeners[0].tls.certificates",
                    "one or two certificates",
                ),
            ),
            edit(
                "certificates missing",
                |v| remove(v, "conf.listeners[0].tls.certificates"),
                fail(
                    "conf.listeners[0].tls.certificates",
                    "one or two certificates",
                ),
            ),
            edit(
                "three certificates",
                |v| {
                    for name in ["b", "c"] {
                        push(
                            v,
                            "conf.listeners[0].tls.certificates",
                            json!({"secret": name}),
                        );
                    }
                },
                fail("conf.listeners[0].tls.certificates", "found 3"),
            ),
            edit(
                "TLS with PASSTHROUGH and no certificates",
                |v| {
                    set(v, "conf.listeners[0].protocol", json!("TLS"));
                    set(v, "conf.listeners[0].tls", json!({"mode": "PASSTHROUGH"}));
                },
                PASS,
            ),
            edit(
                "TLS with TERMINATE",
                |v| set(v, "conf.listeners[0].protocol", json!("TLS")),
                PASS,
            ),
            edit(
                "TLS without tls",
                |v| {
                    set(v, "conf.listeners[0].protocol", json!("TLS"));
                    remove(v, "conf.listeners[0].tls");
                },
                fail("conf.listeners[0].tls", "must be set for protocol TLS"),
            ),
            edit(
                "TLS with PASSTHROUGH and certificates",
                |v| {
                    set(v, "conf.listeners[0].protocol", json!("TLS"));
                    set(v, "conf.listeners[0].tls.mode", json!("PASSTHROUGH"));
                },
                fail("conf.listeners[0].tls.certificates", "must be empty"),
            ),
            edit(
                "HTTP with tls",
                |v| set(v, "conf.listeners[0].protocol", json!("HTTP")),
                fail("conf.listeners[0].tls", "must not be set for protocol HTTP"),
            ),
            edit(
                "TCP with PASSTHROUGH",
                |v| {
                    set(v, "conf.listeners[0].protocol", json!("TCP"));
                    remove(v, "conf.listeners[0].hostname");
                    set(v, "conf.listeners[0].tls", json!({"mode": "PASSTHROUGH"}));
                },
                fail("conf.listeners[0].tls", "must not be set for protocol TCP"),
            ),
            edit(
                "tls options (reserved, empty)",
                |v| set(v, "conf.listeners[0].tls.options", json!({})),
                PASS,
            ),
        ],
    );
}

#[test]
fn certificate_data_sources() {
    const CERT: &str = "conf.listeners[0].tls.certificates[0]";
    run_table(
        HTTPS_BASE,
        &[
            edit(
                "file",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls.certificates[0]",
                        json!({"file": "/certs/foo.pem"}),
                    )
                },
                PASS,
            ),
            edit(
                "inline base64",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls.certificates[0]",
                        json!({"inline": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}),
                    )
                },
                PASS,
            ),
            edit(
                "inlineString",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls.certificates[0]",
                        json!({"inlineString": "-----BEGIN CERTIFICATE-----"}),
                    )
                },
                PASS,
            ),
            edit(
                "no source",
                |v| set(v, "conf.listeners[0].tls.certificates[0]", json!({})),
                fail(CERT, "exactly one of file, inline, inlineString, secret"),
            ),
            edit(
                "secret and file",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls.certificates[0].file",
                        json!("/x.pem"),
                    )
                },
                fail(CERT, "found: file, secret"),
            ),
            edit(
                "secret and inlineString",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls.certificates[0].inlineString",
                        json!("pem"),
                    )
                },
                fail(CERT, "exactly one"),
            ),
            edit(
                "inline not base64",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls.certificates[0]",
                        json!({"inline": "not base64!"}),
                    )
                },
                fail("conf.listeners[0].tls.certificates[0].inline", "base64"),
            ),
            edit(
                "bad second certificate",
                |v| push(v, "conf.listeners[0].tls.certificates", json!({})),
                fail("conf.listeners[0].tls.certificates[1]", "exactly one"),
            ),
            edit(
                "unknown source",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls.certificates[0]",
                        json!({"vault": "x"}),
                    )
                },
                fail(
                    "conf.listeners[0].tls.certificates[0].vault",
                    "unknown field",
                ),
            ),
        ],
    );
}

#[test]
fn cross_mesh_listeners() {
    run_table(
        BASE,
        &[
            edit("crossMesh HTTP", cross_mesh, PASS),
            edit(
                "crossMesh HTTP without hostname",
                |v| {
                    cross_mesh(v);
                    remove(v, "conf.listeners[0].hostname");
                },
                PASS,
            ),
            edit(
                "crossMesh HTTPS",
                |v| {
                    cross_mesh(v);
                    set(v, "conf.listeners[0].protocol", json!("HTTPS"));
                    set(
                        v,
                        "conf.listeners[0].tls",
                        json!({"mode": "TERMINATE", "certificates": [{"secret": "s"}]}),
                    );
                },
                fail(
                    "conf.listeners[0].crossMesh",
                    "only allowed with protocol HTTP",
                ),
            ),
            edit(
                "crossMesh TCP",
                |v| {
                    cross_mesh(v);
                    set(v, "conf.listeners[0].protocol", json!("TCP"));
                    remove(v, "conf.listeners[0].hostname");
                },
                fail(
                    "conf.listeners[0].crossMesh",
                    "only allowed with protocol HTTP",
                ),
            ),
            edit(
                "crossMesh HTTP with tls",
                |v| {
                    cross_mesh(v);
                    set(
                        v,
                        "conf.listeners[0].tls",
                        json!({"mode": "TERMINATE", "certificates": [{"secret": "s"}]}),
                    );
                },
                fail("conf.listeners[0].tls", "crossMesh"),
            ),
        ],
    );
}

#[test]
fn listeners_sharing_a_port() {
    run_table(
        BASE,
        &[
            edit("two HTTP hostnames on one port", second_listener, PASS),
            edit(
                "same hostname on different ports",
                |v| {
                    push(
                        v,
                        "conf.listeners",
                        json!({"port": 9090, "protocol": "HTTP", "hostname": "foo.example.com"}),
                    )
                },
                PASS,
            ),
            edit(
                "different protocols on one port",
                |v| {
                    push(
                        v,
                        "conf.listeners",
                        json!({"port": 8080, "protocol": "TCP"}),
                    )
                },
                fail("conf.listeners[1].protocol", "shares port 8080"),
            ),
            edit(
                "HTTP and HTTPS on one port",
                |v| {
                    push(
                        v,
                        "conf.listeners",
                        json!({
                            "port": 8080, "protocol": "HTTPS", "hostname": "bar.example.com",
                            "tls": {"mode": "TERMINATE", "certificates": [{"secret": "s"}]},
                        }),
                    )
                },
                fail("conf.listeners[1].protocol", "must be HTTP"),
            ),
            edit(
                "same hostname twice",
                |v| {
                    second_listener(v);
                    set(v, "conf.listeners[1].hostname", json!("foo.example.com"));
                },
                fail("conf.listeners[1].hostname", "already used on port 8080"),
            ),
            edit(
                "two listeners without hostname",
                |v| {
                    remove(v, "conf.listeners[0].hostname");
                    push(
                        v,
                        "conf.listeners",
                        json!({"port": 8080, "protocol": "HTTP"}),
                    );
                },
                fail("conf.listeners[1].hostname", "already used on port 8080"),
            ),
            edit(
                "no hostname and '*'",
                |v| {
                    remove(v, "conf.listeners[0].hostname");
                    push(
                        v,
                        "conf.listeners",
                        json!({"port": 8080, "protocol": "HTTP", "hostname": "*"}),
                    );
                },
                fail("conf.listeners[1].hostname", "already used"),
            ),
            edit(
                "third listener repeats the second's hostname",
                |v| {
                    second_listener(v);
                    second_listener(v);
                },
                fail("conf.listeners[2].hostname", "by conf.listeners[1]"),
            ),
            edit(
                "TCP listeners on different ports",
                |v| {
                    set(
                        v,
                        "conf.listeners",
                        json!([
                            {"port": 9000, "protocol": "TCP"},
                            {"port": 9001, "protocol": "TCP"},
                        ]),
                    )
                },
                PASS,
            ),
            edit(
                "TCP listeners sharing a port",
                |v| {
                    set(
                        v,
                        "conf.listeners",
                        json!([
                            {"port": 9000, "protocol": "TCP"},
                            {"port": 9000, "protocol": "TCP"},
                        ]),
                    )
                },
                fail(
                    "conf.listeners[1].port",
                    "only HTTP, HTTPS and TLS listeners can share a port",
                ),
            ),
            edit(
                "TLS listeners sharing a port with different hostnames",
                |v| {
                    set(
                        v,
                        "conf.listeners",
                        json!([
                            {"port": 9443, "protocol": "TLS", "hostname": "a.example.com",
                             "tls": {"mode": "PASSTHROUGH"}},
                            {"port": 9443, "protocol": "TLS", "hostname": "b.example.com",
                             "tls": {"mode": "PASSTHROUGH"}},
                        ]),
                    )
                },
                PASS,
            ),
        ],
    );
}

#[test]
fn connection_limits_on_a_shared_port() {
    run_table(
        BASE,
        &[
            edit(
                "equal limits",
                |v| {
                    second_listener(v);
                    set(v, "conf.listeners[0].resources.connectionLimit", json!(100));
                    set(v, "conf.listeners[1].resources.connectionLimit", json!(100));
                },
                PASS,
            ),
            edit(
                "one limit only",
                |v| {
                    second_listener(v);
                    set(v, "conf.listeners[1].resources.connectionLimit", json!(100));
                },
                PASS,
            ),
            edit(
                "different limits on different ports",
                |v| {
                    second_listener(v);
                    set(v, "conf.listeners[1].port", json!(9090));
                    set(v, "conf.listeners[0].resources.connectionLimit", json!(100));
                    set(v, "conf.listeners[1].resources.connectionLimit", json!(200));
                },
                PASS,
            ),
            edit(
                "conflicting limits",
                |v| {
                    second_listener(v);
                    set(v, "conf.listeners[0].resources.connectionLimit", json!(100));
                    set(v, "conf.listeners[1].resources.connectionLimit", json!(200));
                },
                fail(
                    "conf.listeners[1].resources.connectionLimit",
                    "200 conflicts with 100",
                ),
            ),
            edit(
                "conflicting limits spelled connection_limit",
                |v| {
                    second_listener(v);
                    set(
                        v,
                        "conf.listeners[0].resources.connection_limit",
                        json!(100),
                    );
                    set(
                        v,
                        "conf.listeners[1].resources.connection_limit",
                        json!(200),
                    );
                },
                fail(
                    "conf.listeners[1].resources.connectionLimit",
                    "200 conflicts with 100",
                ),
            ),
            edit(
                "equal limits, one spelled connection_limit",
                |v| {
                    second_listener(v);
                    set(
                        v,
                        "conf.listeners[0].resources.connection_limit",
                        json!(100),
                    );
                    set(v, "conf.listeners[1].resources.connectionLimit", json!(100));
                },
                PASS,
            ),
            edit(
                "conflict between listeners after an unlimited first one",
                |v| {
                    second_listener(v);
                    push(
                        v,
                        "conf.listeners",
                        json!({"port": 8080, "protocol": "HTTP", "hostname": "baz.example.com"}),
                    );
                    set(v, "conf.listeners[1].resources.connectionLimit", json!(100));
                    set(v, "conf.listeners[2].resources.connectionLimit", json!(200));
                },
                fail(
                    "conf.listeners[2].resources.connectionLimit",
                    "200 conflicts with 100",
                ),
            ),
        ],
    );
}

#[test]
fn unknown_fields_are_reported_with_their_path() {
    run_table(
        BASE,
        &[
            edit(
                "misspelt listener field",
                |v| set(v, "conf.listeners[0].prot", json!("HTTP")),
                fail("conf.listeners[0].prot", "unknown field"),
            ),
            edit(
                "unknown top-level field",
                |v| set(v, "spec", json!({})),
                fail("spec", "unknown field"),
            ),
            edit(
                "unknown conf field",
                |v| set(v, "conf.listener", json!([])),
                fail("conf.listener", "unknown field"),
            ),
            edit(
                "unknown selector field",
                |v| set(v, "selectors[0].matches", json!({})),
                fail("selectors[0].matches", "unknown field"),
            ),
            edit(
                "unknown field with a dot in its name",
                |v| set(v, "conf.listeners[0][\"x.y\"]", json!(1)),
                fail(r#"conf.listeners[0]["x.y"]"#, "unknown field"),
            ),
            edit(
                "unknown tls field",
                |v| {
                    set(
                        v,
                        "conf.listeners[0].tls",
                        json!({"mode": "TERMINATE", "cert": []}),
                    )
                },
                fail("conf.listeners[0].tls.cert", "unknown field"),
            ),
        ],
    );
}

#[test]
fn all_violations_are_reported_at_once() {
    let mut doc = yaml(BASE);
    set(&mut doc, "tags", json!({"kuma.io/service": "edge"}));
    set(&mut doc, "conf.listeners[0].port", json!(0));
    set(&mut doc, "conf.listeners[0].protocol", json!("FOO"));
    set(&mut doc, "conf.listeners[0].prot", json!("HTTP"));
    set(&mut doc, "conf.listeners[0].hostname", json!("foo.*.com"));
    push(
        &mut doc,
        "conf.listeners",
        json!({"port": 70000, "protocol": "HTTPS"}),
    );
    assert_exact_violations(
        "seven violations in one document",
        doc,
        &[
            (r#"tags["kuma.io/service"]"#, "must not be set"),
            ("conf.listeners[0].prot", "unknown field"),
            ("conf.listeners[0].port", "1-65535"),
            ("conf.listeners[0].protocol", "unknown value"),
            ("conf.listeners[0].hostname", "valid DNS name"),
            ("conf.listeners[1].port", "1-65535"),
            ("conf.listeners[1].tls", "must be set for protocol HTTPS"),
        ],
    );

    // Meta and content violations come together too.
    let mut doc = yaml(BASE);
    remove(&mut doc, "mesh");
    remove(&mut doc, "selectors");
    set(
        &mut doc,
        "conf.listeners[0].tags",
        json!({"kuma.io/service": "x"}),
    );
    assert_exact_violations(
        "meta and content",
        doc,
        &[
            ("mesh", "must be set"),
            ("selectors", "at least one selector"),
            (
                r#"conf.listeners[0].tags["kuma.io/service"]"#,
                "must not be set",
            ),
        ],
    );
}

#[test]
fn decode_error_names_the_resource() {
    let mut doc = yaml(BASE);
    set(&mut doc, "conf.listeners[0].port", json!(0));
    let err = atoll_model::decode_value(doc).expect_err("port 0 must be rejected");
    assert_eq!(err.kind, Some(atoll_model::Kind::MeshGateway));
    assert_eq!(err.name.as_deref(), Some("edge-gateway"));
    assert_eq!(err.violations.len(), 1, "{}", render(&err.violations));
    assert_eq!(
        err.to_string(),
        "conf.listeners[0].port: must be in the range 1-65535"
    );
}
