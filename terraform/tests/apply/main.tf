# Test configuration applied by tests/run.sh against a disposable local cluster
# (scripts/cluster.sh). Uses helm provider v1.x syntax (a `kubernetes {}` block), the only one
# buildable offline here; see ../../README.md.

variable "kubeconfig" {
  type = string
}

variable "kubectl" {
  type = string
}

variable "operator_namespace" {
  type    = string
  default = "tf-wandb-system"
}

variable "instance_namespace" {
  type    = string
  default = "tf-wandb"
}

variable "wait_for_ready" {
  description = "true only when an operator actually reconciles (run on the host by tests/run.sh); under kwok the in-cluster operator pods are fakes."
  type        = bool
  default     = false
}

provider "kubernetes" {
  config_path = var.kubeconfig
}

provider "helm" {
  kubernetes {
    config_path = var.kubeconfig
  }
}

module "wandb" {
  source = "../.."

  install_operator   = true
  operator_namespace = var.operator_namespace
  rbac_scope         = "namespaced"

  # Pre-created by the test (a namespace deleted by destroy would take the detached data with it).
  instance_namespace        = var.instance_namespace
  create_instance_namespace = false
  instance_name             = "wandb"

  wandb_version       = "0.79.0"
  manifest_repository = "builtin://"
  hostname            = "https://wandb.tf.test"
  size                = "dev"
  license             = "not-a-real-license"
  retention_policy    = "detach"

  service_account = {
    annotations = { "eks.amazonaws.com/role-arn" = "arn:aws:iam::000000000000:role/wandb-test" }
  }
  ingress = {
    class_name                  = "nginx"
    tls_secret_name             = "wandb-tls"
    cert_manager_cluster_issuer = "letsencrypt"
  }
  proxy = {
    https_proxy = "http://proxy.tf.test:3128"
    no_proxy    = [".tf.test"]
  }

  helm_timeout_seconds = 120
  wait_for_ready       = var.wait_for_ready
  wait_timeout_seconds = 300
  kubectl_path         = var.kubectl
  kubeconfig_path      = var.kubeconfig
}

output "url" {
  value = module.wandb.url
}

output "service_account_name" {
  value = module.wandb.service_account_name
}

output "connection_secret_names" {
  value = module.wandb.connection_secret_names
}

output "operator_release_name" {
  value = module.wandb.operator_release_name
}
