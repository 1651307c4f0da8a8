//! MeshRateLimit and MeshFaultInjection on a sidecar's inbounds, MeshAccessLog on its inbounds
//! (`from[]`) and outbounds (`to[]`). Runs after the other policies so that RBAC, already in
//! place, still refuses unknown callers before they spend rate-limit tokens or see faults.

use atoll_model::Kind;
use atoll_model::types::{
    AccessLogConf, DataplaneSpec, FaultInjectionConf, RateLimitConf, SERVICE_TAG,
};
use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

use super::build::Context;
use super::policies::conf;
use crate::policy::rules::Rules;
use crate::xds::policy::apply::{Edits, edit};
use crate::xds::policy::limits::{self, DEFAULT_HTTP_FORMAT, DEFAULT_TCP_FORMAT, LogContext};
use crate::xds::sidecar::OutboundTarget;
use crate::xds::snapshot::LISTENER;

/// Access logs for HTTP and for TCP traffic (their default formats differ).
fn logs(conf: &Option<AccessLogConf>, context: &LogContext) -> (Vec<AccessLog>, Vec<AccessLog>) {
    match conf {
        Some(c) => (
            limits::access_logs(c, context, DEFAULT_HTTP_FORMAT),
            limits::access_logs(c, context, DEFAULT_TCP_FORMAT),
        ),
        None => Default::default(),
    }
}

impl Context<'_> {
    /// TCP backends need `atoll-dp`'s relay: a proxy run without it gets the file backends
    /// only, and says why.
    pub(super) fn check_relay<'c>(&mut self, confs: impl Iterator<Item = &'c AccessLogConf>) {
        let has_pipe = self.meta.is_some_and(|m| m.access_log_pipe.is_some());
        if has_pipe {
            return;
        }
        for conf in confs {
            for tcp in conf.backends.iter().filter_map(|b| b.tcp.as_ref()) {
                self.problem(format!(
                    "MeshAccessLog TCP backend {}: this proxy was not started by atoll-dp, which relays records to TCP backends; left out",
                    tcp.address
                ));
            }
        }
    }

    pub(super) fn apply_limits(
        &mut self,
        rules: &Rules,
        dp: &DataplaneSpec,
        outbounds: &[OutboundTarget],
    ) {
        let from_any = |kind: Kind| rules.get(&kind).and_then(|r| r.from_any.as_ref());
        let rate_limit: Option<RateLimitConf> = conf(from_any(Kind::MeshRateLimit));
        let local = rate_limit.and_then(|r| r.local).unwrap_or_default();
        let fault: Option<FaultInjectionConf> = conf(from_any(Kind::MeshFaultInjection));
        let inbound_log: Option<AccessLogConf> = conf(from_any(Kind::MeshAccessLog));
        let outbound_logs: Vec<AccessLogConf> = rules
            .get(&Kind::MeshAccessLog)
            .into_iter()
            .flat_map(|r| r.to.values())
            .filter_map(|m| conf(Some(m)))
            .collect();
        self.check_relay(inbound_log.iter().chain(&outbound_logs));
        let networking = dp.networking.clone().unwrap_or_default();
        let mesh = self.mesh().to_string();
        let pipe = self.meta.and_then(|m| m.access_log_pipe.clone());
        let own_service = networking
            .inbound
            .iter()
            .find_map(|i| i.tags.get(SERVICE_TAG).cloned())
            .unwrap_or_default();
        for inbound in &networking.inbound {
            let address = inbound.address.as_deref().unwrap_or(&networking.address);
            let name = format!("inbound:{address}:{}", inbound.port);
            let context = LogContext {
                mesh: mesh.clone(),
                // Callers are not known when the configuration is made (Kuma says the same).
                source_service: "unknown".into(),
                destination_service: inbound.tags.get(SERVICE_TAG).cloned().unwrap_or_default(),
                source_address: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%".into(),
                direction: "INBOUND",
                access_log_pipe: pipe.clone(),
            };
            let (http_logs, tcp_logs) = logs(&inbound_log, &context);
            let stat = crate::xds::filters::stat(&name);
            let http = |hcm: &mut HttpConnectionManager| {
                if let Some(f) = &fault {
                    limits::faults(hcm, &f.http);
                }
                if let Some(r) = &local.http {
                    limits::http_rate_limit(hcm, r, &stat);
                }
                hcm.access_log.extend(http_logs.iter().cloned());
            };
            let tcp = |p: &mut TcpProxy| p.access_log.extend(tcp_logs.iter().cloned());
            let edits = Edits {
                http: Some(&http),
                tcp: Some(&tcp),
                ..Default::default()
            };
            let tcp_limit = local.tcp.as_ref();
            self.built
                .snapshot
                .update::<Listener>(LISTENER, &name, |l| {
                    edit(l, &edits);
                    if let Some(t) = tcp_limit {
                        limits::tcp_rate_limit(l, t);
                    }
                });
        }
        let Some(to) = rules.get(&Kind::MeshAccessLog).map(|r| &r.to) else {
            return;
        };
        for outbound in outbounds {
            let log: Option<AccessLogConf> = conf(to.get(&outbound.service));
            if log.is_none() {
                continue;
            }
            let context = LogContext {
                mesh: mesh.clone(),
                source_service: own_service.clone(),
                destination_service: outbound.service.clone(),
                source_address: networking.address.clone(),
                direction: "OUTBOUND",
                access_log_pipe: pipe.clone(),
            };
            let (http_logs, tcp_logs) = logs(&log, &context);
            let http =
                |hcm: &mut HttpConnectionManager| hcm.access_log.extend(http_logs.iter().cloned());
            let tcp = |p: &mut TcpProxy| p.access_log.extend(tcp_logs.iter().cloned());
            let edits = Edits {
                http: Some(&http),
                tcp: Some(&tcp),
                ..Default::default()
            };
            let name = format!("outbound:{}:{}", outbound.address, outbound.port);
            self.built
                .snapshot
                .update::<Listener>(LISTENER, &name, |l| edit(l, &edits));
        }
    }
}
