# AWS: wiring the outputs of the AWS infrastructure (Aurora MySQL, ElastiCache Redis, S3 + KMS,
# an IRSA role) into the module, the way wandb/terraform-aws-wandb feeds its spec, but through a
# Kubernetes Secret and Secret-key references instead of literals in the resource.
#
# The variables below stand in for the cloud modules' outputs (e.g. module.database.endpoint,
# module.redis.host, aws_s3_bucket.file_storage.id, aws_kms_key.key.arn, module.irsa.role_arn).
# Only `terraform validate` is run on this example.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    helm       = { source = "hashicorp/helm", version = ">= 1.3.2" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 1.13.4" }
  }
}

variable "kubeconfig" {
  description = "Kubeconfig of the EKS cluster (or configure the providers from aws_eks_cluster outputs)."
  type        = string
  default     = "~/.kube/config"
}

variable "license" {
  type      = string
  sensitive = true
}

variable "fqdn" {
  type    = string
  default = "wandb.example.com"
}

# ---- stand-ins for the AWS modules' outputs ----
variable "database_endpoint" {
  type    = string
  default = "wandb.cluster-abc.us-east-1.rds.amazonaws.com"
}
variable "database_port" {
  type    = number
  default = 3306
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
variable "elasticache_endpoint" {
  type    = string
  default = "master.wandb.abc.use1.cache.amazonaws.com"
}
variable "elasticache_port" {
  type    = number
  default = 6379
}
variable "bucket_name" {
  type    = string
  default = "wandb-file-storage"
}
variable "bucket_region" {
  type    = string
  default = "us-east-1"
}
variable "kms_key_arn" {
  type    = string
  default = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"
}
variable "irsa_role_arn" {
  description = "IAM role with S3/KMS access whose trust policy allows module.wandb.service_account_subjects."
  type        = string
  default     = "arn:aws:iam::000000000000:role/wandb-app"
}
variable "acm_certificate_arn" {
  type    = string
  default = "arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-0000-0000-000000000000"
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
  namespace = "wandb"
}

resource "kubernetes_namespace" "wandb" {
  metadata {
    name = local.namespace
  }
}

# Connection values live in Secrets; the resource only names their keys.
resource "kubernetes_secret" "mysql" {
  metadata {
    name      = "wandb-aurora"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    host     = var.database_endpoint
    port     = tostring(var.database_port)
    database = var.database_name
    username = var.database_username
    password = var.database_password
    tls      = "true"
  }
}

resource "kubernetes_secret" "redis" {
  metadata {
    name      = "wandb-elasticache"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    host = var.elasticache_endpoint
    port = tostring(var.elasticache_port)
    tls  = "true" # ElastiCache with transit encryption
  }
}

resource "kubernetes_secret" "bucket" {
  metadata {
    name      = "wandb-s3"
    namespace = kubernetes_namespace.wandb.metadata[0].name
  }
  data = {
    provider = "s3"
    bucket   = var.bucket_name
    region   = var.bucket_region
    kms-key  = var.kms_key_arn
  }
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
    keys        = { password = "", tls = "tls" } # "" = not passed: no AUTH token
  }
  object_store = {
    secret_name = kubernetes_secret.bucket.metadata[0].name
    # No access_key/secret_key: the pods get S3/KMS access through IRSA.
    keys = { region = "region", kms_key = "kms-key" }
  }
  service_account = {
    annotations = { "eks.amazonaws.com/role-arn" = var.irsa_role_arn }
  }
  ingress = {
    class_name = "alb"
    annotations = {
      "alb.ingress.kubernetes.io/scheme"          = "internet-facing"
      "alb.ingress.kubernetes.io/target-type"     = "ip"
      "alb.ingress.kubernetes.io/listen-ports"    = "[{\"HTTPS\":443}]"
      "alb.ingress.kubernetes.io/certificate-arn" = var.acm_certificate_arn
      # Commas pass through untouched (values are YAML, not `helm --set`): no "\\," escaping.
      "alb.ingress.kubernetes.io/inbound-cidrs" = "10.0.0.0/8,192.168.0.0/16"
    }
  }

  kubeconfig_path = var.kubeconfig
}

output "url" {
  value = module.wandb.url
}

output "irsa_trust_subjects" {
  description = "Put these in the IRSA role's trust policy (condition <oidc>:sub)."
  value       = module.wandb.service_account_subjects
}
