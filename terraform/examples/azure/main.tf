# Azure: wiring the outputs of the Azure infrastructure (MySQL Flexible Server, Azure Cache for
# Redis, a storage account + container, a user-assigned identity federated with the workload
# ServiceAccount) into the module, as wandb/terraform-azurerm-wandb does, through a Kubernetes
# Secret and Secret-key references. Variables stand in for the cloud modules' outputs
# (azurerm_mysql_flexible_server.*.fqdn, azurerm_redis_cache.*.{hostname,ssl_port,
# primary_access_key}, azurerm_storage_account.*.{name,primary_access_key},
# azurerm_user_assigned_identity.*.client_id). Only `terraform validate` is run on this example.

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

variable "license" {
  type      = string
  sensitive = true
}

variable "fqdn" {
  type    = string
  default = "wandb.example.com"
}

# ---- stand-ins for the Azure modules' outputs ----
variable "mysql_fqdn" {
  type    = string
  default = "wandb.mysql.database.azure.com"
}
variable "mysql_database" {
  type    = string
  default = "wandb_local"
}
variable "mysql_username" {
  type    = string
  default = "wandb"
}
variable "mysql_password" {
  type      = string
  sensitive = true
}
variable "redis_hostname" {
  type    = string
  default = "wandb.redis.cache.windows.net"
}
variable "redis_ssl_port" {
  type    = number
  default = 6380
}
variable "redis_primary_access_key" {
  type      = string
  sensitive = true
}
variable "storage_account_name" {
  type    = string
  default = "wandbstorage"
}
variable "storage_container_name" {
  type    = string
  default = "wandb"
}
variable "storage_account_key" {
  description = "null = no key: the pods reach the account through Azure Workload Identity (identity_client_id)."
  type        = string
  default     = null
  sensitive   = true
}
variable "identity_client_id" {
  description = "Client id of the user-assigned identity; federate it with module.wandb.service_account_subjects."
  type        = string
  default     = "00000000-0000-0000-0000-000000000000"
}
variable "cluster_issuer" {
  description = "cert-manager ClusterIssuer (ACME through AGIC)."
  type        = string
  default     = "cert-issuer"
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

locals {
  use_account_key = nonsensitive(var.storage_account_key != null)
}

resource "kubernetes_namespace" "wandb" {
  metadata {
    name = "wandb"
  }
}

resource "kubernetes_secret" "mysql" {
  metadata {
    name      = "wandb-mysql-flexible"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    host     = var.mysql_fqdn
    port     = "3306"
    database = var.mysql_database
    username = var.mysql_username
    password = var.mysql_password
    tls      = "true"
  }
}

resource "kubernetes_secret" "redis" {
  metadata {
    name      = "wandb-azure-redis"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    host     = var.redis_hostname
    port     = tostring(var.redis_ssl_port)
    password = var.redis_primary_access_key
    tls      = "true"
  }
}

resource "kubernetes_secret" "storage" {
  metadata {
    name      = "wandb-blob"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  # For Azure, the CRD reads the storage account from accessKey and the account key from secretKey.
  data = merge(
    {
      provider = "azure"
      bucket   = var.storage_container_name
      account  = var.storage_account_name
    },
    local.use_account_key ? { account-key = var.storage_account_key } : {},
  )
}

module "wandb" {
  source = "../.."

  instance_namespace        = kubernetes_namespace.wandb.metadata[0].name
  create_instance_namespace = false
  wandb_version             = "0.84.0"
  hostname                  = "https://${var.fqdn}"
  license                   = var.license
  size                      = "small"

  mysql = {
    secret_name = kubernetes_secret.mysql.metadata[0].name
    keys        = { tls = "tls" }
  }
  redis = {
    secret_name = kubernetes_secret.redis.metadata[0].name
    keys        = { tls = "tls" }
  }
  object_store = {
    secret_name = kubernetes_secret.storage.metadata[0].name
    keys = local.use_account_key ? {
      access_key = "account", secret_key = "account-key"
      } : {
      access_key = null, secret_key = null
    }
  }
  service_account = {
    annotations = { "azure.workload.identity/client-id" = var.identity_client_id }
  }
  ingress = {
    class_name                  = "azure-application-gateway"
    annotations                 = { "appgw.ingress.kubernetes.io/request-timeout" = "300" }
    tls_secret_name             = "wandb-ssl-cert"
    cert_manager_cluster_issuer = var.cluster_issuer
  }

  kubeconfig_path = var.kubeconfig
}

output "url" {
  value = module.wandb.url
}

output "federated_credential_subjects" {
  description = "Subjects of the azurerm_federated_identity_credential(s) on the user-assigned identity."
  value       = module.wandb.service_account_subjects
}
