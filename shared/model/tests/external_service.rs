//! MeshExternalService validation, rule by rule (seed 002).

mod support;

use support::*;

/// An HTTPS destination with every TLS setting in use.
const BASE: &str = r#"
type: MeshExternalService
name: httpbin
mesh: default
spec:
  match:
    type: HostnameGenerator
    port: 443
    protocol: http
  endpoints:
  - address: httpbin.org
    port: 443
  tls:
    enabled: true
    allowRenegotiation: false
    version:
      min: TLS12
      max: TLS13
    verification:
      mode: Secured
      serverName: httpbin.org
      subjectAltNames:
      - type: Exact
        value: httpbin.org
      caCert:
        inline: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
      clientCert:
        secret: httpbin-client-cert
      clientKey:
        secret: httpbin-client-key
"#;

/// The plain TCP example's shape: no TLS at all.
const TCP_BASE: &str = r#"
type: MeshExternalService
name: tcpbin
mesh: default
spec:
  match:
    type: HostnameGenerator
    port: 4242
    protocol: tcp
  endpoints:
  - address: tcpbin.com
    port: 4242
"#;

#[test]
fn match_section() {
    run_table(
        BASE,
        &[
            edit(
                "type omitted (defaults to HostnameGenerator)",
                |v| remove(v, "spec.match.type"),
                PASS,
            ),
            edit(
                "protocol omitted (defaults to tcp)",
                |v| remove(v, "spec.match.protocol"),
                PASS,
            ),
            edit(
                "protocol tcp",
                |v| set(v, "spec.match.protocol", json!("tcp")),
                PASS,
            ),
            edit(
                "protocol grpc",
                |v| set(v, "spec.match.protocol", json!("grpc")),
                PASS,
            ),
            edit(
                "protocol http2",
                |v| set(v, "spec.match.protocol", json!("http2")),
                PASS,
            ),
            edit("port 1", |v| set(v, "spec.match.port", json!(1)), PASS),
            edit(
                "port 65535",
                |v| set(v, "spec.match.port", json!(65535)),
                PASS,
            ),
            edit(
                "match missing",
                |v| remove(v, "spec.match"),
                fail("spec.match", "must be set"),
            ),
            edit(
                "port 0",
                |v| set(v, "spec.match.port", json!(0)),
                fail("spec.match.port", "1-65535"),
            ),
            edit(
                "port omitted",
                |v| remove(v, "spec.match.port"),
                fail("spec.match.port", "1-65535"),
            ),
            edit(
                "port 70000",
                |v| set(v, "spec.match.port", json!(70000)),
                fail("spec.match.port", "1-65535"),
            ),
            edit(
                "protocol udp",
                |v| set(v, "spec.match.protocol", json!("udp")),
                fail("spec.match.protocol", "unknown value \"udp\""),
            ),
            edit(
                "protocol in upper case",
                |v| set(v, "spec.match.protocol", json!("HTTP")),
                fail("spec.match.protocol", "unknown value"),
            ),
            edit(
                "type Hostname",
                |v| set(v, "spec.match.type", json!("Hostname")),
                fail("spec.match.type", "HostnameGenerator"),
            ),
        ],
    );
}

#[test]
fn endpoints() {
    run_table(
        TCP_BASE,
        &[
            edit(
                "IPv4 address",
                |v| set(v, "spec.endpoints[0].address", json!("1.1.1.1")),
                PASS,
            ),
            edit(
                "IPv6 address",
                |v| set(v, "spec.endpoints[0].address", json!("2001:db8::1")),
                PASS,
            ),
            edit(
                "unix socket without port",
                |v| {
                    set(
                        v,
                        "spec.endpoints[0]",
                        json!({"address": "unix:///tmp/example.sock"}),
                    )
                },
                PASS,
            ),
            edit(
                "several endpoints",
                |v| {
                    push(
                        v,
                        "spec.endpoints",
                        json!({"address": "10.0.0.2", "port": 4242}),
                    )
                },
                PASS,
            ),
            edit(
                "no endpoints and no extension",
                |v| remove(v, "spec.endpoints"),
                fail("spec.endpoints", "at least one endpoint"),
            ),
            edit(
                "empty endpoints and no extension",
                |v| set(v, "spec.endpoints", json!([])),
                fail("spec.endpoints", "at least one endpoint"),
            ),
            edit(
                "an extension, which no plug-in would honour",
                |v| {
                    remove(v, "spec.endpoints");
                    set(
                        v,
                        "spec.extension",
                        json!({"type": "Lambda", "config": {"arn": "x"}}),
                    );
                },
                fail("spec.extension", "is not supported"),
            ),
            edit(
                "extension without a type",
                |v| {
                    remove(v, "spec.endpoints");
                    set(v, "spec.extension", json!({"config": {}}));
                },
                fail("spec.extension.type", "must not be empty"),
            ),
            edit(
                "empty address",
                |v| set(v, "spec.endpoints[0].address", json!("")),
                fail("spec.endpoints[0].address", "must not be empty"),
            ),
            edit(
                "address missing",
                |v| remove(v, "spec.endpoints[0].address"),
                fail("spec.endpoints[0].address", "must not be empty"),
            ),
            edit(
                "address is not a host",
                |v| set(v, "spec.endpoints[0].address", json!("not a host!")),
                fail(
                    "spec.endpoints[0].address",
                    "IP address, a DNS name, or unix://",
                ),
            ),
            edit(
                "address is a URL",
                |v| set(v, "spec.endpoints[0].address", json!("https://tcpbin.com")),
                fail("spec.endpoints[0].address", "IP address, a DNS name"),
            ),
            edit(
                "relative unix socket path",
                |v| {
                    set(
                        v,
                        "spec.endpoints[0]",
                        json!({"address": "unix://tmp/example.sock"}),
                    )
                },
                fail("spec.endpoints[0].address", "absolute path"),
            ),
            edit(
                "unix socket without a path",
                |v| set(v, "spec.endpoints[0]", json!({"address": "unix://"})),
                fail("spec.endpoints[0].address", "absolute path"),
            ),
            edit(
                "unix socket with a port",
                |v| {
                    set(
                        v,
                        "spec.endpoints[0].address",
                        json!("unix:///tmp/example.sock"),
                    )
                },
                fail(
                    "spec.endpoints[0].port",
                    "must not be set for a unix socket",
                ),
            ),
            edit(
                "port missing",
                |v| remove(v, "spec.endpoints[0].port"),
                fail("spec.endpoints[0].port", "must be set"),
            ),
            edit(
                "port 0",
                |v| set(v, "spec.endpoints[0].port", json!(0)),
                fail("spec.endpoints[0].port", "1-65535"),
            ),
            edit(
                "port 70000",
                |v| set(v, "spec.endpoints[0].port", json!(70000)),
                fail("spec.endpoints[0].port", "1-65535"),
            ),
            edit(
                "bad second endpoint",
                |v| push(v, "spec.endpoints", json!({"address": "10.0.0.2"})),
                fail("spec.endpoints[1].port", "must be set"),
            ),
        ],
    );
}

#[test]
fn tls_versions() {
    run_table(
        BASE,
        &[
            edit(
                "min equals max",
                |v| {
                    set(
                        v,
                        "spec.tls.version",
                        json!({"min": "TLS12", "max": "TLS12"}),
                    )
                },
                PASS,
            ),
            edit(
                "only min",
                |v| set(v, "spec.tls.version", json!({"min": "TLS13"})),
                PASS,
            ),
            edit(
                "TLSAuto",
                |v| {
                    set(
                        v,
                        "spec.tls.version",
                        json!({"min": "TLSAuto", "max": "TLS10"}),
                    )
                },
                PASS,
            ),
            edit(
                "min greater than max",
                |v| {
                    set(
                        v,
                        "spec.tls.version",
                        json!({"min": "TLS13", "max": "TLS12"}),
                    )
                },
                fail("spec.tls.version.min", "must not be greater than max"),
            ),
            edit(
                "unknown max",
                |v| set(v, "spec.tls.version.max", json!("TLS14")),
                fail("spec.tls.version.max", "unknown value \"TLS14\""),
            ),
            edit(
                "unknown min",
                |v| set(v, "spec.tls.version.min", json!("SSLv3")),
                fail("spec.tls.version.min", "unknown value"),
            ),
        ],
    );
}

#[test]
fn tls_verification() {
    run_table(
        BASE,
        &[
            edit(
                "mode SkipSAN",
                |v| set(v, "spec.tls.verification.mode", json!("SkipSAN")),
                PASS,
            ),
            edit(
                "mode SkipCA",
                |v| set(v, "spec.tls.verification.mode", json!("SkipCA")),
                PASS,
            ),
            edit(
                "mode SkipAll",
                |v| set(v, "spec.tls.verification.mode", json!("SkipAll")),
                PASS,
            ),
            edit(
                "mode omitted",
                |v| remove(v, "spec.tls.verification.mode"),
                PASS,
            ),
            edit(
                "mode Skip",
                |v| set(v, "spec.tls.verification.mode", json!("Skip")),
                fail("spec.tls.verification.mode", "unknown value \"Skip\""),
            ),
            edit(
                "SAN type Prefix",
                |v| {
                    set(
                        v,
                        "spec.tls.verification.subjectAltNames[0].type",
                        json!("Prefix"),
                    )
                },
                PASS,
            ),
            edit(
                "SAN type Regex",
                |v| {
                    set(
                        v,
                        "spec.tls.verification.subjectAltNames[0].type",
                        json!("Regex"),
                    )
                },
                fail(
                    "spec.tls.verification.subjectAltNames[0].type",
                    "unknown value",
                ),
            ),
            edit(
                "SAN without value",
                |v| remove(v, "spec.tls.verification.subjectAltNames[0].value"),
                fail(
                    "spec.tls.verification.subjectAltNames[0].value",
                    "must not be empty",
                ),
            ),
            edit(
                "bad serverName",
                |v| set(v, "spec.tls.verification.serverName", json!("a..b")),
                fail("spec.tls.verification.serverName", "valid DNS name"),
            ),
        ],
    );
}

#[test]
fn tls_data_sources() {
    run_table(
        BASE,
        &[
            edit(
                "caCert from a file",
                |v| {
                    set(
                        v,
                        "spec.tls.verification.caCert",
                        json!({"file": "/ca.pem"}),
                    )
                },
                PASS,
            ),
            edit(
                "caCert inlineString",
                |v| {
                    set(
                        v,
                        "spec.tls.verification.caCert",
                        json!({"inlineString": "pem"}),
                    )
                },
                PASS,
            ),
            edit(
                "no client certificate at all",
                |v| {
                    remove(v, "spec.tls.verification.clientCert");
                    remove(v, "spec.tls.verification.clientKey");
                },
                PASS,
            ),
            edit(
                "caCert without a source",
                |v| set(v, "spec.tls.verification.caCert", json!({})),
                fail("spec.tls.verification.caCert", "exactly one"),
            ),
            edit(
                "caCert with two sources",
                |v| set(v, "spec.tls.verification.caCert.secret", json!("ca")),
                fail("spec.tls.verification.caCert", "found: inline, secret"),
            ),
            edit(
                "caCert inline not base64",
                |v| set(v, "spec.tls.verification.caCert.inline", json!("%%%")),
                fail("spec.tls.verification.caCert.inline", "base64"),
            ),
            edit(
                "clientCert without a source",
                |v| set(v, "spec.tls.verification.clientCert", json!({})),
                fail("spec.tls.verification.clientCert", "exactly one"),
            ),
            edit(
                "clientKey with two sources",
                |v| set(v, "spec.tls.verification.clientKey.file", json!("/key.pem")),
                fail("spec.tls.verification.clientKey", "exactly one"),
            ),
            edit(
                "clientKey with an empty secret name",
                |v| set(v, "spec.tls.verification.clientKey.secret", json!("")),
                fail(
                    "spec.tls.verification.clientKey.secret",
                    "must not be empty",
                ),
            ),
            edit(
                "clientCert without clientKey",
                |v| remove(v, "spec.tls.verification.clientKey"),
                fail(
                    "spec.tls.verification.clientKey",
                    "together with clientCert",
                ),
            ),
            edit(
                "clientKey without clientCert",
                |v| remove(v, "spec.tls.verification.clientCert"),
                fail(
                    "spec.tls.verification.clientCert",
                    "together with clientKey",
                ),
            ),
        ],
    );
}

#[test]
fn unknown_fields_and_status() {
    run_table(
        BASE,
        &[
            edit(
                "status is kept, not validated",
                |v| set(v, "status", json!({"vip": {"ip": "242.0.0.1"}})),
                PASS,
            ),
            edit(
                "unknown spec field",
                |v| set(v, "spec.endpoint", json!([])),
                fail("spec.endpoint", "unknown field"),
            ),
            edit(
                "unknown top-level field",
                |v| set(v, "endpoints", json!([])),
                fail("endpoints", "unknown field"),
            ),
            edit(
                "unknown verification field",
                |v| set(v, "spec.tls.verification.sni", json!("x")),
                fail("spec.tls.verification.sni", "unknown field"),
            ),
        ],
    );
}

#[test]
fn every_violation_is_reported() {
    let mut doc = yaml(BASE);
    set(&mut doc, "spec.match.port", json!(0));
    set(&mut doc, "spec.endpoints[0].port", json!(70000));
    set(&mut doc, "spec.tls.version.min", json!("TLS13"));
    set(&mut doc, "spec.tls.version.max", json!("TLS10"));
    remove(&mut doc, "spec.tls.verification.clientKey");
    assert_exact_violations(
        "four broken rules",
        doc,
        &[
            ("spec.match.port", "1-65535"),
            ("spec.endpoints[0].port", "1-65535"),
            ("spec.tls.version.min", "greater than max"),
            (
                "spec.tls.verification.clientKey",
                "together with clientCert",
            ),
        ],
    );
}

#[test]
fn names_and_endpoint_priorities_as_kuma() {
    run_table(
        BASE,
        &[
            edit(
                "name of 63 characters",
                |v| set(v, "name", json!("a".repeat(63))),
                PASS,
            ),
            edit(
                "name of 64 characters",
                |v| set(v, "name", json!("a".repeat(64))),
                fail(
                    "name",
                    "must be at most 63 characters for a MeshExternalService",
                ),
            ),
            edit(
                "priority 0",
                |v| set(v, "spec.endpoints[0].priority", json!(0)),
                PASS,
            ),
            edit(
                "priority 1",
                |v| set(v, "spec.endpoints[0].priority", json!(1)),
                fail(
                    "spec.endpoints[0].priority",
                    "is not supported yet: every endpoint is primary",
                ),
            ),
            edit(
                "priority beyond Kuma's range",
                |v| set(v, "spec.endpoints[0].priority", json!(129)),
                fail("spec.endpoints[0].priority", "must be from 0 to 128"),
            ),
        ],
    );
}
