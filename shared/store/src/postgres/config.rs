//! How to reach PostgreSQL: [`PostgresConfig`], built from a URL or from Kuma-style parts, and
//! never printing its password.

use std::fmt;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::StoreError;

/// Connection settings of a [`PostgresStore`](crate::PostgresStore).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/db?sslmode=...`, as libpq reads it.
    pub url: String,
    /// Upper bound of the connection pool (the change feed and leader leases use their own
    /// connections on top). Kuma's default is 50.
    pub max_connections: u32,
    /// How long an operation waits for a pooled connection (or for the server to accept a new
    /// one) before failing with [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// After this long without a notification the change feed sends itself a probe; no echo
    /// within the same period means its connection died silently (no FIN, e.g. a network
    /// partition), and it reconnects and resyncs.
    pub feed_probe_interval: Duration,
}

impl PostgresConfig {
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 50;
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_FEED_PROBE_INTERVAL: Duration = Duration::from_secs(5);

    /// Default pool settings for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            feed_probe_interval: Self::DEFAULT_FEED_PROBE_INTERVAL,
        }
    }

    /// From the separate settings Kuma's configuration has; an empty `password` means none.
    pub fn from_parts(host: &str, port: u16, user: &str, password: &str, db: &str) -> Self {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]") // an IPv6 address
        } else {
            host.to_string()
        };
        let credentials = if password.is_empty() {
            escape(user)
        } else {
            format!("{}:{}", escape(user), escape(password))
        };
        Self::new(format!(
            "postgres://{credentials}@{host}:{port}/{}",
            escape(db)
        ))
    }

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        // sqlx's parse errors describe the problem without echoing the URL.
        self.url.parse::<PgConnectOptions>().map_err(|err| {
            StoreError::Unavailable(format!(
                "invalid PostgreSQL URL {}: {err}",
                redact(&self.url)
            ))
        })
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The URL with the password in its user info and any `password=` parameter replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@')
            && let Some(colon) = out[authority_start..authority_start + at].find(':')
        {
            out.replace_range(authority_start + colon + 1..authority_start + at, "***");
        }
    }
    if let Some(query_start) = out.find('?') {
        let (base, query) = out.split_at(query_start + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{query}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_kuma() {
        let config = PostgresConfig::new("postgres://localhost/db");
        assert_eq!(config.max_connections, 50);
        assert_eq!(config.acquire_timeout, Duration::from_secs(5));
    }

    #[test]
    fn from_parts_escapes_and_parses() {
        let config = PostgresConfig::from_parts("db.local", 5433, "kuma", "p@ss:w/rd", "kuma db");
        assert_eq!(
            config.url,
            "postgres://kuma:p%40ss%3Aw%2Frd@db.local:5433/kuma%20db"
        );
        let options = config.connect_options().expect("parses");
        assert_eq!(options.get_host(), "db.local");
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_username(), "kuma");
        assert_eq!(options.get_database(), Some("kuma db"));

        let no_password = PostgresConfig::from_parts("::1", 5432, "kuma", "", "kuma");
        assert_eq!(no_password.url, "postgres://kuma@[::1]:5432/kuma");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config = PostgresConfig::new("postgres://kuma:s3cret@host:5432/db?password=s3cret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://kuma:***@host:5432/db?password=***"),
            "{shown}"
        );
        assert_eq!(redact("postgres://host/db"), "postgres://host/db");
        assert_eq!(redact("postgres://kuma@host/db"), "postgres://kuma@host/db");
    }
}
