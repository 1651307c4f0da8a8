//! `ZoneInsight`: what the global knows about a zone's KDS connection. Written by the control
//! plane itself, never by users.

use std::collections::BTreeMap;

use super::is_false;

model! {
    pub struct ZoneInsightSpec {
        #[serde(default, skip_serializing_if = "is_false")]
        pub connected: bool,
        /// RFC 3339 time the current (or last) connection was established.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connect_time: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disconnect_time: Option<String>,
        /// RFC 3339 time the global last refreshed this insight while connected; a connected
        /// insight older than a few refresh periods means its global replica died.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_seen: Option<String>,
        /// Which global replica holds the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub global_instance: Option<String>,
        /// Per type: the last response the zone acknowledged.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub acked: BTreeMap<String, AckedResponse>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_nack: Option<Nack>,
        /// Resources the global refused from the zone, with reasons.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_rejection: Option<Nack>,
    }

    pub struct AckedResponse {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub nonce: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub time: String,
    }

    pub struct Nack {
        #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
        pub resource_type: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub reason: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub time: String,
    }
}
