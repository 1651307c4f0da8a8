//! The configuration of a zone egress run by `atoll-dp`: for every mesh that sends external
//! traffic through the egress (`routing.zoneEgress`, which requires mTLS), the egress's
//! identity in that mesh and one filter chain per MeshExternalService, terminating the mesh
//! mTLS and originating the service's own TLS. Cross-zone passthrough stays with the native
//! egress (`atoll-zone run --egress`).

use std::collections::BTreeSet;
use std::time::Instant;

use super::build::{Built, Context};
use super::deps::{Dep, ProxyId};
use super::identity::Identities;
use super::meta::ProxyMeta;
use crate::world::{World, mtls_backend};
use crate::xds::{egress, external, metrics};
use atoll_model::types::AdminConf;

/// `proxy` is `("", name)`; `None` when no such egress is registered.
pub fn build(
    world: &World,
    meta: Option<&ProxyMeta>,
    identities: &mut Identities,
    proxy: &ProxyId,
    now: Instant,
) -> Option<Built> {
    let name = &proxy.1;
    let spec = world.egresses.get(name)?;
    let mut cx = Context::new(world, meta, proxy);
    cx.built
        .deps
        .insert(Dep::Dataplane(String::new(), name.clone()));
    cx.built.deps.insert(Dep::Meshes);
    let Some(net) = spec.networking.as_ref() else {
        cx.problem("the ZoneEgress has no networking.address/port".into());
        return Some(cx.built);
    };
    let mut chains = Vec::new();
    for (mesh, mesh_spec) in &world.meshes {
        cx.built.deps.insert(Dep::Mesh(mesh.clone()));
        if !world.routing(mesh).zone_egress {
            continue;
        }
        let Some((_, validity)) = mtls_backend(mesh_spec) else {
            continue;
        };
        let uris = vec![egress::spiffe_id(mesh, name)];
        if !cx.add_identity(identities, mesh, uris, validity, now) {
            continue;
        }
        let services: BTreeSet<String> = world
            .external_services
            .range((mesh.clone(), String::new())..)
            .take_while(|((m, _), _)| m == mesh)
            .map(|((_, n), _)| n.clone())
            .collect();
        cx.built.deps.insert(Dep::ExternalNames);
        for service in services {
            let Some(spec) = cx.external_service(mesh, &service) else {
                continue;
            };
            // Unique across meshes: one egress serves them all.
            let cluster = format!("{mesh}/{}", external::cluster_name(&service));
            if cx.originate(mesh, &service, &spec, &cluster).is_some() {
                chains.push(egress::chain(
                    mesh,
                    &service,
                    external::protocol(&spec),
                    &cluster,
                ));
            }
        }
    }
    if !chains.is_empty() {
        cx.built
            .snapshot
            .add_listener(&egress::listener(name, &net.address, net.port, chains));
    }
    if let Some(prometheus) = &net.prometheus {
        let admin = AdminConf::port_of(net.admin.as_ref());
        cx.built
            .snapshot
            .add_cluster(&metrics::admin_cluster(admin));
        cx.built
            .snapshot
            .add_listener(&metrics::prometheus_listener(
                &net.address,
                prometheus.port,
                prometheus.path(),
                false,
            ));
    }
    Some(cx.built)
}
