//! What a proxy's configuration was computed from, and the index from those inputs back to
//! the proxies, so a change recomputes only the proxies it can affect.

use std::collections::{BTreeMap, BTreeSet};

/// A proxy: (mesh, Dataplane name).
pub type ProxyId = (String, String);

pub use crate::world::Dep;

#[derive(Debug, Default)]
pub struct Index {
    by_dep: BTreeMap<Dep, BTreeSet<ProxyId>>,
    by_proxy: BTreeMap<ProxyId, BTreeSet<Dep>>,
}

impl Index {
    /// Records that `proxy` now depends on exactly `deps`.
    pub fn set(&mut self, proxy: &ProxyId, deps: BTreeSet<Dep>) {
        self.remove(proxy);
        for dep in &deps {
            self.by_dep
                .entry(dep.clone())
                .or_default()
                .insert(proxy.clone());
        }
        self.by_proxy.insert(proxy.clone(), deps);
    }

    pub fn remove(&mut self, proxy: &ProxyId) {
        for dep in self.by_proxy.remove(proxy).unwrap_or_default() {
            if let Some(set) = self.by_dep.get_mut(&dep) {
                set.remove(proxy);
                if set.is_empty() {
                    self.by_dep.remove(&dep);
                }
            }
        }
    }

    /// The proxies that depend on any of `deps`.
    pub fn affected<'a>(&self, deps: impl IntoIterator<Item = &'a Dep>) -> BTreeSet<ProxyId> {
        deps.into_iter()
            .filter_map(|d| self.by_dep.get(d))
            .flatten()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dependents_are_affected_and_old_deps_are_forgotten() {
        let mut index = Index::default();
        let a = ("m".to_string(), "a".to_string());
        let b = ("m".to_string(), "b".to_string());
        let web = Dep::Service("m".into(), "web".into());
        let api = Dep::Service("m".into(), "api".into());
        index.set(&a, BTreeSet::from([web.clone()]));
        index.set(&b, BTreeSet::from([api.clone()]));
        assert_eq!(index.affected([&web]), BTreeSet::from([a.clone()]));
        index.set(&a, BTreeSet::from([api.clone()]));
        assert!(index.affected([&web]).is_empty());
        assert_eq!(index.affected([&api]).len(), 2);
        index.remove(&b);
        assert_eq!(index.affected([&api]), BTreeSet::from([a]));
    }
}
