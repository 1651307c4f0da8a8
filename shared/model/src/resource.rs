//! A whole resource: its metadata and its typed content.

use crate::kind::Kind;
use crate::meta::Meta;
use crate::types::*;

/// The content of a resource, one variant per type.
///
/// Variants differ in size; boxing them would complicate every match for no gain, since a
/// resource is allocated once per stored document.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
#[allow(clippy::large_enum_variant)]
pub enum Spec {
    Mesh(MeshSpec),
    MeshGateway(MeshGatewaySpec),
    MeshHttpRoute(MeshHttpRouteSpec),
    MeshTcpRoute(MeshTcpRouteSpec),
    MeshExternalService(MeshExternalServiceSpec),
    MeshTrafficPermission(MeshTrafficPermissionSpec),
    MeshTimeout(MeshTimeoutSpec),
    MeshRetry(MeshRetrySpec),
    MeshCircuitBreaker(MeshCircuitBreakerSpec),
    MeshHealthCheck(MeshHealthCheckSpec),
    MeshRateLimit(MeshRateLimitSpec),
    MeshFaultInjection(MeshFaultInjectionSpec),
    MeshAccessLog(MeshAccessLogSpec),
    MeshLoadBalancingStrategy(MeshLoadBalancingStrategySpec),
    MeshMetric(MeshMetricSpec),
    HostnameGenerator(HostnameGeneratorSpec),
    Secret(SecretSpec),
    GlobalSecret(SecretSpec),
    Dataplane(DataplaneSpec),
    ZoneIngress(ZoneIngressSpec),
    ZoneEgress(ZoneEgressSpec),
    Zone(ZoneSpec),
    ZoneInsight(ZoneInsightSpec),
    DataplaneInsight(DataplaneInsightSpec),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Mesh(_) => Kind::Mesh,
            Spec::MeshGateway(_) => Kind::MeshGateway,
            Spec::MeshHttpRoute(_) => Kind::MeshHttpRoute,
            Spec::MeshTcpRoute(_) => Kind::MeshTcpRoute,
            Spec::MeshExternalService(_) => Kind::MeshExternalService,
            Spec::MeshTrafficPermission(_) => Kind::MeshTrafficPermission,
            Spec::MeshTimeout(_) => Kind::MeshTimeout,
            Spec::MeshRetry(_) => Kind::MeshRetry,
            Spec::MeshCircuitBreaker(_) => Kind::MeshCircuitBreaker,
            Spec::MeshHealthCheck(_) => Kind::MeshHealthCheck,
            Spec::MeshRateLimit(_) => Kind::MeshRateLimit,
            Spec::MeshFaultInjection(_) => Kind::MeshFaultInjection,
            Spec::MeshAccessLog(_) => Kind::MeshAccessLog,
            Spec::MeshLoadBalancingStrategy(_) => Kind::MeshLoadBalancingStrategy,
            Spec::MeshMetric(_) => Kind::MeshMetric,
            Spec::HostnameGenerator(_) => Kind::HostnameGenerator,
            Spec::Secret(_) => Kind::Secret,
            Spec::GlobalSecret(_) => Kind::GlobalSecret,
            Spec::Dataplane(_) => Kind::Dataplane,
            Spec::ZoneIngress(_) => Kind::ZoneIngress,
            Spec::ZoneEgress(_) => Kind::ZoneEgress,
            Spec::Zone(_) => Kind::Zone,
            Spec::ZoneInsight(_) => Kind::ZoneInsight,
            Spec::DataplaneInsight(_) => Kind::DataplaneInsight,
        }
    }
}

/// A resource as users write it and the control planes store and sync it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub meta: Meta,
    pub spec: Spec,
    /// Server-computed state of `spec:`-layout types (e.g. a MeshExternalService's VIP).
    pub status: Option<serde_json::Value>,
}

impl Resource {
    pub fn new(meta: Meta, spec: Spec) -> Self {
        Resource {
            meta,
            spec,
            status: None,
        }
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn mesh(&self) -> Option<&str> {
        self.meta.mesh.as_deref()
    }
}
