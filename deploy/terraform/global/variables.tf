variable "name" {
  description = "Name of the Deployment and the prefix of its Services and Secret."
  type        = string
  default     = "atoll-global"
}

variable "namespace" {
  description = "Kubernetes namespace to deploy into."
  type        = string
  default     = "atoll-system"
}

variable "create_namespace" {
  description = "Create the namespace instead of expecting it to exist."
  type        = bool
  default     = true
}

variable "image" {
  description = "Image built from deploy/docker/Dockerfile (no public image is published)."
  type        = string
}

variable "replicas" {
  description = "Global replicas; they share the database, the KDS CA and the change feed."
  type        = number
  default     = 1
}

variable "postgres_host" {
  description = "Host of the existing PostgreSQL server (e.g. a managed instance)."
  type        = string
}

variable "postgres_port" {
  description = "Port of the PostgreSQL server."
  type        = number
  default     = 5432
}

variable "postgres_user" {
  description = "PostgreSQL user; it must be allowed to create tables (migrations run at start)."
  type        = string
}

variable "postgres_password" {
  description = "Password of postgres_user; stored in a Kubernetes Secret."
  type        = string
  sensitive   = true
}

variable "postgres_db_name" {
  description = "Database holding Atoll's resources; it must exist."
  type        = string
  default     = "atoll"
}

variable "postgres_max_open_connections" {
  description = "Connection pool size per replica (KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS)."
  type        = number
  default     = 50
}

variable "kds_hostnames" {
  description = "Names or addresses zones dial to reach KDS. The first one is used in the kds_address output; the load balancer's address and the in-cluster names are added to the certificate anyway."
  type        = list(string)
  default     = []
}

variable "kds_service_type" {
  description = "Service type for KDS (5685); zones usually run in other clusters."
  type        = string
  default     = "LoadBalancer"
}

variable "kds_service_annotations" {
  description = "Annotations for the KDS Service, e.g. to request an internal load balancer."
  type        = map(string)
  default     = {}
}

variable "extra_env" {
  description = "More KUMA_* settings (docs/configuration.md)."
  type        = map(string)
  default     = {}
}
