//! `terraform-provider-atoll`: Terraform's plugin protocol v6 for Atoll's global control
//! plane. It owns the translation between Terraform values and the REST API's documents; it
//! must not link the control plane or its store: everything goes through the API, so the API
//! decides validity, permissions and concurrency.

mod client;
mod data;
mod diag;
mod kinds;
mod plugin;
mod provider;
mod resource;
mod schema;
mod token;
mod value;
mod zone;

mod tfplugin6 {
    #![allow(clippy::all, clippy::pedantic, dead_code)]
    tonic::include_proto!("tfplugin6");
}

mod plugin_proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("plugin");
}

use std::io::Write;

use anyhow::Context;
use futures_util::stream;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !plugin::started_by_terraform() {
        return plugin::refuse_direct_start();
    }
    // reqwest builds its default TLS set-up from the process-wide provider even for http://.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plugin::Listener {
        listener,
        acceptor,
        handshake,
        dir,
    } = plugin::listen().context("setting up the plugin listener")?;
    let incoming = stream::unfold((listener, acceptor), |(listener, acceptor)| async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            match acceptor.accept(socket).await {
                Ok(tls) => return Some((Ok::<_, std::io::Error>(tls), (listener, acceptor))),
                Err(err) => eprintln!("[WARN] refused a plugin connection: {err}"),
            }
        }
    });
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{handshake}").context("writing the plugin handshake")?;
    stdout.flush().context("writing the plugin handshake")?;
    let controller = plugin::Controller::default();
    let stop = controller.stop.clone();
    let served = tonic::transport::Server::builder()
        .add_service(tfplugin6::provider_server::ProviderServer::new(
            provider::AtollProvider::default(),
        ))
        .add_service(plugin_proto::grpc_controller_server::GrpcControllerServer::new(controller))
        .serve_with_incoming_shutdown(incoming, async move { stop.notified().await })
        .await
        .context("serving the plugin protocol");
    // Best effort: the socket's directory is ours alone and useless once stopped.
    let _ = std::fs::remove_dir_all(&dir);
    served
}
