# Rendering test (offline, no cluster): every external service, SSO, SMTP, proxy from a Secret,
# CAs, registry mirror and license Secret reference. tests/run.sh evaluates
# module.wandb.instance_spec with `terraform console` and checks it.

provider "kubernetes" {
  config_path = "/nonexistent"
}

provider "helm" {
  kubernetes {
    config_path = "/nonexistent"
  }
}

module "wandb" {
  source = "../.."

  instance_name      = "ml"
  instance_namespace = "team-ml"
  wandb_version      = "0.84.0"
  hostname           = "https://wandb.example.com"
  license_secret     = { name = "lic" }
  image_registry     = "registry.example.com/mirror"
  image_pull_secrets = ["regcred"]
  ca_certs_configmap = "corp-ca"
  retention_policy   = "purge"
  size               = "large"
  wait_for_ready     = false
  service_account    = { name = "wandb-sa", annotations = { "iam.gke.io/gcp-service-account" = "w@p.iam.gserviceaccount.com" } }
  proxy              = { secret_name = "proxy-creds", no_proxy = ["internal.example.com"] }
  mysql              = { secret_name = "db", keys = { tls = "tls" } }
  redis              = { secret_name = "cache", keys = { password = "" }, sentinel_master = "gorilla", params = { ttlInSeconds = "604800" } }
  object_store       = { secret_name = "bucket", keys = { region = "region", access_key = "ak", secret_key = "sk" } }
  clickhouse         = { secret_name = "ch", keys = { database = "db" } }
  kafka              = { secret_name = "kafka", keys = { username = "user", password = "pass" }, sasl_mechanism = "SCRAM-SHA-512" }
  oidc               = { secret_name = "sso", keys = { client_secret = "secret" }, session_length = "720h" }
  smtp               = { secret_name = "mail" }
  ingress            = { class_name = "alb", annotations = { "a/b" = "x,y" }, cert_manager_issuer = "local" }
}
