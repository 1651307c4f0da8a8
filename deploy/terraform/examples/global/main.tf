# A global control plane in the current kubectl context, on an existing (e.g. managed)
# PostgreSQL:
#   terraform init && terraform apply -var postgres_password=...
#   eval "$(terraform output -raw kds_ca_command)" > kds-ca.crt

provider "kubernetes" {
  config_path = "~/.kube/config"
}

variable "postgres_password" {
  type      = string
  sensitive = true
}

module "atoll_global" {
  source = "../../global"

  image             = "registry.example.com/atoll:0.1.0"
  postgres_host     = "atoll.abcdefgh.eu-west-1.rds.amazonaws.com"
  postgres_user     = "atoll"
  postgres_password = var.postgres_password
  postgres_db_name  = "atoll"
  replicas          = 2
  kds_hostnames     = ["kds.mesh.example.com"]
}

output "kds_address" {
  value = module.atoll_global.kds_address
}

output "kds_ca_command" {
  value = module.atoll_global.kds_ca_command
}

output "zone_certificate_command" {
  value = module.atoll_global.zone_certificate_command
}
