//! MeshTimeout on a listener's HTTP connection manager, its routes, a TCP proxy and a
//! cluster. A field left unset keeps Envoy's behaviour.

use atoll_model::types::TimeoutConf;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::config::route::v3::{Route, route, route_action};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::google::protobuf::Duration;

/// A policy duration as protobuf; validation has already parsed it once.
pub fn duration(text: Option<&String>) -> Option<Duration> {
    let d = atoll_model::duration::parse(text?).ok()?;
    Some(Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    })
}

pub fn cluster(cluster: &mut Cluster, conf: &TimeoutConf) {
    if let Some(d) = duration(conf.connection_timeout.as_ref()) {
        cluster.connect_timeout = Some(d);
    }
}

pub fn http_manager(hcm: &mut HttpConnectionManager, conf: &TimeoutConf) {
    let http = conf.http.clone().unwrap_or_default();
    let idle = duration(conf.idle_timeout.as_ref());
    let max_connection = duration(http.max_connection_duration.as_ref());
    if idle.is_some() || max_connection.is_some() {
        let options = hcm
            .common_http_protocol_options
            .get_or_insert_with(HttpProtocolOptions::default);
        if idle.is_some() {
            options.idle_timeout = idle;
        }
        if max_connection.is_some() {
            options.max_connection_duration = max_connection;
        }
    }
    if let Some(d) = duration(http.stream_idle_timeout.as_ref()) {
        hcm.stream_idle_timeout = Some(d);
    }
    if let Some(d) = duration(http.request_headers_timeout.as_ref()) {
        hcm.request_headers_timeout = Some(d);
    }
}

pub fn route(route: &mut Route, conf: &TimeoutConf) {
    let Some(route::Action::Route(action)) = route.action.as_mut() else {
        return;
    };
    let http = conf.http.clone().unwrap_or_default();
    if let Some(d) = duration(http.request_timeout.as_ref()) {
        action.timeout = Some(d);
    }
    if let Some(d) = duration(http.max_stream_duration.as_ref()) {
        action.max_stream_duration = Some(route_action::MaxStreamDuration {
            max_stream_duration: Some(d),
            ..Default::default()
        });
    }
}

pub fn tcp_proxy(proxy: &mut TcpProxy, conf: &TimeoutConf) {
    if let Some(d) = duration(conf.idle_timeout.as_ref()) {
        proxy.idle_timeout = Some(d);
    }
}
