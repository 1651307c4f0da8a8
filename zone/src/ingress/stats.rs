//! What the ingress counts: atomics that tests and the diagnostics read directly, mirrored to
//! the `metrics` facade (`atoll_ingress_*`) for the Prometheus endpoint.
//!
//! Per-SNI series exist only for SNIs found in the routing table: the SNI is chosen by the
//! peer, and labelling by whatever a peer sends would let anyone grow the metrics without
//! bound.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a connection was closed without being spliced to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// Not a TLS ClientHello, or a truncated or malformed one.
    Malformed,
    /// A valid ClientHello without a `server_name`: nothing to route by.
    NoSni,
    /// An SNI the routing table does not hold.
    UnknownSni,
    /// The ClientHello did not arrive within the handshake timeout (slow-loris).
    Timeout,
    /// Accepted while `max_connections` were open.
    OverLimit,
    /// No endpoint of the SNI accepted a connection.
    Upstream,
}

// === impl Rejection ===

impl Rejection {
    /// The `reason` label of `atoll_ingress_rejected_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::NoSni => "no_sni",
            Rejection::UnknownSni => "unknown_sni",
            Rejection::Timeout => "timeout",
            Rejection::OverLimit => "over_limit",
            Rejection::Upstream => "upstream",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters of one ingress. Shared with whoever wants to read them; only `serve` writes.
#[derive(Debug, Default)]
pub struct Stats {
    /// Every accepted TCP connection, rejected ones included.
    pub connections_total: AtomicU64,
    /// Connections currently open (reading their ClientHello or spliced).
    pub active: AtomicU64,
    /// Connections spliced to an endpoint.
    pub routed: AtomicU64,
    pub malformed: AtomicU64,
    pub no_sni: AtomicU64,
    pub unknown_sni: AtomicU64,
    /// ClientHellos that did not arrive within the handshake timeout.
    pub timeouts: AtomicU64,
    pub rejected_over_limit: AtomicU64,
    pub upstream_failures: AtomicU64,
    /// Spliced connections closed because neither side sent anything for the idle timeout.
    pub idle_timeouts: AtomicU64,
    per_sni: Mutex<HashMap<String, Arc<SniCounters>>>,
}

/// The live counters of one SNI; connections hold them so counting bytes takes no lock, and
/// the metric handles are looked up once per SNI, not once per connection.
#[derive(Debug)]
pub struct SniCounters {
    pub connections: AtomicU64,
    /// From the client to the endpoint (`direction="in"`).
    pub bytes_in: AtomicU64,
    /// From the endpoint to the client (`direction="out"`).
    pub bytes_out: AtomicU64,
    pub(crate) connections_metric: metrics::Counter,
    pub(crate) bytes_in_metric: metrics::Counter,
    pub(crate) bytes_out_metric: metrics::Counter,
}

/// A snapshot of [`SniCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SniStats {
    pub connections: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

// === impl Stats ===

impl Stats {
    /// The counters of `sni`, if a connection for it was ever routed.
    pub fn sni(&self, sni: &str) -> Option<SniStats> {
        self.lock().get(sni).map(|c| c.snapshot())
    }

    /// Every SNI's counters.
    pub fn per_sni(&self) -> BTreeMap<String, SniStats> {
        self.lock()
            .iter()
            .map(|(sni, c)| (sni.clone(), c.snapshot()))
            .collect()
    }

    /// Total rejections, all reasons.
    pub fn rejected(&self) -> u64 {
        [
            &self.malformed,
            &self.no_sni,
            &self.unknown_sni,
            &self.timeouts,
            &self.rejected_over_limit,
            &self.upstream_failures,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    pub(crate) fn accepted(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: Rejection) {
        let counter = match reason {
            Rejection::Malformed => &self.malformed,
            Rejection::NoSni => &self.no_sni,
            Rejection::UnknownSni => &self.unknown_sni,
            Rejection::Timeout => &self.timeouts,
            Rejection::OverLimit => &self.rejected_over_limit,
            Rejection::Upstream => &self.upstream_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("atoll_ingress_rejected_total", "reason" => reason.as_str()).increment(1);
    }

    /// Counts a connection for `sni` (a table key) and hands out its counters.
    pub(crate) fn connection_for(&self, sni: &str) -> Arc<SniCounters> {
        let counters = {
            let mut map = self.lock();
            match map.get(sni) {
                Some(c) => c.clone(),
                None => map
                    .entry(sni.to_string())
                    .or_insert_with(|| Arc::new(SniCounters::new(sni)))
                    .clone(),
            }
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        counters.connections_metric.increment(1);
        counters
    }

    /// Forgets the counters of SNIs the table no longer has, so they stay bounded by the
    /// table (open connections keep theirs until they end).
    pub(crate) fn retain(&self, table: &super::Table) {
        self.lock().retain(|sni, _| table.contains_key(sni));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<SniCounters>>> {
        // Counters stay meaningful after a panic elsewhere; never take the ingress down for them.
        self.per_sni
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

// === impl SniCounters ===

impl SniCounters {
    fn new(sni: &str) -> Self {
        SniCounters {
            connections: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connections_metric: metrics::counter!("atoll_ingress_connections_total", "sni" => sni.to_string()),
            bytes_in_metric: metrics::counter!("atoll_ingress_bytes_total", "sni" => sni.to_string(), "direction" => "in"),
            bytes_out_metric: metrics::counter!("atoll_ingress_bytes_total", "sni" => sni.to_string(), "direction" => "out"),
        }
    }

    fn snapshot(&self) -> SniStats {
        SniStats {
            connections: self.connections.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// Counts an open connection for as long as it lives, however its task ends (an aborted task
/// drops it too, so a drain cut short still leaves the gauge right).
pub(crate) struct Active<'a>(&'a Stats);

impl<'a> Active<'a> {
    pub(crate) fn new(stats: &'a Stats) -> Self {
        stats.active.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("atoll_ingress_active_connections").increment(1.0);
        Active(stats)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("atoll_ingress_active_connections").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    /// Records counters as `name{k=v,...}` → value, and gauge registrations by name.
    #[derive(Default)]
    struct Seen {
        counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
        gauges: Mutex<Vec<String>>,
    }

    fn render(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Recorder for Seen {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let value = self
                .counters
                .lock()
                .unwrap()
                .entry(render(key))
                .or_default()
                .clone();
            Counter::from_arc(value)
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.gauges.lock().unwrap().push(render(key));
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn counts_and_mirrors_to_metrics() {
        let seen = Seen::default();
        let stats = Stats::default();
        metrics::with_local_recorder(&seen, || {
            stats.reject(Rejection::Malformed);
            stats.reject(Rejection::Malformed);
            stats.reject(Rejection::OverLimit);
            let c = stats.connection_for("x.example");
            c.bytes_in.fetch_add(10, Ordering::Relaxed);
            stats.connection_for("x.example");
            let active = Active::new(&stats);
            assert_eq!(stats.active.load(Ordering::Relaxed), 1);
            drop(active);
        });
        assert_eq!(stats.malformed.load(Ordering::Relaxed), 2);
        assert_eq!(stats.rejected_over_limit.load(Ordering::Relaxed), 1);
        assert_eq!(stats.rejected(), 3);
        assert_eq!(stats.active.load(Ordering::Relaxed), 0);
        assert_eq!(
            stats.sni("x.example"),
            Some(SniStats {
                connections: 2,
                bytes_in: 10,
                bytes_out: 0
            })
        );
        assert_eq!(stats.sni("y.example"), None);
        let counters: BTreeMap<String, u64> = seen
            .counters
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect();
        assert_eq!(
            counters,
            BTreeMap::from([
                (
                    "atoll_ingress_bytes_total{sni=x.example,direction=in}".to_string(),
                    0
                ),
                (
                    "atoll_ingress_bytes_total{sni=x.example,direction=out}".to_string(),
                    0
                ),
                (
                    "atoll_ingress_connections_total{sni=x.example}".to_string(),
                    2
                ),
                (
                    "atoll_ingress_rejected_total{reason=malformed}".to_string(),
                    2
                ),
                (
                    "atoll_ingress_rejected_total{reason=over_limit}".to_string(),
                    1
                ),
            ])
        );
        assert!(
            seen.gauges
                .lock()
                .unwrap()
                .iter()
                .all(|g| g == "atoll_ingress_active_connections{}")
        );
    }
}
