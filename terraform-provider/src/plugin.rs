//! HashiCorp go-plugin's side of the connection: the magic cookie, a Unix socket in a
//! directory only this user can enter, TLS with a certificate announced in the handshake
//! line on stdout, and the controller Terraform asks to shut the plugin down.
//!
//! go-plugin's client certificate (AutoMTLS) is ECDSA P-521, which rustls' ring provider
//! cannot verify; instead of accepting any TCP peer without one, the plugin listens on a
//! socket in a 0700 directory, so only this user's processes (which could read Terraform's
//! environment anyway) can connect.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use rustls::pki_types::PrivateKeyDer;
use tokio::net::UnixListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tonic::{Request, Response, Status};

use crate::plugin_proto::Empty;
use crate::plugin_proto::grpc_controller_server::GrpcController;

const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Whether Terraform started this process (anything else gets an explanation, not a server).
pub fn started_by_terraform() -> bool {
    std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE)
}

pub struct Listener {
    pub listener: UnixListener,
    pub acceptor: TlsAcceptor,
    /// The line go-plugin reads from stdout.
    pub handshake: String,
    /// Removed when the plugin stops.
    pub dir: PathBuf,
}

pub fn listen() -> anyhow::Result<Listener> {
    // go-plugin pins the certificate from the handshake as the only root, for "localhost".
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?,
        )?;
    // grpc-go refuses a TLS server that does not negotiate h2.
    config.alpn_protocols = vec![b"h2".to_vec()];

    let dir = private_dir()?;
    let socket = dir.join("plugin.sock");
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert.der());
    Ok(Listener {
        listener,
        acceptor: TlsAcceptor::from(Arc::new(config)),
        handshake: format!("1|6|unix|{}|grpc|{encoded}", socket.display()),
        dir,
    })
}

fn private_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    for attempt in 0..16u32 {
        let dir = base.join(format!(
            "terraform-provider-atoll-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!(
        "cannot create a private socket directory in {}",
        base.display()
    )
}

/// Terraform's request to stop, answered before the server winds down.
#[derive(Clone, Default)]
pub struct Controller {
    pub stop: Arc<Notify>,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.stop.notify_one();
        Ok(Response::new(Empty {}))
    }
}

pub fn refuse_direct_start() -> anyhow::Result<()> {
    bail!(
        "terraform-provider-atoll is a Terraform plugin: Terraform starts it. \
         Point Terraform at it (a provider_installation dev_overrides block, or a filesystem mirror) \
         and use `provider \"atoll\" {{ ... }}` in a configuration."
    )
}
