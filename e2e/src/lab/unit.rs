//! Starting a process the way systemd starts one of the units shipped in `deploy/systemd`,
//! so the lab exercises those files rather than settings of its own.
//!
//! Read from the unit: `EnvironmentFile=` (the shipped `.env` file of that name, with the
//! values an operator fills in), `Environment=`, `LoadCredential=` (the files the operator
//! installs, copied into the credentials directory `%d`) and `ExecStart=`. Specifiers `%d`,
//! `%i` and `%t` are expanded; `/usr/local/bin/<program>` is the program just built,
//! `/var/lib/…` lives in the host's directory. As in systemd, the environment file's settings
//! override `Environment=`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::Host;
use crate::process::{Process, Spec};

/// The shipped systemd files.
pub fn systemd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

/// `KEY=VALUE` lines of an environment file; comments and blank lines skipped.
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}:{}: not KEY=VALUE: {line}", path.display(), n + 1);
        };
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(out)
}

/// What a unit's `[Service]` section says about starting its process.
#[derive(Debug, Default)]
struct Service {
    environment_files: Vec<String>,
    environment: Vec<(String, String)>,
    credentials: Vec<(String, String)>,
    exec_start: Vec<String>,
}

fn parse_unit(path: &Path) -> anyhow::Result<Service> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut service = Service::default();
    let mut in_service = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "EnvironmentFile" => service.environment_files.push(value.to_string()),
            "Environment" => {
                let (k, v) = value
                    .split_once('=')
                    .with_context(|| format!("{}: Environment={value}", path.display()))?;
                service.environment.push((k.to_string(), v.to_string()));
            }
            "LoadCredential" => {
                let (name, source) = value
                    .split_once(':')
                    .with_context(|| format!("{}: LoadCredential={value}", path.display()))?;
                service
                    .credentials
                    .push((name.to_string(), source.to_string()));
            }
            "ExecStart" => {
                service.exec_start = value.split_whitespace().map(str::to_string).collect()
            }
            _ => {}
        }
    }
    if service.exec_start.is_empty() {
        bail!("{}: no ExecStart=", path.display());
    }
    Ok(service)
}

/// One installation of a unit on a lab host, as an operator would make it.
pub struct Install<'a> {
    /// The unit's file name in `deploy/systemd`, e.g. `atoll-zone.service`, `atoll-dp@.service`.
    pub unit: &'a str,
    /// The instance of a template unit (`%i`).
    pub instance: Option<&'a str>,
    /// Values the operator writes into the shipped environment file. Each must be a
    /// variable the file already sets: the lab fills the file in, it does not extend it.
    pub fill: &'a [(&'a str, String)],
    /// The files behind the unit's `LoadCredential=`, by credential name.
    pub credentials: &'a [(&'a str, PathBuf)],
    /// Arguments an operator appends to `ExecStart=` with a drop-in (e.g. `--ingress`).
    pub extra_args: &'a [&'a str],
    /// Environment beyond the unit's, e.g. `RUST_LOG` for the test's logs.
    pub extra_env: &'a [(&'a str, &'a str)],
}

impl Install<'_> {
    /// Starts the unit's process on `host`; its log is `<host dir>/<unit>[-<instance>].log`.
    pub fn start(&self, host: &Host) -> anyhow::Result<Process> {
        let (spec, log) = self.spec(host)?;
        host.start(spec, &log)
    }

    /// The process the unit would run, and where its log goes.
    pub fn spec(&self, host: &Host) -> anyhow::Result<(Spec, PathBuf)> {
        let unit_path = systemd_dir().join(self.unit);
        let service = parse_unit(&unit_path)?;
        let stem = self.unit.trim_end_matches(".service").trim_end_matches('@');
        let label = match self.instance {
            Some(i) => format!("{stem}-{i}"),
            None => stem.to_string(),
        };
        let credentials_dir = host.dir.join("credentials").join(&label);
        let runtime_dir = host.dir.join("run");
        std::fs::create_dir_all(&credentials_dir)?;
        std::fs::create_dir_all(&runtime_dir)?;
        let expand = |value: &str| -> anyhow::Result<String> {
            let value = value
                .replace("%d", &credentials_dir.display().to_string())
                .replace("%t", &runtime_dir.display().to_string())
                .replace("%i", self.instance.unwrap_or_default());
            self.local_path(host, &value)
        };
        for (name, _) in &service.credentials {
            let name = expand(name)?;
            let source = self
                .credentials
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| p)
                .with_context(|| {
                    format!(
                        "{} loads the credential {name}: the lab must supply it",
                        self.unit
                    )
                })?;
            std::fs::copy(source, credentials_dir.join(&name))
                .with_context(|| format!("installing {} as credential {name}", source.display()))?;
        }
        let mut env = BTreeMap::new();
        for (key, value) in &service.environment {
            env.insert(key.clone(), expand(value)?);
        }
        for file in &service.environment_files {
            let name = Path::new(file)
                .file_name()
                .with_context(|| format!("EnvironmentFile={file}"))?;
            let shipped = systemd_dir().join(name);
            let mut entries = read_env_file(&shipped)?;
            for (key, value) in self.fill {
                let entry = entries
                    .iter_mut()
                    .find(|(k, _)| k == key)
                    .with_context(|| {
                        format!("{} does not set {key}: the lab only fills in what the shipped file has", shipped.display())
                    })?;
                entry.1 = value.clone();
            }
            env.extend(entries);
        }
        for (key, value) in self.extra_env {
            env.insert(key.to_string(), value.to_string());
        }
        let mut words = service
            .exec_start
            .iter()
            .map(|w| expand(w))
            .collect::<anyhow::Result<Vec<_>>>()?;
        words.extend(self.extra_args.iter().map(|a| a.to_string()));
        let program = PathBuf::from(words.remove(0));
        let spec = Spec {
            name: label.clone(),
            program,
            args: words,
            env,
        };
        Ok((spec, host.dir.join(format!("{label}.log"))))
    }

    /// An absolute path of the unit, as it is on the lab host: installed programs are the
    /// ones just built, state directories live in the host's directory.
    fn local_path(&self, host: &Host, value: &str) -> anyhow::Result<String> {
        if let Some(program) = value.strip_prefix("/usr/local/bin/") {
            let path = if program == "envoy" {
                crate::envoy::binary()?
            } else {
                crate::binaries::binary(program)?
            };
            return Ok(path.display().to_string());
        }
        if let Some(rest) = value.strip_prefix("/var/lib/") {
            let path = host.dir.join("var/lib").join(rest);
            std::fs::create_dir_all(&path)?;
            return Ok(path.display().to_string());
        }
        Ok(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_unit_parses_and_its_environment_file_exists() {
        let mut units = 0;
        for entry in std::fs::read_dir(systemd_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "service") {
                let service = parse_unit(&path).unwrap();
                assert!(service.exec_start[0].starts_with("/usr/local/bin/"));
                for file in &service.environment_files {
                    let name = Path::new(file).file_name().unwrap();
                    read_env_file(&systemd_dir().join(name)).unwrap();
                }
                units += 1;
            }
        }
        assert!(units >= 4, "only {units} units in deploy/systemd");
    }
}
