//! Validation: every rule a resource must satisfy, reported all at once with field paths such
//! as `conf.listeners[1].port`.
//!
//! One file per resource type; `common` holds the checks types share (ports, names, tags,
//! data sources, durations).

mod common;
mod dataplane;
mod external_service;
mod gateway;
mod hostname_generator;
mod mesh;
mod meta;
mod policies;
mod policies_balancing;
mod policies_gateway;
mod policies_limits;
mod policies_metric;
mod policies_resilience;
mod routes;
mod secret;
mod zone_proxies;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::resource::{Resource, Spec};

pub use common::{is_dns_label, is_dns_name, is_dns_subdomain, is_wildcard_hostname};

/// One broken rule: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The field path, e.g. `conf.listeners[1].port`; empty for the document as a whole.
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Violation {
            field: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// A field path under construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn root() -> Self {
        Path(String::new())
    }

    /// A named field known to be a plain identifier.
    pub fn field(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    pub fn index(&self, index: usize) -> Path {
        Path(format!("{}[{index}]", self.0))
    }

    /// A map entry, always written as `["key"]` (tag and label keys contain dots and slashes).
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key:?}]", self.0))
    }

    /// A field named by input: plain when it is an identifier, quoted otherwise.
    pub fn child(&self, name: &str) -> Path {
        let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            self.field(name)
        } else {
            self.key(name)
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collects violations while the validators walk a resource.
#[derive(Debug, Default)]
pub(crate) struct Report(Vec<Violation>);

impl Report {
    pub(crate) fn add(&mut self, path: &Path, message: impl Into<String>) {
        self.0.push(Violation::new(path, message));
    }
}

/// Checks every rule for the resource's type; `Err` lists all violations found.
pub fn validate(resource: &Resource) -> Result<(), Vec<Violation>> {
    let mut report = Report::default();
    meta::validate(resource, &mut report);
    let root = Path::root();
    let spec = root.field("spec");
    match &resource.spec {
        Spec::Mesh(s) => mesh::validate(s, &root, &mut report),
        Spec::MeshGateway(s) => gateway::validate(s, &root, &mut report),
        Spec::MeshHttpRoute(s) => routes::validate_http(s, &spec, &mut report),
        Spec::MeshTcpRoute(s) => routes::validate_tcp(s, &spec, &mut report),
        Spec::MeshExternalService(s) => external_service::validate(s, &spec, &mut report),
        Spec::HostnameGenerator(s) => hostname_generator::validate(s, &spec, &mut report),
        Spec::MeshTrafficPermission(s) => policies::traffic_permission(s, &spec, &mut report),
        Spec::MeshTimeout(s) => policies::timeout(s, &spec, &mut report),
        Spec::MeshRetry(s) => policies::retry(s, &spec, &mut report),
        Spec::MeshCircuitBreaker(s) => policies_resilience::circuit_breaker(s, &spec, &mut report),
        Spec::MeshHealthCheck(s) => policies_resilience::health_check(s, &spec, &mut report),
        Spec::MeshRateLimit(s) => policies_limits::rate_limit(s, &spec, &mut report),
        Spec::MeshFaultInjection(s) => policies_limits::fault_injection(s, &spec, &mut report),
        Spec::MeshAccessLog(s) => policies_limits::access_log(s, &spec, &mut report),
        Spec::MeshLoadBalancingStrategy(s) => {
            policies_balancing::load_balancing(s, &spec, &mut report)
        }
        Spec::MeshMetric(s) => policies_metric::metric(s, &spec, &mut report),
        Spec::Secret(s) | Spec::GlobalSecret(s) => secret::validate(s, &root, &mut report),
        Spec::Dataplane(s) => dataplane::validate(s, &root, &mut report),
        Spec::ZoneIngress(s) => zone_proxies::validate_ingress(s, &root, &mut report),
        Spec::ZoneEgress(s) => zone_proxies::validate_egress(s, &root, &mut report),
        Spec::Zone(_) | Spec::ZoneInsight(_) | Spec::DataplaneInsight(_) => {}
    }
    if report.0.is_empty() {
        Ok(())
    } else {
        Err(report.0)
    }
}
