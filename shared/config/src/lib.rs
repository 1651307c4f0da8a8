//! Configuration for Atoll binaries.
//!
//! Owns the layering every binary shares — defaults < YAML file (`--config`) < environment <
//! flags — keyed by Kuma's environment variable names, and the option tables from which the
//! configuration reference in `docs/` is generated. It reads the environment only through the
//! [`Source`] it is given, so tests pass a map. It knows nothing of what the options mean.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

/// One documented option.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The environment variable, e.g. `KUMA_API_SERVER_HTTP_PORT`.
    pub env: &'static str,
    /// The YAML path in a `--config` file, e.g. `apiServer.http.port`.
    pub yaml: &'static str,
    /// The default as text; empty means unset.
    pub default: &'static str,
    pub help: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0} is not a known option")]
    UnknownOption(String),
}

/// Where environment values come from.
pub trait Source {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Resolved option values, by environment variable name.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
}

impl Settings {
    /// Layers defaults, the YAML file's text (if any), the environment and flag overrides
    /// (`(env name, value)` pairs) over `opts`.
    pub fn load(
        opts: &[Opt],
        file: Option<(&str, &str)>,
        env: &dyn Source,
        flags: &[(&str, String)],
    ) -> Result<Settings, ConfigError> {
        let mut values: BTreeMap<&'static str, String> = opts
            .iter()
            .filter(|o| !o.default.is_empty())
            .map(|o| (o.env, o.default.to_string()))
            .collect();
        if let Some((path, text)) = file {
            let doc: serde_json::Value =
                serde_norway::from_str(text).map_err(|e| ConfigError::File {
                    path: path.into(),
                    reason: e.to_string(),
                })?;
            for opt in opts {
                if let Some(value) = lookup(&doc, opt.yaml) {
                    values.insert(opt.env, value);
                }
            }
        }
        for opt in opts {
            if let Some(value) = env.var(opt.env) {
                values.insert(opt.env, value);
            }
        }
        for (name, value) in flags {
            let opt = opts
                .iter()
                .find(|o| o.env == *name)
                .ok_or_else(|| ConfigError::UnknownOption(name.to_string()))?;
            values.insert(opt.env, value.clone());
        }
        Ok(Settings { values })
    }

    /// The raw value, if set and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A typed value; a parse failure names the variable and the value.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|value| {
                value.parse::<T>().map_err(|e| ConfigError::Invalid {
                    name: name.into(),
                    value: value.into(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// A typed value that has a default in the option table.
    pub fn require<T: FromStr>(&self, name: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.parse(name)?.ok_or_else(|| ConfigError::Invalid {
            name: name.into(),
            value: String::new(),
            reason: "must be set".into(),
        })
    }
}

fn lookup(doc: &serde_json::Value, path: &str) -> Option<String> {
    let value = path.split('.').try_fold(doc, |v, key| v.get(key))?;
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A Markdown table of the options, for the generated configuration reference.
pub fn markdown_table(opts: &[Opt]) -> String {
    let mut out = String::from(
        "| environment variable | YAML key | default | meaning |\n|---|---|---|---|\n",
    );
    for opt in opts {
        let default = if opt.default.is_empty() {
            String::new()
        } else {
            format!("`{}`", opt.default)
        };
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} |",
            opt.env, opt.yaml, default, opt.help
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] = &[
        Opt {
            env: "KUMA_A",
            yaml: "a.port",
            default: "5681",
            help: "a",
        },
        Opt {
            env: "KUMA_B",
            yaml: "b",
            default: "",
            help: "b",
        },
    ];

    #[test]
    fn layers_in_order() {
        let file = "a:\n  port: 1\nb: x\n";
        let env: BTreeMap<String, String> = [("KUMA_B".to_string(), "y".to_string())].into();
        let s = Settings::load(OPTS, Some(("f", file)), &env, &[]).unwrap();
        assert_eq!(s.parse::<u16>("KUMA_A").unwrap(), Some(1));
        assert_eq!(s.get("KUMA_B"), Some("y"));
        let s = Settings::load(OPTS, Some(("f", file)), &env, &[("KUMA_A", "2".into())]).unwrap();
        assert_eq!(s.get("KUMA_A"), Some("2"));
        let s = Settings::load(OPTS, None, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(s.get("KUMA_A"), Some("5681"));
        assert_eq!(s.get("KUMA_B"), None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env: BTreeMap<String, String> = [("KUMA_A".to_string(), "http".to_string())].into();
        let s = Settings::load(OPTS, None, &env, &[]).unwrap();
        let err = s.parse::<u16>("KUMA_A").unwrap_err().to_string();
        assert!(err.starts_with("KUMA_A=\"http\": "), "{err}");
    }
}
