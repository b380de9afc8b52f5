# GCP: wiring the outputs of the GCP infrastructure (Cloud SQL MySQL on a private IP, Memorystore
# Redis with AUTH and in-transit TLS, a GCS bucket, a Google service account for Workload
# Identity) into the module, as wandb/terraform-google-wandb does, through a Kubernetes Secret and
# Secret-key references. Variables stand in for the cloud modules' outputs
# (google_sql_database_instance.*.private_ip_address, google_redis_instance.*.{host,port,
# auth_string,server_ca_certs}, google_storage_bucket.*.name, google_service_account.*.email).
# Only `terraform validate` is run on this example.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    helm       = { source = "hashicorp/helm", version = ">= 1.3.2" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 1.13.4" }
  }
}

variable "kubeconfig" {
  type    = string
  default = "~/.kube/config"
}

variable "license_secret_name" {
  description = "A Secret (key `license`) in the instance namespace holding the license, e.g. synced from Secret Manager."
  type        = string
  default     = "wandb-license"
}

variable "fqdn" {
  type    = string
  default = "wandb.example.com"
}

# ---- stand-ins for the GCP modules' outputs ----
variable "cloudsql_private_ip" {
  type    = string
  default = "10.10.0.3"
}
variable "database_name" {
  type    = string
  default = "wandb_local"
}
variable "database_username" {
  type    = string
  default = "wandb"
}
variable "database_password" {
  type      = string
  sensitive = true
}
variable "memorystore_host" {
  type    = string
  default = "10.10.1.4"
}
variable "memorystore_port" {
  type    = number
  default = 6378
}
variable "memorystore_auth_string" {
  type      = string
  sensitive = true
}
variable "memorystore_ca_cert" {
  description = "PEM of google_redis_instance.server_ca_certs[0].cert."
  type        = string
  default     = ""
}
variable "bucket_name" {
  type    = string
  default = "wandb-file-storage"
}
variable "workload_identity_gsa_email" {
  description = "Google service account with storage.objectAdmin on the bucket; grant roles/iam.workloadIdentityUser to module.wandb.service_account_subjects (as serviceAccount:<project>.svc.id.goog[<ns>/<name>])."
  type        = string
  default     = "wandb-app@my-project.iam.gserviceaccount.com"
}
variable "global_static_ip_name" {
  type    = string
  default = "wandb-address"
}
variable "managed_certificate_name" {
  type    = string
  default = "wandb-cert"
}

provider "kubernetes" {
  config_path = var.kubeconfig
}

# helm provider v1.x/v2.x syntax; with v3.x write `kubernetes = { config_path = ... }`.
provider "helm" {
  kubernetes {
    config_path = var.kubeconfig
  }
}

resource "kubernetes_namespace" "wandb" {
  metadata {
    name = "wandb"
  }
}

resource "kubernetes_secret" "mysql" {
  metadata {
    name      = "wandb-cloudsql"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    host     = var.cloudsql_private_ip
    port     = "3306"
    database = var.database_name
    username = var.database_username
    password = var.database_password
  }
}

resource "kubernetes_secret" "redis" {
  metadata {
    name      = "wandb-memorystore"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    host     = var.memorystore_host
    port     = tostring(var.memorystore_port)
    password = var.memorystore_auth_string
    tls      = "true"
    "ca.pem" = var.memorystore_ca_cert
  }
}

resource "kubernetes_secret" "bucket" {
  metadata {
    name      = "wandb-gcs"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    provider = "gcs"
    bucket   = var.bucket_name
  }
}

module "wandb" {
  source = "../.."

  instance_namespace        = kubernetes_namespace.wandb.metadata[0].name
  create_instance_namespace = false
  wandb_version             = "0.84.0"
  hostname                  = "https://${var.fqdn}"
  license_secret            = { name = var.license_secret_name }
  size                      = "small"

  mysql = { secret_name = kubernetes_secret.mysql.metadata[0].name }
  redis = {
    secret_name = kubernetes_secret.redis.metadata[0].name
    keys        = { tls = "tls", ssl_ca = "ca.pem" }
  }
  object_store = {
    secret_name = kubernetes_secret.bucket.metadata[0].name # no keys: Workload Identity
  }
  service_account = {
    annotations = { "iam.gke.io/gcp-service-account" = var.workload_identity_gsa_email }
  }
  ingress = {
    class_name = "gce"
    annotations = {
      "kubernetes.io/ingress.global-static-ip-name" = var.global_static_ip_name
      "ingress.gcp.kubernetes.io/pre-shared-cert"   = var.managed_certificate_name
    }
  }

  kubeconfig_path = var.kubeconfig
}

output "url" {
  value = module.wandb.url
}

output "workload_identity_members" {
  description = "Members to grant roles/iam.workloadIdentityUser on the GSA (replace PROJECT)."
  value       = ["serviceAccount:PROJECT.svc.id.goog[${module.wandb.instance_namespace}/${module.wandb.service_account_name}]"]
}
