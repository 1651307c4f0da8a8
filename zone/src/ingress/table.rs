//! The routing table and the choice of endpoint for a connection.
//!
//! Owns round-robin balancing per SNI and passive health: an endpoint whose connect failed is
//! tried last for [`UNHEALTHY_FOR`]. Must not probe endpoints itself (the sidecars behind them
//! are health-checked by the control plane, which removes dead ones from the table) and must
//! not drop endpoints from the candidates: when every endpoint looks unhealthy they are all
//! tried anyway, since a stale mark is worse than a failed connect.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// SNI (lower case) to the local endpoints that serve it: the inbound addresses of the
/// destination sidecars, which terminate the mesh mTLS the ingress passes through.
pub type Table = HashMap<String, Vec<SocketAddr>>;

/// How long an endpoint whose connect failed is tried only after the others.
pub const UNHEALTHY_FOR: Duration = Duration::from_secs(5);

/// Round-robin with passive health, shared by every connection of one ingress.
#[derive(Debug)]
pub struct Picker {
    unhealthy_for: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Per-SNI cursor: one shared cursor would let two SNIs that alternate pin each other to
    /// the same endpoint. Keyed only by SNIs found in the table, so it stays bounded.
    cursors: HashMap<String, usize>,
    /// Endpoint to the instant it is considered healthy again.
    unhealthy: HashMap<SocketAddr, Instant>,
}

impl Default for Picker {
    fn default() -> Self {
        Self::new(UNHEALTHY_FOR)
    }
}

// === impl Picker ===

impl Picker {
    pub fn new(unhealthy_for: Duration) -> Self {
        Self {
            unhealthy_for,
            state: Mutex::new(State::default()),
        }
    }

    /// The order in which to try `endpoints` for a connection to `sni`: the healthy ones
    /// starting at the next round-robin position, then the unhealthy ones in the same order.
    pub fn candidates(&self, sni: &str, endpoints: &[SocketAddr]) -> Vec<SocketAddr> {
        self.candidates_at(sni, endpoints, Instant::now())
    }

    /// Marks `endpoint` as failing: tried after the others until the mark expires.
    pub fn mark_failed(&self, endpoint: SocketAddr) {
        self.mark_failed_at(endpoint, Instant::now());
    }

    /// Clears the mark of `endpoint` after a successful connect.
    pub fn mark_ok(&self, endpoint: SocketAddr) {
        let mut state = self.lock();
        if !state.unhealthy.is_empty() {
            state.unhealthy.remove(&endpoint);
        }
    }

    /// Whether `endpoint` is currently marked as failing.
    pub fn is_unhealthy(&self, endpoint: SocketAddr) -> bool {
        let now = Instant::now();
        self.lock()
            .unhealthy
            .get(&endpoint)
            .is_some_and(|until| *until > now)
    }

    fn candidates_at(&self, sni: &str, endpoints: &[SocketAddr], now: Instant) -> Vec<SocketAddr> {
        if endpoints.is_empty() {
            return Vec::new();
        }
        let mut state = self.lock();
        state.unhealthy.retain(|_, until| *until > now);
        let start = match state.cursors.get_mut(sni) {
            Some(cursor) => {
                let start = *cursor;
                *cursor = cursor.wrapping_add(1);
                start
            }
            None => {
                state.cursors.insert(sni.to_string(), 1);
                0
            }
        } % endpoints.len();
        let rotated = endpoints
            .iter()
            .cycle()
            .skip(start)
            .take(endpoints.len())
            .copied();
        let (healthy, unhealthy): (Vec<_>, Vec<_>) =
            rotated.partition(|e| !state.unhealthy.contains_key(e));
        let mut order = healthy;
        order.extend(unhealthy);
        order
    }

    fn mark_failed_at(&self, endpoint: SocketAddr, now: Instant) {
        let until = now + self.unhealthy_for;
        self.lock().unhealthy.insert(endpoint, until);
    }

    /// Drops the cursors of SNIs no longer in `table`, so a churning table cannot grow them.
    pub fn retain(&self, table: &Table) {
        self.lock().cursors.retain(|sni, _| table.contains_key(sni));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a cache of hints: after a panic elsewhere it is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    #[test]
    fn round_robin_per_sni() {
        let picker = Picker::default();
        let eps = addrs(3);
        let now = Instant::now();
        let firsts: Vec<_> = (0..6)
            .map(|_| picker.candidates_at("a", &eps, now)[0])
            .collect();
        assert_eq!(firsts, [eps[0], eps[1], eps[2], eps[0], eps[1], eps[2]]);
        // Every candidate list holds every endpoint once.
        let mut all = picker.candidates_at("a", &eps, now);
        all.sort();
        assert_eq!(all, eps);
    }

    #[test]
    fn alternating_snis_do_not_pin_each_other() {
        let picker = Picker::default();
        let eps = addrs(2);
        let now = Instant::now();
        let mut seen_a = Vec::new();
        for _ in 0..4 {
            seen_a.push(picker.candidates_at("a", &eps, now)[0]);
            picker.candidates_at("b", &eps, now);
        }
        assert_eq!(seen_a, [eps[0], eps[1], eps[0], eps[1]]);
    }

    #[test]
    fn unhealthy_endpoints_go_last_until_the_mark_expires() {
        let picker = Picker::new(Duration::from_secs(5));
        let eps = addrs(3);
        let now = Instant::now();
        picker.mark_failed_at(eps[0], now);
        for _ in 0..3 {
            let order = picker.candidates_at("a", &eps, now + Duration::from_secs(1));
            assert_ne!(order[0], eps[0]);
            assert_eq!(order[2], eps[0], "still tried, last: {order:?}");
        }
        let later = now + Duration::from_secs(6);
        let firsts: Vec<_> = (0..3)
            .map(|_| picker.candidates_at("a", &eps, later)[0])
            .collect();
        assert!(firsts.contains(&eps[0]), "expired mark: {firsts:?}");
    }

    #[test]
    fn all_unhealthy_are_still_tried() {
        let picker = Picker::default();
        let eps = addrs(2);
        for e in &eps {
            picker.mark_failed(*e);
        }
        assert!(picker.is_unhealthy(eps[0]));
        let order = picker.candidates("a", &eps);
        assert_eq!(order.len(), 2);
        picker.mark_ok(eps[0]);
        assert!(!picker.is_unhealthy(eps[0]));
        assert_eq!(picker.candidates("a", &eps)[0], eps[0]);
    }

    #[test]
    fn empty_and_retain() {
        let picker = Picker::default();
        assert!(picker.candidates("a", &[]).is_empty());
        picker.candidates("a", &addrs(1));
        picker.candidates("b", &addrs(1));
        let table = Table::from([("b".to_string(), addrs(1))]);
        picker.retain(&table);
        assert_eq!(picker.lock().cursors.len(), 1);
    }
}
