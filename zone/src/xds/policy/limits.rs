//! MeshRateLimit (Envoy's local rate limit filters, HTTP and network), MeshFaultInjection
//! (Envoy's fault filter) and MeshAccessLog (file access logs with Kuma's formats) on a
//! listener's HTTP connection managers and TCP proxies.

use atoll_model::types::{
    AccessLogConf, HttpFault, HttpRateLimit, IntOrString, LogFormat, LogFormatType, Rate,
    TcpRateLimit,
};
use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, HeaderValue, HeaderValueOption, RuntimeFractionalPercent, SubstitutionFormatString,
    data_source, header_value_option, substitution_format_string,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::Route;
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    FileAccessLog, file_access_log,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, FaultRateLimit, fault_delay, fault_rate_limit,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault as EnvoyFault, fault_abort,
};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit as HttpLocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::local_ratelimit::v3::LocalRateLimit as NetworkLocalRateLimit;
use envoy_types::pb::envoy::r#type::v3::{
    FractionalPercent, HttpStatus, TokenBucket, fractional_percent,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value, Value, value};
use envoy_types::util::pack_any;
use prost::{Message, Name};

use super::timeout::duration;

const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";

/// Kuma's default record for HTTP traffic.
pub const DEFAULT_HTTP_FORMAT: &str = r#"[%START_TIME%] %KUMA_MESH% "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-B3-TRACEID?X-DATADOG-TRACEID)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%KUMA_SOURCE_SERVICE%" "%KUMA_DESTINATION_SERVICE%" "%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%" "%UPSTREAM_HOST%""#;

/// Kuma's default record for TCP traffic.
pub const DEFAULT_TCP_FORMAT: &str = "[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, received: %BYTES_RECEIVED% bytes";

/// Inserts `filter` before the HTTP router (the last filter), after what is already there.
fn before_router(hcm: &mut HttpConnectionManager, name: &str, config: Any) {
    let at = hcm.http_filters.len().saturating_sub(1);
    hcm.http_filters.insert(
        at,
        HttpFilter {
            name: name.into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(config)),
            ..Default::default()
        },
    );
}

/// A bucket of `num` tokens refilled whole every `interval`: at most `num` per interval.
fn bucket(rate: &Rate) -> Option<TokenBucket> {
    Some(TokenBucket {
        max_tokens: rate.num,
        tokens_per_fill: Some(UInt32Value { value: rate.num }),
        fill_interval: Some(duration(Some(&rate.interval))?),
    })
}

fn all_requests() -> Option<RuntimeFractionalPercent> {
    Some(RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: 100,
            denominator: fractional_percent::DenominatorType::Hundred as i32,
        }),
        runtime_key: String::new(),
    })
}

const HTTP_LOCAL_RATE_LIMIT: &str = "envoy.filters.http.local_ratelimit";

/// The HTTP local rate limit filter, before the router; nothing when disabled.
pub fn http_rate_limit(hcm: &mut HttpConnectionManager, conf: &HttpRateLimit, stat: &str) {
    if let Some(limit) = http_limit(conf, stat) {
        before_router(hcm, HTTP_LOCAL_RATE_LIMIT, pack_any(limit));
    }
}

/// A limit of one route's requests (a gateway's), in the route's own filter configuration;
/// the connection manager needs [`rate_limit_filter`] for it to take effect.
pub fn route_rate_limit(route: &mut Route, conf: &HttpRateLimit, stat: &str) {
    if let Some(limit) = http_limit(conf, stat) {
        route
            .typed_per_filter_config
            .insert(HTTP_LOCAL_RATE_LIMIT.into(), pack_any(limit));
    }
}

/// The local rate limit filter limiting nothing by itself, for routes that carry a limit;
/// added once, and only to a connection manager with such a route.
pub fn rate_limit_filter(hcm: &mut HttpConnectionManager, stat: &str) {
    let limited = match &hcm.route_specifier {
        Some(http_connection_manager::RouteSpecifier::RouteConfig(config)) => {
            config.virtual_hosts.iter().any(|h| {
                h.routes.iter().any(|r| {
                    r.typed_per_filter_config
                        .contains_key(HTTP_LOCAL_RATE_LIMIT)
                })
            })
        }
        _ => false,
    };
    if limited
        && !hcm
            .http_filters
            .iter()
            .any(|f| f.name == HTTP_LOCAL_RATE_LIMIT)
    {
        let config = HttpLocalRateLimit {
            stat_prefix: format!("{stat}_rate_limit"),
            ..Default::default()
        };
        before_router(hcm, HTTP_LOCAL_RATE_LIMIT, pack_any(config));
    }
}

fn http_limit(conf: &HttpRateLimit, stat: &str) -> Option<HttpLocalRateLimit> {
    if conf.disabled {
        return None;
    }
    let token_bucket = conf.request_rate.as_ref().and_then(bucket)?;
    let on = conf.on_rate_limit.clone().unwrap_or_default();
    let headers = on.headers.unwrap_or_default();
    let header = |h: &atoll_model::types::HeaderValue, action| HeaderValueOption {
        header: Some(HeaderValue {
            key: h.name.clone(),
            value: h.value.clone(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    use header_value_option::HeaderAppendAction::{AppendIfExistsOrAdd, OverwriteIfExistsOrAdd};
    let response_headers_to_add = headers
        .add
        .iter()
        .map(|h| header(h, AppendIfExistsOrAdd))
        .chain(
            headers
                .set
                .iter()
                .map(|h| header(h, OverwriteIfExistsOrAdd)),
        )
        .collect();
    Some(HttpLocalRateLimit {
        stat_prefix: format!("{stat}_rate_limit"),
        status: Some(HttpStatus {
            code: i32::try_from(on.status.unwrap_or(429)).unwrap_or(429),
        }),
        token_bucket: Some(token_bucket),
        filter_enabled: all_requests(),
        filter_enforced: all_requests(),
        response_headers_to_add,
        ..Default::default()
    })
}

/// The network local rate limit filter, before each TCP proxy of `listener`.
pub fn tcp_rate_limit(listener: &mut Listener, conf: &TcpRateLimit) {
    if conf.disabled {
        return;
    }
    let Some(token_bucket) = conf.connection_rate.as_ref().and_then(bucket) else {
        return;
    };
    let stat = format!("{}_rate_limit", crate::xds::filters::stat(&listener.name));
    for chain in &mut listener.filter_chains {
        let Some(at) = chain.filters.iter().position(|f| f.name == TCP_PROXY) else {
            continue;
        };
        let limit = NetworkLocalRateLimit {
            stat_prefix: stat.clone(),
            token_bucket: Some(token_bucket),
            ..Default::default()
        };
        chain.filters.insert(
            at,
            Filter {
                name: "envoy.filters.network.local_ratelimit".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(limit))),
            },
        );
    }
}

/// A percentage as Envoy's fraction (per million, so `2.5` stays exact).
fn fraction(percentage: &Option<IntOrString>) -> Option<FractionalPercent> {
    let p = percentage.as_ref().and_then(IntOrString::percent)?;
    Some(FractionalPercent {
        numerator: (p * 10_000.0).round() as u32,
        denominator: fractional_percent::DenominatorType::Million as i32,
    })
}

/// One fault filter per entry, in order, before the router: Kuma's semantics, where each
/// entry's percentages apply to what the earlier ones let through.
pub fn faults(hcm: &mut HttpConnectionManager, faults: &[HttpFault]) {
    for fault in faults {
        let config = EnvoyFault {
            abort: fault.abort.as_ref().map(|a| FaultAbort {
                percentage: fraction(&a.percentage),
                error_type: Some(fault_abort::ErrorType::HttpStatus(a.http_status)),
                ..Default::default()
            }),
            delay: fault.delay.as_ref().and_then(|d| {
                Some(FaultDelay {
                    percentage: fraction(&d.percentage),
                    fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(
                        duration(Some(&d.value))?,
                    )),
                })
            }),
            response_rate_limit: fault.response_bandwidth.as_ref().and_then(|b| {
                Some(FaultRateLimit {
                    percentage: fraction(&b.percentage),
                    limit_type: Some(fault_rate_limit::LimitType::FixedLimit(
                        fault_rate_limit::FixedLimit {
                            // Despite its name, Envoy's limit is in KiB per second.
                            limit_kbps: b.kib_per_second()?,
                        },
                    )),
                })
            }),
            ..Default::default()
        };
        before_router(hcm, "envoy.filters.http.fault", pack_any(config));
    }
}

/// What Kuma's own placeholders stand for on one listener.
pub struct LogContext {
    pub mesh: String,
    pub source_service: String,
    pub destination_service: String,
    /// An address, or an Envoy operator (`%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`) inbound.
    pub source_address: String,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: &'static str,
    /// `atoll-dp`'s pipe for records bound for TCP backends, when it announced one.
    pub access_log_pipe: Option<String>,
}

impl LogContext {
    /// Substitutes Kuma's placeholders; Envoy's own operators are left for Envoy.
    fn interpolate(&self, text: &str) -> String {
        [
            ("%KUMA_MESH%", self.mesh.as_str()),
            ("%KUMA_SOURCE_SERVICE%", &self.source_service),
            ("%KUMA_DESTINATION_SERVICE%", &self.destination_service),
            ("%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%", &self.source_address),
            // Kuma's older spelling of the same placeholder.
            ("%KUMA_SOURCE_ADDRESS%", &self.source_address),
            ("%KUMA_TRAFFIC_DIRECTION%", self.direction),
        ]
        .iter()
        .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
    }
}

/// A JSON-format FileAccessLog as Envoy reads it, written with its own messages: the
/// generated `Struct` keeps its keys in a `HashMap`, whose order (and so the encoded bytes and
/// the resource's version) would change from one build of the configuration to the next.
mod sorted {
    use envoy_types::pb::google::protobuf::Value;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileAccessLog {
        #[prost(string, tag = "1")]
        pub path: String,
        /// `log_format`.
        #[prost(message, optional, tag = "5")]
        pub log_format: Option<JsonFormat>,
    }

    /// A `SubstitutionFormatString` with its `json_format`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct JsonFormat {
        #[prost(message, optional, tag = "2")]
        pub json_format: Option<Struct>,
        #[prost(bool, tag = "3")]
        pub omit_empty_values: bool,
    }

    /// `google.protobuf.Struct`: a map is encoded as repeated key/value entries.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Struct {
        #[prost(message, repeated, tag = "1")]
        pub fields: Vec<Field>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Field {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Value>,
    }
}

const FILE_ACCESS_LOG: &str = "envoy.access_loggers.file";

/// Envoy's file logger writing `format` to `path`. With `relay_to`, the path is `atoll-dp`'s
/// pipe and each record is a JSON object naming that backend (see `log_relay`): a plain
/// record travels as one string field, a JSON record as its own fields.
fn file_log(
    path: &str,
    format: Option<&LogFormat>,
    context: &LogContext,
    default_format: &str,
    relay_to: Option<&str>,
) -> AccessLog {
    let format = format.cloned().unwrap_or_default();
    let omit_empty_values = format.omit_empty_values;
    let string = |text: String| Value {
        kind: Some(value::Kind::StringValue(text)),
    };
    let json_fields: Option<Vec<sorted::Field>> = match (&format.format_type, relay_to) {
        (LogFormatType::Json, _) => Some(
            format
                .json
                .iter()
                .map(|f| sorted::Field {
                    key: f.key.clone(),
                    value: Some(string(context.interpolate(&f.value))),
                })
                .collect(),
        ),
        (_, Some(_)) => Some(vec![sorted::Field {
            key: crate::log_relay::LINE_KEY.into(),
            value: Some(string(
                context.interpolate(format.plain.as_deref().unwrap_or(default_format)),
            )),
        }]),
        _ => None,
    };
    let config = match json_fields {
        Some(mut fields) => {
            if let Some(address) = relay_to {
                fields.push(sorted::Field {
                    key: crate::log_relay::ADDRESS_KEY.into(),
                    value: Some(string(address.to_string())),
                });
            }
            fields.sort_by(|a, b| a.key.cmp(&b.key));
            let config = sorted::FileAccessLog {
                path: path.to_string(),
                log_format: Some(sorted::JsonFormat {
                    json_format: Some(sorted::Struct { fields }),
                    omit_empty_values,
                }),
            };
            Any {
                type_url: format!("type.googleapis.com/{}", FileAccessLog::full_name()),
                value: config.encode_to_vec(),
            }
        }
        None => {
            let plain = format.plain.as_deref().unwrap_or(default_format);
            // Envoy writes records back to back: the line ends are the format's.
            let text = format!("{}\n", context.interpolate(plain));
            pack_any(FileAccessLog {
                path: path.to_string(),
                access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(
                    SubstitutionFormatString {
                        omit_empty_values,
                        format: Some(substitution_format_string::Format::TextFormatSource(
                            DataSource {
                                specifier: Some(data_source::Specifier::InlineString(text)),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    },
                )),
            })
        }
    };
    AccessLog {
        name: FILE_ACCESS_LOG.into(),
        config_type: Some(access_log::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

/// The access logs of `conf`'s backends: files, and TCP backends through `atoll-dp`'s pipe
/// when the context has one (otherwise they are left out; the caller reports it).
pub fn access_logs(
    conf: &AccessLogConf,
    context: &LogContext,
    default_format: &str,
) -> Vec<AccessLog> {
    conf.backends
        .iter()
        .filter_map(|b| match (&b.file, &b.tcp, &context.access_log_pipe) {
            (Some(file), _, _) => Some(file_log(
                &file.path,
                file.format.as_ref(),
                context,
                default_format,
                None,
            )),
            (None, Some(tcp), Some(pipe)) => Some(file_log(
                pipe,
                tcp.format.as_ref(),
                context,
                default_format,
                Some(&tcp.address),
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_model::types::{AccessLogBackend, FileBackend, JsonField, LogFormat};

    fn context() -> LogContext {
        LogContext {
            mesh: "default".into(),
            source_service: "client".into(),
            destination_service: "web".into(),
            source_address: "10.0.0.1".into(),
            direction: "OUTBOUND",
            access_log_pipe: None,
        }
    }

    #[test]
    fn json_logs_decode_as_envoy_file_access_logs_with_stable_bytes() {
        let json = |pairs: &[(&str, &str)]| AccessLogConf {
            backends: vec![AccessLogBackend {
                file: Some(FileBackend {
                    path: "/tmp/x.json".into(),
                    format: Some(LogFormat {
                        format_type: LogFormatType::Json,
                        json: pairs
                            .iter()
                            .map(|(k, v)| JsonField {
                                key: k.to_string(),
                                value: v.to_string(),
                            })
                            .collect(),
                        omit_empty_values: true,
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }],
        };
        let fields = [
            ("b", "%KUMA_MESH%"),
            ("a", "%RESPONSE_CODE%"),
            ("c", "%KUMA_SOURCE_SERVICE%"),
        ];
        let log = access_logs(&json(&fields), &context(), DEFAULT_HTTP_FORMAT).remove(0);
        let Some(access_log::ConfigType::TypedConfig(any)) = &log.config_type else {
            panic!("no typed config");
        };
        // Written in another order, the same fields give the same bytes.
        let reversed: Vec<_> = fields.iter().rev().copied().collect();
        let again = access_logs(&json(&reversed), &context(), DEFAULT_HTTP_FORMAT).remove(0);
        assert_eq!(log, again);
        let decoded = FileAccessLog::decode(any.value.as_slice()).unwrap();
        assert_eq!(decoded.path, "/tmp/x.json");
        let Some(file_access_log::AccessLogFormat::LogFormat(format)) = decoded.access_log_format
        else {
            panic!("no log format");
        };
        assert!(format.omit_empty_values);
        let Some(substitution_format_string::Format::JsonFormat(s)) = format.format else {
            panic!("not JSON");
        };
        let text = |k: &str| match &s.fields[k].kind {
            Some(value::Kind::StringValue(v)) => v.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(text("a"), "%RESPONSE_CODE%");
        assert_eq!(text("b"), "default");
        assert_eq!(text("c"), "client");
    }
}
