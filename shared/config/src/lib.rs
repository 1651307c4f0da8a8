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
            check_keys(opts, &doc).map_err(|reason| ConfigError::File {
                path: path.into(),
                reason,
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

/// Every key of the file must be an option's YAML path or lead to one: a misspelt key would
/// otherwise be ignored and its option silently keep its default.
fn check_keys(opts: &[Opt], doc: &serde_json::Value) -> Result<(), String> {
    let mut problems = Vec::new();
    match doc {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => walk_keys(opts, map, "", &mut problems),
        _ => problems.push("the file must be a mapping of option keys".to_string()),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn walk_keys(
    opts: &[Opt],
    map: &serde_json::Map<String, serde_json::Value>,
    parent: &str,
    problems: &mut Vec<String>,
) {
    for (key, value) in map {
        let path = if parent.is_empty() {
            key.clone()
        } else {
            format!("{parent}.{key}")
        };
        if opts.iter().any(|o| o.yaml == path) {
            continue;
        }
        let is_prefix = opts.iter().any(|o| {
            o.yaml
                .strip_prefix(path.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
        });
        match value {
            serde_json::Value::Object(inner) if is_prefix => {
                walk_keys(opts, inner, &path, problems)
            }
            // An empty section (`apiServer:`) sets nothing.
            serde_json::Value::Null if is_prefix => {}
            _ if is_prefix => problems.push(format!(
                "{path} must be a mapping of the options below it, not a single value"
            )),
            _ => problems.push(match suggestion(opts, &path) {
                Some(known) => format!("unknown key {path} (did you mean {known}?)"),
                None => format!("unknown key {path}"),
            }),
        }
    }
}

/// The known key (an option's path, or a section leading to options) closest to `path`, when
/// it is close enough to be a likely misspelling.
fn suggestion(opts: &[Opt], path: &str) -> Option<String> {
    let depth = path.split('.').count();
    opts.iter()
        .filter_map(|o| {
            let known: Vec<&str> = o.yaml.split('.').take(depth).collect();
            (known.len() == depth).then(|| known.join("."))
        })
        .map(|known| (edit_distance(path, &known), known))
        .filter(|(distance, _)| *distance > 0 && *distance <= (path.len() / 4).max(2))
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
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

    const NESTED: &[Opt] = &[
        Opt {
            env: "KUMA_API_SERVER_HTTP_PORT",
            yaml: "apiServer.http.port",
            default: "5681",
            help: "port",
        },
        Opt {
            env: "KUMA_API_SERVER_HTTP_INTERFACE",
            yaml: "apiServer.http.interface",
            default: "",
            help: "interface",
        },
        Opt {
            env: "KUMA_MODE",
            yaml: "mode",
            default: "",
            help: "mode",
        },
    ];

    fn file_error(text: &str) -> String {
        match Settings::load(NESTED, Some(("kuma.yaml", text)), &BTreeMap::new(), &[]) {
            Err(ConfigError::File { path, reason }) => {
                assert_eq!(path, "kuma.yaml");
                reason
            }
            other => panic!("expected a file error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_full_path() {
        assert_eq!(
            file_error("apiServer:\n  http:\n    prot: 1\n"),
            "unknown key apiServer.http.prot (did you mean apiServer.http.port?)"
        );
        assert_eq!(
            file_error("apiServr:\n  http:\n    port: 1\n"),
            "unknown key apiServr (did you mean apiServer?)"
        );
        assert_eq!(file_error("storeType: postgres\n"), "unknown key storeType");
        assert_eq!(
            file_error("mode: zone\nfoo: 1\napiServer:\n  grpc: {}\n"),
            "unknown key foo; unknown key apiServer.grpc"
        );
    }

    #[test]
    fn a_section_given_a_value_is_an_error() {
        assert_eq!(
            file_error("apiServer: 5681\n"),
            "apiServer must be a mapping of the options below it, not a single value"
        );
        assert_eq!(
            file_error("- mode\n"),
            "the file must be a mapping of option keys"
        );
    }

    #[test]
    fn known_keys_and_empty_sections_load() {
        let text = "mode: zone\napiServer:\n  http:\n    port: 1\n    interface: 0.0.0.0\n";
        let s = Settings::load(NESTED, Some(("f", text)), &BTreeMap::new(), &[]).unwrap();
        assert_eq!(s.get("KUMA_API_SERVER_HTTP_PORT"), Some("1"));
        assert_eq!(s.get("KUMA_MODE"), Some("zone"));
        for text in ["", "apiServer:\n", "apiServer:\n  http:\n"] {
            let s = Settings::load(NESTED, Some(("f", text)), &BTreeMap::new(), &[]).unwrap();
            assert_eq!(s.get("KUMA_API_SERVER_HTTP_PORT"), Some("5681"), "{text:?}");
        }
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("port", "port"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("interfac", "interface"), 1);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env: BTreeMap<String, String> = [("KUMA_A".to_string(), "http".to_string())].into();
        let s = Settings::load(OPTS, None, &env, &[]).unwrap();
        let err = s.parse::<u16>("KUMA_A").unwrap_err().to_string();
        assert!(err.starts_with("KUMA_A=\"http\": "), "{err}");
    }
}
