//! Which MeshHTTPRoutes and MeshTCPRoutes a sidecar's outbounds follow (see
//! [`crate::xds::sidecar_routes`] for the semantics), and the clusters their backends need.

use std::collections::BTreeMap;

use atoll_model::types::{DataplaneSpec, TargetRef};

use super::build::Context;
use super::deps::Dep;
use crate::world::Named;
use crate::xds::routes::cluster_name;
use crate::xds::sidecar::{self, OutboundRoutes, OutboundTarget, Protocol};
use crate::xds::sidecar_routes::{self, Client};

/// The routes of each of `outbounds` that a route applies to, by the outbound's cluster.
pub(super) fn for_outbounds(
    cx: &mut Context<'_>,
    dp: &DataplaneSpec,
    outbounds: &[OutboundTarget],
) -> BTreeMap<String, OutboundRoutes> {
    let mesh = cx.mesh().to_string();
    cx.built.deps.insert(Dep::SidecarRoutes(mesh.clone()));
    let world = cx.world;
    let client = Client {
        name: &cx.proxy.1,
        spec: dp,
    };
    let http = client.applicable(in_mesh(&world.http_routes, &mesh, |r| {
        r.target_ref.as_ref()
    }));
    let tcp: Vec<_> = client
        .applicable(in_mesh(&world.tcp_routes, &mesh, |r| r.target_ref.as_ref()))
        .into_iter()
        .map(|(_, route)| route)
        .collect();
    let mut out = BTreeMap::new();
    if http.is_empty() && tcp.is_empty() {
        return out;
    }
    for outbound in outbounds {
        // Only outbounds to this mesh's services (not a cross-mesh gateway).
        if outbound.cluster != sidecar::service_cluster(&outbound.service) {
            continue;
        }
        let http_routes = match outbound.protocol {
            Protocol::Http => sidecar_routes::http(&outbound.service, &outbound.cluster, &http),
            Protocol::Tcp => None,
        };
        let routes = if let Some((routes, backends)) = http_routes {
            cx.route_backends(&backends);
            OutboundRoutes::Http(routes)
        } else if let Some(backends) = sidecar_routes::tcp(&outbound.service, &tcp) {
            cx.route_backends(&backends);
            OutboundRoutes::Tcp(
                backends
                    .iter()
                    .map(|b| (cluster_name(b), b.weight.unwrap_or(1)))
                    .collect(),
            )
        } else {
            continue;
        };
        out.insert(outbound.cluster.clone(), routes);
    }
    out
}

/// The routes of `mesh` among `all`, as (name, top-level target, route).
fn in_mesh<'a, R>(
    all: &'a BTreeMap<Named, R>,
    mesh: &'a str,
    target: impl Fn(&'a R) -> Option<&'a TargetRef> + 'a,
) -> impl Iterator<Item = (&'a str, Option<&'a TargetRef>, &'a R)> + 'a {
    all.range((mesh.to_string(), String::new())..)
        .take_while(move |((m, _), _)| m == mesh)
        .map(move |((_, name), route)| (name.as_str(), target(route), route))
}
