//! A mesh of `n` services, each with one proxy calling the next service, and `n` policies,
//! each setting the timeout of one service's calls to the next: shared by the policy
//! benchmark (full size) and the test that runs in CI (small size).

use std::time::Instant;

use atoll_zone::proxy::build::build;
use atoll_zone::proxy::identity::Identities;
use atoll_zone::world::World;

fn apply(world: &mut World, yaml: &str) {
    for doc in atoll_model::parse_documents(yaml) {
        let r = doc.outcome.expect("valid fixture");
        let meta = r.meta.clone();
        world.apply(r.kind(), meta.mesh.as_deref(), &meta.name, Some(&r));
    }
}

pub fn policy(i: usize, n: usize, timeout: &str) -> String {
    format!(
        "type: MeshTimeout\nmesh: default\nname: t-{i}\nspec:\n  targetRef:\n    kind: MeshService\n    name: s-{i}\n  to:\n  - targetRef:\n      kind: MeshService\n      name: s-{}\n    default:\n      http:\n        requestTimeout: {timeout}\n",
        (i + 1) % n
    )
}

pub fn world(n: usize) -> World {
    let mut world = World::default();
    apply(&mut world, "type: Mesh\nname: default\n");
    for i in 0..n {
        apply(
            &mut world,
            &format!(
                "type: Dataplane\nmesh: default\nname: p-{i}\nnetworking:\n  address: 10.{}.{}.{}\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: s-{i}\n      kuma.io/protocol: http\n  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: s-{}\n",
                i / 65536 % 256,
                i / 256 % 256,
                i % 256,
                (i + 1) % n
            ),
        );
        apply(&mut world, &policy(i, n, "5s"));
    }
    world
}

pub fn apply_policy(world: &mut World, yaml: &str) {
    apply(world, yaml);
}

/// Every proxy's configuration fingerprint, and how long computing them all took.
pub fn fingerprints(world: &World, n: usize) -> (Vec<String>, std::time::Duration) {
    let mut identities = Identities::default();
    let started = Instant::now();
    let prints = (0..n)
        .map(|i| {
            build(
                world,
                None,
                &mut identities,
                &("default".into(), format!("p-{i}")),
                Instant::now(),
            )
            .expect("the proxy exists")
            .snapshot
            .fingerprint()
        })
        .collect();
    (prints, started.elapsed())
}
