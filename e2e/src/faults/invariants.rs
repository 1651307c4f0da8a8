//! What must hold after every fault, checked on the real processes' APIs:
//!
//! - the global and every zone hold exactly the same synced state: whole collections are
//!   compared by content hash, not counted ([`Snapshot`], [`wait_converged`]);
//! - no zone drops a resource the global did not delete ([`Watch`], sampling throughout);
//! - no Envoy is left with an empty endpoint set for a service that has instances, and no
//!   Envoy loses its certificate ([`Watch::envoy`], sampling its admin `/clusters`, `/certs`).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::process::http_get;

/// `GET path` on one server, from wherever it must be made (a lab host's loopback, say):
/// (status, body).
pub type Get = std::sync::Arc<dyn Fn(&str) -> anyhow::Result<(u16, String)> + Send + Sync>;

/// [`Get`] on 127.0.0.1:`port` of the test's own namespace.
pub fn loopback_get(port: u16) -> Get {
    std::sync::Arc::new(move |path| http_get(port, path))
}

/// Fields that legitimately differ between the global's copy and a zone's.
const LOCAL_FIELDS: &[&str] = &["creationTime", "modificationTime"];
/// Labels the receiving side adds.
const LOCAL_LABELS: &[&str] = &["kuma.io/origin", "kuma.io/zone", "kuma.io/env"];

/// Every resource of some collections on one control plane: `<collection>/<name>` to the hash
/// of its content (timestamps and the labels a zone adds on import left out).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot(pub BTreeMap<String, u64>);

impl Snapshot {
    /// Reads every page of each collection (e.g. `/meshes`, `/meshes/default/meshgateways`)
    /// from the API on 127.0.0.1:`port`.
    pub fn read(port: u16, collections: &[String]) -> anyhow::Result<Snapshot> {
        Self::read_with(|path| http_get(port, path), collections)
    }

    /// [`Snapshot::read`] through `get` (e.g. from inside a lab host).
    pub fn read_with(
        get: impl Fn(&str) -> anyhow::Result<(u16, String)>,
        collections: &[String],
    ) -> anyhow::Result<Snapshot> {
        let mut out = BTreeMap::new();
        for collection in collections {
            let mut path = format!("{collection}?size=1000");
            loop {
                let (status, body) = get(&path)?;
                if status != 200 {
                    bail!("GET {path} answered {status}: {body}");
                }
                let page: Value = serde_json::from_str(&body)
                    .with_context(|| format!("GET {path}: not JSON: {body}"))?;
                for item in page["items"].as_array().into_iter().flatten() {
                    let name = item["name"].as_str().unwrap_or_default().to_string();
                    out.insert(format!("{collection}/{name}"), content_hash(item));
                }
                match page["next"].as_str() {
                    Some(next) if !next.is_empty() => {
                        // `next` may be absolute; only its path and query matter here.
                        path = next
                            .find(collection.as_str())
                            .map_or(next.to_string(), |i| next[i..].to_string());
                    }
                    _ => break,
                }
            }
        }
        Ok(Snapshot(out))
    }

    /// One hash of the whole state.
    pub fn hash(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.0.hash(&mut hasher);
        hasher.finish()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What differs from `expected`: missing, extra and changed keys (at most a few each).
    pub fn diff(&self, expected: &Snapshot) -> String {
        let mine: BTreeSet<&String> = self.0.keys().collect();
        let theirs: BTreeSet<&String> = expected.0.keys().collect();
        let missing: Vec<_> = theirs.difference(&mine).take(5).collect();
        let extra: Vec<_> = mine.difference(&theirs).take(5).collect();
        let changed: Vec<_> = mine
            .intersection(&theirs)
            .filter(|k| self.0[**k] != expected.0[**k])
            .take(5)
            .collect();
        format!(
            "{} vs {} resources; missing {missing:?}, extra {extra:?}, changed {changed:?}",
            self.0.len(),
            expected.0.len()
        )
    }
}

/// The hash of a resource's content in a canonical form (serde_json's maps are sorted).
pub fn content_hash(item: &Value) -> u64 {
    let mut item = item.clone();
    if let Some(map) = item.as_object_mut() {
        for field in LOCAL_FIELDS {
            map.remove(*field);
        }
        if let Some(labels) = map.get_mut("labels").and_then(Value::as_object_mut) {
            for label in LOCAL_LABELS {
                labels.remove(*label);
            }
            if labels.is_empty() {
                map.remove("labels");
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    item.to_string().hash(&mut hasher);
    hasher.finish()
}

/// Waits until every zone's snapshot of `collections` equals the global's (read afresh each
/// round, so writes still in flight are allowed for); returns how long it took.
pub fn wait_converged(
    global_port: u16,
    zones: &[(&str, u16)],
    collections: &[String],
    deadline: Duration,
) -> anyhow::Result<Duration> {
    let zones: Vec<(&str, Get)> = zones
        .iter()
        .map(|(name, port)| (*name, loopback_get(*port)))
        .collect();
    wait_converged_with(&loopback_get(global_port), &zones, collections, deadline)
}

/// [`wait_converged`] reading each control plane through its [`Get`].
pub fn wait_converged_with(
    global: &Get,
    zones: &[(&str, Get)],
    collections: &[String],
    deadline: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        match Snapshot::read_with(global.as_ref(), collections) {
            Ok(global) => {
                let mut all = true;
                for (name, get) in zones {
                    match Snapshot::read_with(get.as_ref(), collections) {
                        Ok(zone) if zone == global => {}
                        Ok(zone) => {
                            all = false;
                            last = format!("{name}: {}", zone.diff(&global));
                            break;
                        }
                        Err(err) => {
                            all = false;
                            last = format!("{name}: {err:#}");
                            break;
                        }
                    }
                }
                if all {
                    return Ok(started.elapsed());
                }
            }
            Err(err) => last = format!("global: {err:#}"),
        }
        if started.elapsed() > deadline {
            bail!("zones did not converge to the global's state within {deadline:?}: {last}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Every key in `acked` is in the global's snapshot.
pub fn assert_acked_present(global: &Snapshot, acked: &[String]) -> anyhow::Result<()> {
    let lost: Vec<&String> = acked
        .iter()
        .filter(|k| !global.0.contains_key(*k))
        .collect();
    if !lost.is_empty() {
        bail!(
            "{} of {} acknowledged writes are missing on the global, e.g. {:?}",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(5)]
        );
    }
    Ok(())
}

/// Samples control planes and Envoys in the background and records every violation seen.
pub struct Watch {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
    /// Per zone: keys seen; cleared by [`Watch::forget`] when the test restarts the zone
    /// (its memory store starts empty: that is not a delete).
    seen: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Default for Watch {
    fn default() -> Self {
        Self::new()
    }
}

impl Watch {
    pub fn new() -> Watch {
        Watch {
            stop: Arc::new(AtomicBool::new(false)),
            violations: Arc::new(Mutex::new(Vec::new())),
            seen: Arc::new(Mutex::new(BTreeMap::new())),
            threads: Vec::new(),
        }
    }

    /// Zone `name` on `port` must never lose a key of `collections` once it had it (the
    /// tests delete nothing on the global while they watch).
    pub fn zone(&mut self, name: &str, port: u16, collections: Vec<String>) {
        self.zone_with(name, move |path| http_get(port, path), collections);
    }

    /// [`Watch::zone`] reading through `get` (e.g. from inside a lab host).
    pub fn zone_with(
        &mut self,
        name: &str,
        get: impl Fn(&str) -> anyhow::Result<(u16, String)> + Send + 'static,
        collections: Vec<String>,
    ) {
        let (stop, violations, seen) = (
            self.stop.clone(),
            self.violations.clone(),
            self.seen.clone(),
        );
        let name = name.to_string();
        self.threads.push(thread::spawn(move || {
            let mut sampled = false;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(snapshot) = Snapshot::read_with(&get, &collections) {
                    sampled = true;
                    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    let had = seen.entry(name.clone()).or_default();
                    let gone: Vec<&String> = had
                        .iter()
                        .filter(|k| !snapshot.0.contains_key(*k))
                        .take(3)
                        .collect();
                    if !gone.is_empty() {
                        let message =
                            format!("{name} deleted {gone:?}, which the global did not delete");
                        lock(&violations).push(message);
                    }
                    had.extend(snapshot.0.into_keys());
                }
                thread::sleep(Duration::from_millis(200));
            }
            // A watch that never read anything checked nothing.
            if !sampled {
                lock(&violations).push(format!("{name} could not be sampled even once"));
            }
        }));
    }

    /// The zone `name` was restarted by the test: what it held before is not expected back
    /// at once.
    pub fn forget(&self, name: &str) {
        lock(&self.seen).remove(name);
    }

    /// The Envoy with its admin on `admin_port` must keep at least one endpoint in `cluster`
    /// once it had one, and keep a certificate once it had one; it must show both at some
    /// point while watched.
    pub fn envoy(&mut self, name: &str, admin_port: u16, cluster: &str) {
        self.envoy_with(name, loopback_get(admin_port), cluster);
    }

    /// [`Watch::envoy`] reading the Envoy's admin API through `admin` (e.g. on a lab host).
    pub fn envoy_with(&mut self, name: &str, admin: Get, cluster: &str) {
        let (stop, violations) = (self.stop.clone(), self.violations.clone());
        let (name, cluster) = (name.to_string(), cluster.to_string());
        self.threads.push(thread::spawn(move || {
            let (mut had_hosts, mut had_cert) = (false, false);
            while !stop.load(Ordering::SeqCst) {
                if let Ok((200, clusters)) = admin("/clusters") {
                    let hosts = endpoints(&clusters, &cluster);
                    if hosts > 0 {
                        had_hosts = true;
                    } else if had_hosts && cluster_known(&clusters, &cluster) {
                        lock(&violations).push(format!(
                            "{name}'s Envoy was left with no endpoint for {cluster}"
                        ));
                    }
                }
                if let Ok((200, certs)) = admin("/certs") {
                    let has = certs.contains("\"cert_chain\"") && certs.contains("serial_number");
                    if has {
                        had_cert = true;
                    } else if had_cert {
                        lock(&violations).push(format!("{name}'s Envoy lost its certificate"));
                    }
                }
                thread::sleep(Duration::from_millis(100));
            }
            // A watch that never saw an endpoint or a certificate checked nothing (a wrong
            // admin address or cluster name would otherwise pass).
            if !had_hosts {
                lock(&violations).push(format!(
                    "{name}'s Envoy never showed an endpoint for {cluster}"
                ));
            }
            if !had_cert {
                lock(&violations).push(format!("{name}'s Envoy never showed a certificate"));
            }
        }));
    }

    /// The violations seen so far.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }

    /// Stops sampling and fails with every violation seen.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.stop_threads();
        let violations = lock(&self.violations).clone();
        if !violations.is_empty() {
            let mut unique: Vec<String> = violations;
            unique.dedup();
            bail!("invariants violated: {unique:#?}");
        }
        Ok(())
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hosts of `cluster` in Envoy's admin `/clusters` text (`<cluster>::<address>::cx_active::…`).
pub fn endpoints(clusters: &str, cluster: &str) -> usize {
    let prefix = format!("{cluster}::");
    clusters
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|rest| rest.contains("::health_flags::"))
        .count()
}

fn cluster_known(clusters: &str, cluster: &str) -> bool {
    clusters
        .lines()
        .any(|l| l.starts_with(&format!("{cluster}::")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashes_ignore_timestamps_and_local_labels_but_not_content() {
        let a = serde_json::json!({"type":"Mesh","name":"m","creationTime":"1","labels":{"kuma.io/origin":"global"}});
        let b = serde_json::json!({"type":"Mesh","name":"m","creationTime":"2"});
        let c = serde_json::json!({"type":"Mesh","name":"m","mtls":{}});
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
    }

    #[test]
    fn endpoints_are_counted_per_cluster() {
        let text = "backend::observability_name::backend\nbackend::127.0.0.1:1::health_flags::healthy\nbackend::127.0.0.1:2::health_flags::healthy\nother::127.0.0.1:3::health_flags::healthy\n";
        assert_eq!(endpoints(text, "backend"), 2);
        assert_eq!(endpoints(text, "missing"), 0);
    }
}
