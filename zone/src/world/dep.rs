//! The inputs a proxy's configuration can depend on: what a change to the world names as
//! touched, and what the reconciler's dependency index maps back to proxies.

/// One input of a proxy's configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dep {
    /// The Mesh resource (mTLS settings).
    Mesh(String),
    /// Which meshes exist (cross-mesh gateways trust every mesh's CA).
    Meshes,
    /// The proxy's own Dataplane.
    Dataplane(String, String),
    /// Every MeshGateway in a mesh: selectors decide which one a gateway proxy binds to.
    Gateways(String),
    /// The routes whose `targetRef` names a gateway: (mesh, gateway).
    GatewayRoutes(String, String),
    /// Every route of a mesh whose `targetRef` is not a gateway: what sidecars' outbounds
    /// follow.
    SidecarRoutes(String),
    /// A service's endpoints and protocol: (mesh, service).
    Service(String, String),
    /// A mesh-scoped Secret: (mesh, name).
    Secret(String, String),
    /// A MeshExternalService: (mesh, name).
    ExternalService(String, String),
    /// Every MeshExternalService's hostnames and VIP (HostnameGenerators, the set of services).
    ExternalNames,
    /// The policies of a mesh (any type): who they select is only known by evaluating them.
    Policies(String),
    /// This zone's egresses run by `atoll-dp` (where external traffic goes with
    /// `routing.zoneEgress`).
    Egresses,
}
