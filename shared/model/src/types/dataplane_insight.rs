//! `DataplaneInsight`: what a zone control plane knows about one proxy's ADS stream. Written
//! by the zone that serves the proxy and synced up, so the global can say which data planes
//! are online; never written by users.

use super::is_false;

model! {
    pub struct DataplaneInsightSpec {
        #[serde(default, skip_serializing_if = "is_false")]
        pub connected: bool,
        /// RFC 3339 times of the current (or last) stream's start and of the last end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connect_time: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disconnect_time: Option<String>,
        /// The newest configuration computed for the proxy (a fingerprint).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub config_version: Option<String>,
        /// Resource types whose newest version the proxy acknowledged.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub acked_types: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_nack: Option<String>,
        #[serde(default)]
        pub responses_sent: u64,
        #[serde(default)]
        pub responses_rejected: u64,
        /// Why parts of the proxy's configuration are missing.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub problems: Vec<String>,
    }
}
