//! Policies at scale: `n` policies over `n` proxies (1,000 by default; `cargo bench -p
//! atoll-zone --bench policies -- 2000` for another size). Prints the time to compute every
//! proxy's configuration, and, when one policy for one service changes, the time to
//! recompute and how many proxies get a new configuration (only the affected one should).

#[path = "policy_fixture.rs"]
mod fixture;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let mut world = fixture::world(n);
    let (before, full) = fixture::fingerprints(&world, n);
    println!(
        "policies: {n} MeshTimeouts over {n} proxies: every configuration computed in {full:?}"
    );
    fixture::apply_policy(&mut world, &fixture::policy(7, n, "9s"));
    let (after, recompute) = fixture::fingerprints(&world, n);
    let pushed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    println!(
        "policies: one policy for one service changed: all {n} recomputed in {recompute:?}; {pushed} proxy got a new configuration (the one the policy targets)"
    );
}
