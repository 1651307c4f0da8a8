//! The sidecar's DNS listener: Envoy's DNS filter on a loopback UDP port answering each
//! MeshExternalService hostname of the mesh with the service's VIP (as Kuma's builtin DNS
//! does), so a set-up that redirects DNS to it resolves those names without a DNS server.

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::listener::v3::{
    Listener, ListenerFilter, UdpListenerConfig, listener_filter,
};
use envoy_types::pb::envoy::data::dns::v3::{DnsTable, dns_table};
use envoy_types::pb::envoy::extensions::filters::udp::dns_filter::v3::{
    DnsFilterConfig, dns_filter_config,
};
use envoy_types::pb::google::protobuf::Duration;
use envoy_types::util::pack_any;

/// The name of the DNS listener.
pub const LISTENER: &str = "dns:127.0.0.1";

/// How long resolvers may cache an answer: short, so a changed VIP is picked up soon.
const ANSWER_TTL_SECONDS: i64 = 30;

/// A UDP listener on `127.0.0.1:port` answering `(hostname, vip)` records.
pub fn listener(port: u16, records: &[(String, String)]) -> Listener {
    let table = DnsTable {
        virtual_domains: records
            .iter()
            .map(|(hostname, vip)| dns_table::DnsVirtualDomain {
                name: hostname.clone(),
                endpoint: Some(dns_table::DnsEndpoint {
                    endpoint_config: Some(dns_table::dns_endpoint::EndpointConfig::AddressList(
                        dns_table::AddressList {
                            address: vec![vip.clone()],
                        },
                    )),
                }),
                answer_ttl: Some(Duration {
                    seconds: ANSWER_TTL_SECONDS,
                    nanos: 0,
                }),
            })
            .collect(),
        ..Default::default()
    };
    let config = DnsFilterConfig {
        stat_prefix: "dns".into(),
        server_config: Some(dns_filter_config::ServerContextConfig {
            config_source: Some(
                dns_filter_config::server_context_config::ConfigSource::InlineDnsTable(table),
            ),
        }),
        ..Default::default()
    };
    Listener {
        name: LISTENER.into(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                protocol: socket_address::Protocol::Udp as i32,
                address: "127.0.0.1".into(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
                ..Default::default()
            })),
        }),
        udp_listener_config: Some(UdpListenerConfig::default()),
        listener_filters: vec![ListenerFilter {
            name: "envoy.filters.udp.dns_filter".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(config))),
            ..Default::default()
        }],
        ..Default::default()
    }
}
