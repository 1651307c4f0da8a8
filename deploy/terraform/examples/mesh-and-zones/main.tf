# One run for everything: the global (the module), a mesh with a built-in gateway, routes
# and an external service declared through the atoll provider, and two zones whose KDS
# certificates go straight into each zone's Helm release.
#
#   terraform init && terraform apply -var postgres_password=... -var api_token=...
#
# The atoll provider talks to the global's REST API, which must be reachable from where
# Terraform runs (an internal load balancer, a VPN, or `kubectl port-forward`); its resources
# depend on the module, so the global is deployed first. Until it answers, plans warn that
# specs were not validated at plan time and apply validates them.

terraform {
  required_providers {
    atoll = {
      source = "atoll/atoll" # terraform-provider-atoll, built from this repository
    }
    kubernetes = {
      source = "hashicorp/kubernetes"
    }
    helm = {
      source = "hashicorp/helm"
    }
  }
}

variable "postgres_password" {
  type      = string
  sensitive = true
}

variable "api_address" {
  description = "The global's HTTPS API as Terraform reaches it."
  type        = string
  default     = "https://atoll-api.mesh.example.com:5682"
}

variable "api_token" {
  description = "The admin token (<work dir>/admin-token on a global replica)."
  type        = string
  sensitive   = true
}

variable "api_ca_file" {
  description = "The CA that signed the API's certificate (<work dir>/api-server-ca.crt)."
  type        = string
  default     = "api-server-ca.crt"
}

provider "kubernetes" {
  alias          = "global"
  config_path    = "~/.kube/config"
  config_context = "global"
}

provider "atoll" {
  address = var.api_address
  token   = var.api_token
  ca_cert = var.api_ca_file
}

module "atoll_global" {
  source = "../../global"
  providers = {
    kubernetes = kubernetes.global
  }

  image             = "registry.example.com/atoll:0.1.0"
  postgres_host     = "atoll.abcdefgh.eu-west-1.rds.amazonaws.com"
  postgres_user     = "atoll"
  postgres_password = var.postgres_password
  postgres_db_name  = "atoll"
  replicas          = 2
  kds_hostnames     = ["kds.mesh.example.com"]
}

# --- the mesh: attributes mirror the YAML (compare deploy/examples/*.yaml) ---

resource "atoll_mesh" "default" {
  name = "default"
  routing = {
    zoneEgress                             = false
    defaultForbidMeshExternalServiceAccess = false
  }

  depends_on = [module.atoll_global]
}

resource "atoll_mesh_gateway" "edge" {
  mesh      = atoll_mesh.default.name
  name      = "edge-gateway"
  selectors = [{ match = { "kuma.io/service" = "edge-gateway" } }]
  conf = {
    listeners = [
      { port = 8080, protocol = "HTTP", hostname = "foo.example.com", tags = { vhost = "foo.example.com" } },
      { port = 8080, protocol = "HTTP", hostname = "bar.example.com", tags = { vhost = "bar.example.com" } },
    ]
  }
}

resource "atoll_mesh_http_route" "foo" {
  mesh = atoll_mesh.default.name
  name = "foo-routes"
  spec = {
    targetRef = { kind = "MeshGateway", name = atoll_mesh_gateway.edge.name }
    to = [{
      targetRef = { kind = "Mesh" }
      hostnames = ["foo.example.com"]
      rules = [{
        matches = [{ path = { type = "PathPrefix", value = "/" } }]
        default = { backendRefs = [{ kind = "MeshService", name = "foo" }] }
      }]
    }]
  }
}

resource "atoll_mesh_tcp_route" "redis" {
  mesh = atoll_mesh.default.name
  name = "redis-route"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "redis" }
      rules     = [{ default = { backendRefs = [{ kind = "MeshService", name = "redis-v2", port = 6379 }] } }]
    }]
  }
}

resource "atoll_hostname_generator" "external" {
  name = "example"
  spec = {
    selector = { meshExternalService = { matchLabels = { "kuma.io/origin" = "global" } } }
    template = "{{ .DisplayName }}.extsvc.mesh.local"
  }

  depends_on = [module.atoll_global]
}

resource "atoll_mesh_external_service" "httpbin" {
  mesh = atoll_mesh.default.name
  name = "httpbin"
  spec = {
    match     = { type = "HostnameGenerator", port = 443, protocol = "http" }
    endpoints = [{ address = "httpbin.org", port = 443 }]
    tls = {
      enabled      = true
      verification = { mode = "Secured", serverName = "httpbin.org" }
    }
  }
}

resource "atoll_mesh_timeout" "slow" {
  mesh = atoll_mesh.default.name
  name = "slow-is-too-slow"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "slow" }
      default   = { connectionTimeout = "2s", http = { requestTimeout = "500ms" } }
    }]
  }
}

# --- two zones: each gets its KDS certificate from atoll_zone, into its own cluster ---

locals {
  zones = toset(["east", "west"])
}

resource "atoll_zone" "zone" {
  for_each = local.zones
  name     = each.key

  depends_on = [module.atoll_global]
}

provider "kubernetes" {
  alias          = "east"
  config_path    = "~/.kube/config"
  config_context = "east"
}

provider "kubernetes" {
  alias          = "west"
  config_path    = "~/.kube/config"
  config_context = "west"
}

provider "helm" {
  alias = "east"
  kubernetes {
    config_path    = "~/.kube/config"
    config_context = "east"
  }
}

provider "helm" {
  alias = "west"
  kubernetes {
    config_path    = "~/.kube/config"
    config_context = "west"
  }
}

# The chart's zone.kdsSecret: ca.crt, tls.crt and tls.key, as `atollctl generate
# zone-certificate` would write them. A renewed certificate (atoll_zone re-issues it inside
# renew_before_hours) updates the Secret in the same run.
resource "kubernetes_secret_v1" "kds_east" {
  provider = kubernetes.east
  metadata {
    name      = "atoll-zone-kds"
    namespace = "atoll-system"
  }
  data = {
    "ca.crt"  = atoll_zone.zone["east"].ca_certificate
    "tls.crt" = atoll_zone.zone["east"].certificate
    "tls.key" = atoll_zone.zone["east"].key
  }
}

resource "kubernetes_secret_v1" "kds_west" {
  provider = kubernetes.west
  metadata {
    name      = "atoll-zone-kds"
    namespace = "atoll-system"
  }
  data = {
    "ca.crt"  = atoll_zone.zone["west"].ca_certificate
    "tls.crt" = atoll_zone.zone["west"].certificate
    "tls.key" = atoll_zone.zone["west"].key
  }
}

resource "helm_release" "zone_east" {
  provider  = helm.east
  name      = "atoll-zone"
  namespace = "atoll-system"
  chart     = "../../../helm/atoll"

  set {
    name  = "mode"
    value = "zone"
  }
  set {
    name  = "zone.name"
    value = atoll_zone.zone["east"].name
  }
  set {
    name  = "zone.globalAddress"
    value = module.atoll_global.kds_address
  }
  set {
    name  = "zone.kdsSecret"
    value = kubernetes_secret_v1.kds_east.metadata[0].name
  }
}

resource "helm_release" "zone_west" {
  provider  = helm.west
  name      = "atoll-zone"
  namespace = "atoll-system"
  chart     = "../../../helm/atoll"

  set {
    name  = "mode"
    value = "zone"
  }
  set {
    name  = "zone.name"
    value = atoll_zone.zone["west"].name
  }
  set {
    name  = "zone.globalAddress"
    value = module.atoll_global.kds_address
  }
  set {
    name  = "zone.kdsSecret"
    value = kubernetes_secret_v1.kds_west.metadata[0].name
  }
}

data "atoll_zones" "all" {
  depends_on = [helm_release.zone_east, helm_release.zone_west]
}

output "zones" {
  description = "Each zone and whether it is connected (refreshed on every plan)."
  value       = data.atoll_zones.all.zones
}

output "kds_address" {
  value = module.atoll_global.kds_address
}
