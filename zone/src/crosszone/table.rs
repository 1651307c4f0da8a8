//! The ingress's routing table, from the zone's own Dataplanes: for every service, its SNI
//! without a port (every instance) and with each port its instances listen on (inbound `port`)
//! or serve (`servicePort`), mapped to the instances' inbound addresses, where their sidecars
//! terminate mesh mTLS.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

pub use crate::ingress::Table;
use crate::naming::sni::service_sni;
use crate::world::{World, mtls_backend};

/// A local built-in gateway Dataplane with crossMesh listeners: (mesh, gateway service,
/// Dataplane name, where its crossMesh listeners are).
pub fn cross_mesh_gateways(world: &World) -> Vec<(String, String, String, Vec<SocketAddr>)> {
    let mut found = Vec::new();
    for ((mesh, name), dp) in &world.dataplanes {
        let Some(net) = dp.networking.as_ref() else {
            continue;
        };
        let Some(gateway) = net.gateway.as_ref() else {
            continue;
        };
        let Some(service) = gateway.tags.get(atoll_model::types::SERVICE_TAG) else {
            continue;
        };
        let Ok(ip) = net.address.parse::<IpAddr>() else {
            continue;
        };
        let addrs: Vec<SocketAddr> = world
            .gateways
            .iter()
            .filter(|((m, _), g)| {
                m == mesh
                    && g.selectors.iter().any(|s| {
                        s.match_tags
                            .iter()
                            .all(|(k, v)| gateway.tags.get(k) == Some(v))
                    })
            })
            .flat_map(|(_, g)| g.conf.iter().flat_map(|c| &c.listeners))
            .filter(|l| l.cross_mesh)
            .filter_map(|l| Some(SocketAddr::new(ip, u16::try_from(l.port).ok()?)))
            .collect();
        if !addrs.is_empty() {
            found.push((mesh.clone(), service.clone(), name.clone(), addrs));
        }
    }
    found
}

/// Whether `mesh` has mTLS on: only then is cross-zone traffic mesh mTLS end to end, and only
/// then may an ingress or egress carry it (anything else would make them open relays).
fn mtls_mesh(world: &World, mesh: &str) -> bool {
    world.meshes.get(mesh).and_then(mtls_backend).is_some()
}

/// The ingress's table: only the inbounds of this zone's Dataplanes (each admitted with a
/// token that allowed it) in meshes with mTLS on.
pub fn ingress_table(world: &World) -> Table {
    let mut table = Table::new();
    // crossMesh gateway listeners are reachable from other zones too (kumahq/kuma#4379).
    for (mesh, service, _, addrs) in cross_mesh_gateways(world) {
        if !mtls_mesh(world, &mesh) {
            continue;
        }
        table
            .entry(service_sni(&mesh, &service, None))
            .or_default()
            .extend(addrs);
    }
    for ((mesh, service), instances) in &world.endpoints {
        if !mtls_mesh(world, mesh) {
            continue;
        }
        let addrs = |port: Option<u32>| -> Vec<SocketAddr> {
            instances
                .values()
                .filter(|e| port.is_none_or(|p| e.port == p || e.service_port == p))
                .filter_map(|e| {
                    let ip: IpAddr = e.address.parse().ok()?;
                    Some(SocketAddr::new(ip, u16::try_from(e.port).ok()?))
                })
                .collect()
        };
        table.insert(service_sni(mesh, service, None), addrs(None));
        let ports: BTreeSet<u32> = instances
            .values()
            .flat_map(|e| [e.port, e.service_port])
            .collect();
        for port in ports {
            table.insert(service_sni(mesh, service, Some(port)), addrs(Some(port)));
        }
    }
    table.retain(|_, addrs| !addrs.is_empty());
    table
}

/// The egress's routing table: each service other zones offer, by its `any`-port name, to
/// those zones' ingresses (the egress maps every port form to that name).
pub fn egress_table(world: &World) -> Table {
    let mut table = Table::new();
    for z in world.ingresses.values() {
        if z.zone
            .as_deref()
            .is_none_or(|zone| zone == world.local_zone)
        {
            continue;
        }
        let Some(net) = z.networking.as_ref() else {
            continue;
        };
        let address = net.advertised_address.as_deref().unwrap_or(&net.address);
        let port = net.advertised_port.unwrap_or(net.port);
        let (Ok(ip), Ok(port)) = (address.parse::<IpAddr>(), u16::try_from(port)) else {
            continue;
        };
        for s in z
            .available_services
            .iter()
            .filter(|s| mtls_mesh(world, &s.mesh))
        {
            if let Some(service) = s.tags.get(atoll_model::types::SERVICE_TAG) {
                table
                    .entry(service_sni(&s.mesh, service, None))
                    .or_default()
                    .push(SocketAddr::new(ip, port));
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_model::Kind;
    use proptest::prelude::*;

    fn dataplane(name: &str, service: &str, port: u32, service_port: u32) -> atoll_model::Resource {
        let yaml = format!(
            "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: {port}\n    servicePort: {service_port}\n    tags:\n      kuma.io/service: {service:?}\n"
        );
        atoll_model::parse_documents(&yaml)
            .remove(0)
            .outcome
            .expect("valid dataplane")
    }

    fn mtls_mesh_resource(name: &str) -> atoll_model::Resource {
        let yaml = format!(
            "type: Mesh\nname: {name}\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n"
        );
        atoll_model::parse_documents(&yaml)
            .remove(0)
            .outcome
            .expect("valid mesh")
    }

    /// The ingress is never a relay into a mesh without mTLS, nor to a mesh that does not
    /// exist here.
    #[test]
    fn only_meshes_with_mtls_are_routed() {
        let mut world = World::default();
        let dp = dataplane("dp-1", "web", 8080, 8080);
        world.apply(Kind::Dataplane, Some("default"), "dp-1", Some(&dp));
        assert!(ingress_table(&world).is_empty(), "no mesh: nothing routed");
        let plain = atoll_model::parse_documents("type: Mesh\nname: default\n")
            .remove(0)
            .outcome
            .unwrap();
        world.apply(Kind::Mesh, None, "default", Some(&plain));
        assert!(ingress_table(&world).is_empty(), "mTLS off: nothing routed");
        world.apply(
            Kind::Mesh,
            None,
            "default",
            Some(&mtls_mesh_resource("default")),
        );
        assert!(ingress_table(&world).contains_key(&service_sni("default", "web", None)));
    }

    proptest! {
        /// The client's SNI for a service, with or without a port, always finds the instances
        /// the ingress serves for it: both sides come from `service_sni`.
        #[test]
        fn client_and_ingress_agree(
            service in "[a-zA-Z0-9_.-]{1,70}",
            port in 1u32..65535,
            service_port in 1u32..65535,
            ask_port in prop_oneof![Just(None), Just(Some(0)), Just(Some(1))],
        ) {
            let mut world = World::default();
            world.apply(Kind::Mesh, None, "default", Some(&mtls_mesh_resource("default")));
            let dp = dataplane("dp-1", &service, port, service_port);
            world.apply(Kind::Dataplane, Some("default"), "dp-1", Some(&dp));
            let table = ingress_table(&world);
            let asked = ask_port.map(|which| if which == 0 { port } else { service_port });
            let client_sni = service_sni("default", &service, asked);
            let found = table.get(&client_sni);
            prop_assert!(found.is_some(), "{client_sni} not in {:?}", table.keys().collect::<Vec<_>>());
            prop_assert_eq!(found.unwrap()[0].port() as u32, port);
        }
    }
}
