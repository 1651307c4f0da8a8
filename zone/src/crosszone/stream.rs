//! Feeding a separate ingress (or egress) process: the zone's DP server serves
//! `atoll.zoneproxy.v1.ZoneProxyTableService/Follow`, authenticated by a zone token of this
//! zone with the proxy's role in its scope. The proxy registers the address it is reached at
//! (which the zone then advertises in its ZoneIngress or ZoneEgress) and receives the routing
//! table: whole once, then only what changed, each update versioned, with a heartbeat while
//! nothing changes. The proxy keeps its last table when the stream breaks (a zone CP restart
//! does not stop cross-zone traffic), reconnects, and names the version it holds so an
//! unchanged table is not sent again.

use std::hash::Hasher;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use atoll_proto::zoneproxy::zone_proxy_table_service_client::ZoneProxyTableServiceClient;
use atoll_proto::zoneproxy::zone_proxy_table_service_server::{
    ZoneProxyTableService, ZoneProxyTableServiceServer,
};
use atoll_proto::zoneproxy::{Endpoints, FollowRequest, TableUpdate};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::registry::Advertisement;
use super::table::Table;
use crate::dp_server::authn::{Authenticator, Denied, bearer_metadata};

/// How often an idle stream carries a heartbeat, and how long a follower waits for one.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
const SILENCE: Duration = Duration::from_secs(15);

/// A content hash of the whole table, independent of map order.
pub fn version(table: &Table) -> String {
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    let mut h = std::hash::DefaultHasher::new();
    for key in keys {
        h.write(key.as_bytes());
        for addr in &table[key] {
            h.write(addr.to_string().as_bytes());
        }
        h.write_u8(0);
    }
    format!("{:016x}", h.finish())
}

fn endpoints(addrs: &[SocketAddr]) -> Endpoints {
    Endpoints {
        addresses: addrs.iter().map(SocketAddr::to_string).collect(),
    }
}

/// The update that turns `from` (or nothing, for a full update) into `to`.
pub fn diff(from: Option<&Table>, to: &Table) -> TableUpdate {
    let version = version(to);
    match from {
        None => TableUpdate {
            version,
            full: true,
            routes: to.iter().map(|(k, v)| (k.clone(), endpoints(v))).collect(),
            removed: Vec::new(),
        },
        Some(from) => TableUpdate {
            version,
            full: false,
            routes: to
                .iter()
                .filter(|(k, v)| from.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), endpoints(v)))
                .collect(),
            removed: from
                .keys()
                .filter(|k| !to.contains_key(*k))
                .cloned()
                .collect(),
        },
    }
}

/// Applies `update` to `table`; refuses an update whose result does not have its version.
pub fn apply(table: &mut Table, update: TableUpdate) -> anyhow::Result<()> {
    let mut next = if update.full {
        Table::new()
    } else {
        table.clone()
    };
    for sni in &update.removed {
        next.remove(sni);
    }
    for (sni, endpoints) in update.routes {
        let addrs = endpoints
            .addresses
            .iter()
            .map(|a| a.parse::<SocketAddr>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("a malformed endpoint for {sni}"))?;
        next.insert(sni, addrs);
    }
    if version(&next) != update.version {
        bail!(
            "the table does not match version {} after the update; asking for the whole table",
            update.version
        );
    }
    *table = next;
    Ok(())
}

/// The role of a follower, and where its table and registration go.
#[derive(Clone)]
pub struct RoleFeed {
    pub tables: watch::Receiver<Arc<Table>>,
    pub advertise: watch::Sender<Option<Advertisement>>,
}

/// The server half, on the DP server.
#[derive(Clone)]
pub struct TableServer {
    pub auth: Authenticator,
    pub ingress: RoleFeed,
    /// Present when this zone accepts a separate egress.
    pub egress: Option<RoleFeed>,
    pub stop: watch::Receiver<bool>,
}

impl TableServer {
    pub fn into_service(self) -> ZoneProxyTableServiceServer<TableServer> {
        ZoneProxyTableServiceServer::new(self)
    }
}

type Updates = Pin<Box<dyn Stream<Item = Result<TableUpdate, Status>> + Send>>;

fn advertisement(request: &FollowRequest) -> Result<Advertisement, Status> {
    let address = request.advertised_address.trim();
    let valid_host = address.parse::<std::net::IpAddr>().is_ok()
        || (!address.is_empty()
            && address.len() <= 253
            && address.split('.').all(atoll_model::validate::is_dns_label));
    if !valid_host {
        return Err(Status::invalid_argument(format!(
            "advertised_address {address:?} must be an IP address or a DNS name"
        )));
    }
    if !(1..=65535).contains(&request.advertised_port) {
        return Err(Status::invalid_argument(format!(
            "advertised_port {} must be in the range 1-65535",
            request.advertised_port
        )));
    }
    Ok(Advertisement {
        address: address.to_string(),
        port: request.advertised_port,
    })
}

#[tonic::async_trait]
impl ZoneProxyTableService for TableServer {
    type FollowStream = Updates;

    async fn follow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let token = bearer_metadata(request.metadata()).map(str::to_string);
        let request = request.into_inner();
        let feed = match request.role.as_str() {
            "ingress" => self.ingress.clone(),
            "egress" => self.egress.clone().ok_or_else(|| {
                Status::failed_precondition(
                    "this zone runs its egress in-process (atoll-zone run --egress); a separate egress cannot register",
                )
            })?,
            other => {
                return Err(Status::invalid_argument(format!(
                    "role {other:?} must be ingress or egress"
                )));
            }
        };
        self.auth
            .zone_proxy(token.as_deref(), &request.role)
            .map_err(|denied: Denied| {
                tracing::warn!(role = %request.role, ?denied, "zone proxy refused");
                denied.into_status()
            })?;
        let ad = advertisement(&request)?;
        tracing::info!(role = %request.role, address = %ad.address, port = ad.port, "a zone proxy follows this zone");
        feed.advertise.send_if_modified(|current| {
            let changed = current.as_ref() != Some(&ad);
            *current = Some(ad);
            changed
        });
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(send_updates(
            feed.tables,
            request.known_version,
            tx,
            self.stop.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Sends the table (unless the follower holds its version), then each change, then
/// heartbeats, until the follower goes away or the zone stops.
async fn send_updates(
    mut tables: watch::Receiver<Arc<Table>>,
    known: String,
    tx: mpsc::Sender<Result<TableUpdate, Status>>,
    mut stop: watch::Receiver<bool>,
) {
    let current = tables.borrow_and_update().clone();
    let first = if version(&current) == known {
        TableUpdate {
            version: known,
            ..Default::default()
        }
    } else {
        diff(None, &current)
    };
    if tx.send(Ok(first)).await.is_err() {
        return;
    }
    let mut sent = current;
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.reset();
    loop {
        let update = tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            changed = tables.changed() => {
                if changed.is_err() {
                    return;
                }
                let next = tables.borrow_and_update().clone();
                let update = diff(Some(&sent), &next);
                sent = next;
                update
            }
            _ = beat.tick() => TableUpdate {
                version: version(&sent),
                ..Default::default()
            },
        };
        if tx.send(Ok(update)).await.is_err() {
            return;
        }
    }
}

/// How a zone proxy reaches its zone's DP server.
#[derive(Clone)]
pub struct Follower {
    pub channel: tonic::transport::Channel,
    pub token: Option<String>,
    pub role: &'static str,
    pub advertised: Advertisement,
}

/// Follows the zone's table until `stop`, publishing each table on `tables`; keeps the last
/// one across disconnects.
pub async fn follow(
    follower: Follower,
    tables: watch::Sender<Arc<Table>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff =
        atoll_retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(10))
            .jittered(1.0, 1.5);
    let mut table: Table = (**tables.borrow()).clone();
    let mut known = String::new();
    loop {
        let mut followed = false;
        let session = follow_once(&follower, &mut table, &mut known, &tables, &mut followed);
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            outcome = session => {
                match outcome {
                    Err(err) if err.downcast_ref::<Status>().is_some_and(|s| matches!(s.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)) => {
                        tracing::error!(error = %format!("{err:#}"), "the zone refuses this proxy's token; serving the last table and retrying");
                    }
                    Err(err) => {
                        tracing::warn!(error = %format!("{err:#}"), "lost the zone's table stream; serving the last table and reconnecting");
                    }
                    Ok(()) => tracing::info!("the zone ended the table stream; reconnecting"),
                }
                metrics::counter!("atoll_ingress_feed_reconnects_total").increment(1);
            }
        }
        // A stream that was followed ends in a fresh outage, not the next failure of an old
        // one: retry quickly (a restarted zone re-registers this proxy on its first follow).
        if followed {
            backoff.reset();
        }
        if !backoff.wait(&mut stop).await {
            return;
        }
    }
}

async fn follow_once(
    follower: &Follower,
    table: &mut Table,
    known: &mut String,
    tables: &watch::Sender<Arc<Table>>,
    followed: &mut bool,
) -> anyhow::Result<()> {
    let mut client = ZoneProxyTableServiceClient::new(follower.channel.clone());
    let mut request = Request::new(FollowRequest {
        role: follower.role.into(),
        advertised_address: follower.advertised.address.clone(),
        advertised_port: follower.advertised.port,
        known_version: known.clone(),
    });
    if let Some(token) = &follower.token {
        let value = format!("Bearer {token}")
            .parse()
            .context("the zone token is not a valid header value")?;
        request.metadata_mut().insert("authorization", value);
    }
    let mut updates = client.follow(request).await?.into_inner();
    *followed = true;
    tracing::info!(role = follower.role, "following the zone's routing table");
    loop {
        let update = tokio::time::timeout(SILENCE, updates.message())
            .await
            .map_err(|_| anyhow::anyhow!("no heartbeat for {SILENCE:?}"))??;
        let Some(update) = update else {
            return Ok(());
        };
        let changed = update.full || !update.routes.is_empty() || !update.removed.is_empty();
        if !changed && update.version == *known {
            continue;
        }
        if let Err(err) = apply(table, update) {
            known.clear();
            return Err(err);
        }
        *known = version(table);
        tracing::debug!(services = table.len(), version = %known, "new routing table");
        tables.send_replace(Arc::new(table.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &[&str])]) -> Table {
        entries
            .iter()
            .map(|(sni, addrs)| {
                (
                    sni.to_string(),
                    addrs.iter().map(|a| a.parse().unwrap()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn diffs_carry_only_changes_and_reproduce_the_version() {
        let a = table(&[("x", &["10.0.0.1:1"]), ("y", &["10.0.0.2:1"])]);
        let b = table(&[("x", &["10.0.0.1:1"]), ("z", &["10.0.0.3:1", "10.0.0.4:1"])]);
        let update = diff(Some(&a), &b);
        assert!(!update.full);
        assert_eq!(update.routes.keys().collect::<Vec<_>>(), ["z"]);
        assert_eq!(update.removed, ["y"]);
        let mut held = a.clone();
        apply(&mut held, update).unwrap();
        assert_eq!(held, b);
        // A full update replaces whatever was held.
        let mut stale = table(&[("old", &["10.0.0.9:9"])]);
        apply(&mut stale, diff(None, &b)).unwrap();
        assert_eq!(stale, b);
        // A delta applied to the wrong base is detected by its version.
        let mut wrong = table(&[("q", &["10.0.0.5:5"])]);
        assert!(apply(&mut wrong, diff(Some(&a), &b)).is_err());
        assert_eq!(wrong, table(&[("q", &["10.0.0.5:5"])]), "left as it was");
    }

    #[test]
    fn advertised_addresses_are_checked() {
        let request = |address: &str, port: u32| FollowRequest {
            role: "ingress".into(),
            advertised_address: address.into(),
            advertised_port: port,
            known_version: String::new(),
        };
        assert!(advertisement(&request("10.0.0.1", 10001)).is_ok());
        assert!(advertisement(&request("ingress.zone-1.example", 10001)).is_ok());
        assert!(advertisement(&request("", 10001)).is_err());
        assert!(advertisement(&request("a b", 10001)).is_err());
        assert!(advertisement(&request("10.0.0.1", 0)).is_err());
        assert!(advertisement(&request("10.0.0.1", 70000)).is_err());
    }
}
