//! MeshLoadBalancingStrategy validation, rule by rule: each rule rejects one document at its
//! field path, and the valid values next to it are accepted.

mod support;

use support::*;

/// Every field of MeshLoadBalancingStrategy's `to[].default` in use.
const STRATEGY: &str = r#"
type: MeshLoadBalancingStrategy
name: backend-lb
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: web
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      localityAwareness:
        disabled: false
        localZone:
          affinityTags:
          - key: k8s.io/node
          - key: k8s.io/az
        crossZone:
          failover:
          - from:
              zones: [zone-1]
            to:
              type: Only
              zones: [zone-2]
          - to:
              type: AnyExcept
              zones: [zone-4]
          - to:
              type: Any
          - to:
              type: None
          failoverThreshold:
            percentage: "70.5"
      loadBalancer:
        type: RingHash
        ringHash:
          hashFunction: XXHash
          minRingSize: 1024
          maxRingSize: 8388608
          hashPolicies:
          - type: Header
            header:
              name: x-user
          - type: Cookie
            cookie:
              name: session
              ttl: 1h
              path: /
          - type: Connection
            connection:
              sourceIP: true
          - type: SourceIP
          - type: QueryParameter
            queryParameter:
              name: user
          - type: FilterState
            filterState:
              key: io.atoll.user
            terminal: true
"#;

const LB: &str = "spec.to[0].default.loadBalancer";
const LA: &str = "spec.to[0].default.localityAwareness";

#[test]
fn load_balancing_strategy_rules() {
    run_table(
        STRATEGY,
        &[
            edit(
                "a gateway target",
                |d| {
                    set(
                        d,
                        "spec.targetRef",
                        json!({"kind": "MeshGateway", "name": "edge"}),
                    )
                },
                PASS,
            ),
            edit(
                "a gateway target with listener tags",
                |d| {
                    set(
                        d,
                        "spec.targetRef",
                        json!({"kind": "MeshGateway", "name": "edge", "tags": {"port": "80"}}),
                    )
                },
                fail("spec.targetRef.tags", "its listeners share them"),
            ),
            edit(
                "a route target",
                |d| {
                    set(
                        d,
                        "spec.targetRef",
                        json!({"kind": "MeshHTTPRoute", "name": "r"}),
                    )
                },
                fail("spec.targetRef.kind", "not supported here"),
            ),
            edit(
                "from entries",
                |d| {
                    set(
                        d,
                        "spec.from",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {}}]),
                    )
                },
                fail("spec.from", "does not configure inbound"),
            ),
            edit(
                "no entries",
                |d| remove(d, "spec.to"),
                fail("spec.to", "at least one"),
            ),
            edit(
                "an empty default",
                |d| set(d, "spec.to[0].default", json!({})),
                PASS,
            ),
            edit(
                "some tags weighted",
                |d| {
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[0].weight"),
                        json!(9),
                    )
                },
                fail(
                    "spec.to[0].default.localityAwareness.localZone.affinityTags",
                    "every tag or to none",
                ),
            ),
            edit(
                "all weighted",
                |d| {
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[0].weight"),
                        json!(90),
                    );
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[1].weight"),
                        json!(10),
                    );
                },
                PASS,
            ),
            edit(
                "weights overflowing",
                |d| {
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[0].weight"),
                        json!(4_000_000_000u32),
                    );
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[1].weight"),
                        json!(4_000_000_000u32),
                    );
                },
                fail(
                    "spec.to[0].default.localityAwareness.localZone.affinityTags",
                    "add up to less than",
                ),
            ),
            edit(
                "too many unweighted tags",
                |d| {
                    let tags: Vec<Value> =
                        (0..10).map(|i| json!({"key": format!("t{i}")})).collect();
                    set(d, &format!("{LA}.localZone.affinityTags"), json!(tags));
                },
                fail(
                    "spec.to[0].default.localityAwareness.localZone.affinityTags",
                    "at most 9",
                ),
            ),
            edit(
                "a zero weight",
                |d| {
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[0].weight"),
                        json!(0),
                    );
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[1].weight"),
                        json!(1),
                    );
                },
                fail(
                    "spec.to[0].default.localityAwareness.localZone.affinityTags[0].weight",
                    "greater than 0",
                ),
            ),
            edit(
                "a tag without a key",
                |d| set(d, &format!("{LA}.localZone.affinityTags[1].key"), json!("")),
                fail(
                    "spec.to[0].default.localityAwareness.localZone.affinityTags[1].key",
                    "must be set",
                ),
            ),
            edit(
                "a key twice",
                |d| {
                    set(
                        d,
                        &format!("{LA}.localZone.affinityTags[1].key"),
                        json!("k8s.io/node"),
                    )
                },
                fail(
                    "spec.to[0].default.localityAwareness.localZone.affinityTags[1].key",
                    "listed twice",
                ),
            ),
            edit(
                "a rule without to",
                |d| remove(d, &format!("{LA}.crossZone.failover[0].to")),
                fail(
                    "spec.to[0].default.localityAwareness.crossZone.failover[0].to",
                    "must be set",
                ),
            ),
            edit(
                "an unknown type",
                |d| {
                    set(
                        d,
                        &format!("{LA}.crossZone.failover[0].to.type"),
                        json!("Some"),
                    )
                },
                fail(
                    "spec.to[0].default.localityAwareness.crossZone.failover[0].to.type",
                    "AnyExcept",
                ),
            ),
            edit(
                "Only without zones",
                |d| remove(d, &format!("{LA}.crossZone.failover[0].to.zones")),
                fail(
                    "spec.to[0].default.localityAwareness.crossZone.failover[0].to.zones",
                    "at least one entry for type Only",
                ),
            ),
            edit(
                "Any with zones",
                |d| {
                    set(
                        d,
                        &format!("{LA}.crossZone.failover[2].to.zones"),
                        json!(["zone-3"]),
                    )
                },
                fail(
                    "spec.to[0].default.localityAwareness.crossZone.failover[2].to.zones",
                    "must not be set for type Any",
                ),
            ),
            edit(
                "from without zones",
                |d| {
                    set(
                        d,
                        &format!("{LA}.crossZone.failover[0].from.zones"),
                        json!([]),
                    )
                },
                fail(
                    "spec.to[0].default.localityAwareness.crossZone.failover[0].from.zones",
                    "at least one entry",
                ),
            ),
            edit(
                "a zero threshold",
                |d| {
                    set(
                        d,
                        &format!("{LA}.crossZone.failoverThreshold.percentage"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.localityAwareness.crossZone.failoverThreshold.percentage",
                    "greater than 0",
                ),
            ),
            edit(
                "a threshold over 100",
                |d| {
                    set(
                        d,
                        &format!("{LA}.crossZone.failoverThreshold.percentage"),
                        json!("101"),
                    )
                },
                fail(
                    "spec.to[0].default.localityAwareness.crossZone.failoverThreshold.percentage",
                    "at most 100",
                ),
            ),
            edit(
                "no balancer type",
                |d| remove(d, &format!("{LB}.type")),
                fail("spec.to[0].default.loadBalancer.type", "must be set"),
            ),
            edit(
                "another type's settings",
                |d| set(d, &format!("{LB}.type"), json!("Maglev")),
                fail(
                    "spec.to[0].default.loadBalancer.ringHash",
                    "must not be set for type Maglev",
                ),
            ),
            edit(
                "a ring of zero",
                |d| set(d, &format!("{LB}.ringHash.minRingSize"), json!(0)),
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.minRingSize",
                    "from 1 to",
                ),
            ),
            edit(
                "a ring too large",
                |d| set(d, &format!("{LB}.ringHash.maxRingSize"), json!(8388609)),
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.maxRingSize",
                    "from 1 to",
                ),
            ),
            edit(
                "min above max",
                |d| set(d, &format!("{LB}.ringHash.maxRingSize"), json!(512)),
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.minRingSize",
                    "maxRingSize",
                ),
            ),
            edit(
                "an unknown hash function",
                |d| set(d, &format!("{LB}.ringHash.hashFunction"), json!("CRC")),
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.hashFunction",
                    "MurmurHash2",
                ),
            ),
            edit(
                "a header policy without its header",
                |d| remove(d, &format!("{LB}.ringHash.hashPolicies[0].header")),
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.hashPolicies[0].header",
                    "must be set for type Header",
                ),
            ),
            edit(
                "a header policy with a cookie",
                |d| {
                    set(
                        d,
                        &format!("{LB}.ringHash.hashPolicies[0].cookie"),
                        json!({"name": "c"}),
                    )
                },
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.hashPolicies[0].cookie",
                    "must not be set for type Header",
                ),
            ),
            edit(
                "a nameless header",
                |d| {
                    set(
                        d,
                        &format!("{LB}.ringHash.hashPolicies[0].header.name"),
                        json!(""),
                    )
                },
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.hashPolicies[0].header.name",
                    "must be set",
                ),
            ),
            edit(
                "a bad cookie ttl",
                |d| {
                    set(
                        d,
                        &format!("{LB}.ringHash.hashPolicies[1].cookie.ttl"),
                        json!("soon"),
                    )
                },
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.hashPolicies[1].cookie.ttl",
                    "",
                ),
            ),
            edit(
                "a connection policy not on the source address",
                |d| {
                    set(
                        d,
                        &format!("{LB}.ringHash.hashPolicies[2].connection.sourceIP"),
                        json!(false),
                    )
                },
                fail(
                    "spec.to[0].default.loadBalancer.ringHash.hashPolicies[2].connection.sourceIP",
                    "must be true",
                ),
            ),
            edit(
                "least request",
                |d| {
                    set(
                        d,
                        LB,
                        json!({"type": "LeastRequest", "leastRequest": {"choiceCount": 3, "activeRequestBias": "1.5"}}),
                    )
                },
                PASS,
            ),
            edit(
                "one choice",
                |d| {
                    set(
                        d,
                        LB,
                        json!({"type": "LeastRequest", "leastRequest": {"choiceCount": 1}}),
                    )
                },
                fail(
                    "spec.to[0].default.loadBalancer.leastRequest.choiceCount",
                    "at least 2",
                ),
            ),
            edit(
                "a negative bias",
                |d| {
                    set(
                        d,
                        LB,
                        json!({"type": "LeastRequest", "leastRequest": {"activeRequestBias": "-1"}}),
                    )
                },
                fail(
                    "spec.to[0].default.loadBalancer.leastRequest.activeRequestBias",
                    "at least 0",
                ),
            ),
            edit(
                "maglev with a prime table",
                |d| {
                    set(
                        d,
                        LB,
                        json!({"type": "Maglev", "maglev": {"tableSize": 65537}}),
                    )
                },
                PASS,
            ),
            edit(
                "maglev with a table that is not prime",
                |d| {
                    set(
                        d,
                        LB,
                        json!({"type": "Maglev", "maglev": {"tableSize": 65536}}),
                    )
                },
                fail("spec.to[0].default.loadBalancer.maglev.tableSize", "prime"),
            ),
            edit(
                "random and round robin",
                |d| set(d, LB, json!({"type": "Random"})),
                PASS,
            ),
            edit(
                "an unknown balancer",
                |d| set(d, LB, json!({"type": "Fastest"})),
                fail("spec.to[0].default.loadBalancer.type", "RoundRobin"),
            ),
        ],
    );
}

#[test]
fn the_document_reads_back_whole() {
    let resource = decode(STRATEGY).unwrap_or_else(|e| panic!("{e:?}"));
    let back = atoll_model::encode_value(&resource);
    let original = yaml(STRATEGY);
    assert_eq!(back["spec"], original["spec"]);
}
