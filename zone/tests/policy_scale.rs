//! The property the policy benchmark measures at full size, at a size CI can afford: a change
//! to a policy that targets one service gives exactly that service's proxy a new
//! configuration, and no other.

#[path = "../benches/policy_fixture.rs"]
mod fixture;

#[test]
fn a_policy_change_reaches_only_the_proxy_it_targets() {
    let n = 60;
    let mut world = fixture::world(n);
    let (before, _) = fixture::fingerprints(&world, n);
    fixture::apply_policy(&mut world, &fixture::policy(7, n, "9s"));
    let (after, _) = fixture::fingerprints(&world, n);
    let changed: Vec<usize> = (0..n).filter(|i| before[*i] != after[*i]).collect();
    assert_eq!(changed, [7], "only p-7 calls s-8 under policy t-7");
}
