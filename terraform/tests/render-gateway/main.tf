# Rendering test of gateway mode (offline, no cluster): a managed Gateway with explicit listeners,
# infrastructure annotations and a cert-manager issuer, and routes attached to an existing
# Gateway. tests/run.sh evaluates both modules' instance_spec with `terraform console`, checks
# spec.networking, has `wandb-operator render` accept both resources and, in apply, the API
# server (dry run: the CRD's schema and CEL rules).

provider "kubernetes" {
  config_path = "/nonexistent"
}

provider "helm" {
  kubernetes {
    config_path = "/nonexistent"
  }
}

module "managed" {
  source = "../.."

  instance_name      = "gw"
  instance_namespace = "team-gw"
  wandb_version      = "0.84.0"
  hostname           = "https://wandb.example.com"
  wait_for_ready     = false
  gateway = {
    managed                     = true
    gateway_class_name          = "eg"
    infrastructure_annotations  = { "example.com/lb" = "internal" }
    annotations                 = { "a/b" = "x,y" }
    cert_manager_cluster_issuer = "letsencrypt"
    listeners = [
      { name = "web", port = 80, protocol = "HTTP" },
      { name = "web-tls", port = 443, protocol = "HTTPS", hostname = "wandb.example.com", tls = { mode = "Terminate", certificate_ref = { name = "gw-cert" } } },
    ]
    listener_name = "web-tls"
  }
}

module "referenced" {
  source = "../.."

  install_operator   = false
  instance_name      = "ref"
  instance_namespace = "team-gw"
  wandb_version      = "0.84.0"
  hostname           = "https://wandb.example.com"
  wait_for_ready     = false
  gateway = {
    managed       = false
    gateway_ref   = { name = "shared", namespace = "edge" }
    listener_name = "https"
  }
}
