# Inputs of the wandb-operator module. Secret values never appear in the WeightsAndBiases
# resource: every connection field is a reference to a key of an existing Kubernetes Secret in the
# instance namespace (name + key), as the CRD expects (docs/crd-reference.md, "Secret key").

# ---------------------------------------------------------------------------------------------
# What to install
# ---------------------------------------------------------------------------------------------

variable "install_operator" {
  description = "Install the operator chart (CRD, RBAC, controller Deployment)."
  type        = bool
  default     = true
}

variable "install_instance" {
  description = "Create the WeightsAndBiases resource (through the local chart charts/wandb-instance)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Operator
# ---------------------------------------------------------------------------------------------

variable "operator_namespace" {
  description = "Namespace of the operator release."
  type        = string
  default     = "wandb-system"
}

variable "create_operator_namespace" {
  description = "Create operator_namespace (a kubernetes_namespace; deleted on destroy)."
  type        = bool
  default     = true
}

variable "operator_release_name" {
  description = "Helm release name of the operator."
  type        = string
  default     = "wandb-operator"
}

variable "operator_chart" {
  description = <<-EOT
    Where the operator chart comes from. `chart` is a local path (default: the chart of this
    repository, ../charts/wandb-operator relative to the module), a chart name in `repository`
    (https://... or oci://...), or a full chart URL. `version` pins it (ignored for a local path).
  EOT
  type = object({
    chart      = optional(string)
    repository = optional(string)
    version    = optional(string)
  })
  default = {}
}

variable "operator_image" {
  description = "Operator image. `tag` empty = the chart's appVersion; `digest` (sha256:...) wins over the tag."
  type = object({
    repository  = optional(string, "wandb-operator")
    tag         = optional(string, "")
    digest      = optional(string, "")
    pull_policy = optional(string, "IfNotPresent")
  })
  default = {}
  validation {
    condition     = var.operator_image.tag != "latest"
    error_message = "operator_image.tag must be pinned (a version or a digest), not \"latest\"."
  }
  validation {
    condition     = var.operator_image.digest == "" || can(regex("^sha256:[0-9a-f]{64}$", var.operator_image.digest))
    error_message = "operator_image.digest must look like sha256:<64 hex digits>."
  }
  validation {
    condition     = contains(["Always", "IfNotPresent", "Never"], var.operator_image.pull_policy)
    error_message = "operator_image.pull_policy must be Always, IfNotPresent or Never."
  }
}

variable "operator_replicas" {
  description = "Operator replicas (leader election keeps one active). null = the chart default (2)."
  type        = number
  default     = null
}

variable "crds_install" {
  description = "Install/upgrade the WeightsAndBiases CRD with the operator chart (crds.install). The CRD is kept on destroy."
  type        = bool
  default     = true
}

variable "rbac_scope" {
  description = "`cluster` (one ClusterRole, every namespace watched) or `namespaced` (Roles in instance_namespace and watch_namespaces only)."
  type        = string
  default     = "cluster"
  validation {
    condition     = contains(["cluster", "namespaced"], var.rbac_scope)
    error_message = "rbac_scope must be \"cluster\" or \"namespaced\"."
  }
}

variable "watch_namespaces" {
  description = "rbac_scope = namespaced: namespaces watched besides instance_namespace (they must exist)."
  type        = list(string)
  default     = []
}

variable "operator_ca_certs" {
  description = "PEM certificates the operator trusts for its own egress (OCI registry of the server manifest, TLS-intercepting proxies)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.operator_ca_certs : can(regex("-----BEGIN CERTIFICATE-----", c))])
    error_message = "operator_ca_certs entries must be PEM certificates (-----BEGIN CERTIFICATE----- ...)."
  }
}

variable "operator_ca_configmap" {
  description = "Or an existing ConfigMap in operator_namespace whose keys are PEM files, trusted by the operator."
  type        = string
  default     = null
}

variable "operator_values" {
  description = "Extra values for the operator chart, deep-merged by Helm after the module's own (an escape hatch; see charts/wandb-operator/values.yaml)."
  type        = any
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Shared by the operator and the W&B workloads
# ---------------------------------------------------------------------------------------------

variable "image_pull_secrets" {
  description = "Names of dockerconfigjson Secrets: used for the operator pods (in operator_namespace) and every W&B pod (in instance_namespace); they must exist in each."
  type        = list(string)
  default     = []
}

variable "image_registry" {
  description = "Registry mirror for every W&B image (spec.global.imageRegistry), host and optional path, no scheme: registry.example.com/mirror."
  type        = string
  default     = null
  validation {
    condition     = var.image_registry == null || can(regex("^[a-z0-9.-]+(:[0-9]+)?(/[a-zA-Z0-9._/-]*[a-zA-Z0-9])?$", var.image_registry))
    error_message = "image_registry is a registry host and optional path, without a scheme or trailing slash, e.g. registry.example.com/mirror."
  }
}

variable "proxy" {
  description = <<-EOT
    HTTP(S) egress proxy for the operator and every W&B workload. `http_proxy`/`https_proxy` are
    URLs without credentials; when the proxy needs credentials, set `secret_name` instead: a Secret
    with keys HTTP_PROXY / HTTPS_PROXY (URLs that may carry credentials) that must exist in both
    operator_namespace and instance_namespace. `no_proxy` entries are appended to the
    cluster-internal ones.
  EOT
  type = object({
    http_proxy  = optional(string)
    https_proxy = optional(string)
    no_proxy    = optional(list(string), [])
    secret_name = optional(string)
  })
  default = null
  validation {
    condition = var.proxy == null || alltrue([
      for u in compact([try(var.proxy.http_proxy, null), try(var.proxy.https_proxy, null)]) :
      can(regex("^https?://[^/@:]+(:[0-9]+)?/?$", u))
    ])
    error_message = "proxy.http_proxy / proxy.https_proxy must be http(s)://host[:port] URLs without credentials or path; put credentials in a Secret and use proxy.secret_name."
  }
  validation {
    condition     = var.proxy == null || try(var.proxy.secret_name, null) == null || (try(var.proxy.http_proxy, null) == null && try(var.proxy.https_proxy, null) == null)
    error_message = "proxy takes http_proxy/https_proxy literals or secret_name, not both."
  }
  validation {
    condition     = var.proxy == null || alltrue([for n in try(var.proxy.no_proxy, []) : n != "" && !strcontains(n, ",")])
    error_message = "proxy.no_proxy entries must be non-empty and contain no comma."
  }
}

# ---------------------------------------------------------------------------------------------
# The W&B instance
# ---------------------------------------------------------------------------------------------

variable "instance_name" {
  description = "Name of the WeightsAndBiases resource: the prefix of every object it creates (<name>-<component>) and of the ServiceAccount subject cloud IAM bindings need."
  type        = string
  default     = "wandb"
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.instance_name)) && length(var.instance_name) <= 40
    error_message = "instance_name must be a lowercase DNS label of at most 40 characters (objects are named <name>-<component>)."
  }
}

variable "instance_namespace" {
  description = "Namespace of the WeightsAndBiases resource and all of its workloads."
  type        = string
  default     = "wandb"
}

variable "create_instance_namespace" {
  description = "Create instance_namespace. It is deleted on destroy, and with it whatever retention_policy = detach kept (PVCs, generated credentials): create the namespace outside this module when that data must outlive it."
  type        = bool
  default     = true
}

variable "instance_release_name" {
  description = "Helm release name of the instance chart (default: <instance_name>-instance)."
  type        = string
  default     = null
}

variable "wandb_version" {
  description = "Pinned W&B Server version (spec.wandb.version), e.g. \"0.84.0\"."
  type        = string
  validation {
    condition     = trimspace(var.wandb_version) != ""
    error_message = "wandb_version must be pinned to a release such as \"0.84.0\"; it is empty."
  }
  validation {
    condition     = lower(var.wandb_version) != "latest"
    error_message = "wandb_version must be pinned to a release such as \"0.84.0\", not \"latest\"."
  }
  validation {
    condition     = can(regex("^[A-Za-z0-9._+-]+$", var.wandb_version))
    error_message = "wandb_version must be a release tag such as \"0.84.0\": letters, digits, '.', '_', '+' and '-' only."
  }
}

variable "manifest_repository" {
  description = "Where the operator reads server manifests (spec.wandb.manifestRepository): oci://registry/repo, file:///dir or builtin://. null = the operator's default."
  type        = string
  default     = null
  validation {
    condition     = var.manifest_repository == null || can(regex("^(oci|file|builtin)://", var.manifest_repository))
    error_message = "manifest_repository must start with oci://, file:// or builtin://."
  }
}

variable "hostname" {
  description = "Public URL of W&B with its scheme (spec.wandb.hostname), e.g. https://wandb.example.com."
  type        = string
  validation {
    condition     = can(regex("^https?://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?$", var.hostname))
    error_message = "hostname must be a URL such as https://wandb.example.com: scheme http(s), host, optional port, no path or trailing slash."
  }
}

variable "additional_hostnames" {
  description = "Extra public host names (no scheme) served by the Ingress."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for h in var.additional_hostnames : can(regex("^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$", h))])
    error_message = "additional_hostnames entries are host names without a scheme, e.g. wandb.internal.example.com."
  }
}

variable "license" {
  description = "W&B license as a literal. It is stored in a Kubernetes Secret created by this module (<instance_name>-license, key `license`) and referenced from the resource, never written into the resource itself. It is still in the Terraform state: prefer license_secret."
  type        = string
  default     = null
  sensitive   = true
}

variable "license_secret" {
  description = "An existing Secret key in instance_namespace holding the W&B license. Set this or license, not both."
  type = object({
    name = string
    key  = optional(string, "license")
  })
  default = null
}

variable "size" {
  description = "T-shirt size selecting the server manifest's sizing (spec.size)."
  type        = string
  default     = "small"
  validation {
    condition     = contains(["dev", "micro", "small", "medium", "large", "xlarge", "xxlarge"], var.size)
    error_message = "size must be one of dev, micro, small, medium, large, xlarge, xxlarge."
  }
}

variable "retention_policy" {
  description = "What happens to data-bearing objects (PVCs, generated credentials) when the resource is deleted: `detach` keeps them (a new resource of the same name re-adopts them), `purge` deletes them."
  type        = string
  default     = "detach"
  validation {
    condition     = contains(["detach", "purge"], var.retention_policy)
    error_message = "retention_policy must be \"detach\" or \"purge\"."
  }
}

variable "ca_certs" {
  description = "PEM certificates trusted by every W&B workload (spec.global.customCACerts)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.ca_certs : can(regex("^\\s*-----BEGIN CERTIFICATE-----[\\s\\S]*-----END CERTIFICATE-----\\s*$", c))])
    error_message = "ca_certs entries must be PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)."
  }
}

variable "ca_certs_configmap" {
  description = "An existing ConfigMap in instance_namespace whose *.crt keys every W&B workload trusts (spec.global.caCertsConfigMap)."
  type        = string
  default     = null
}

variable "service_account" {
  description = <<-EOT
    The workload ServiceAccount (spec.wandb.serviceAccount), default name <instance_name>-app.
    `annotations` carry the cloud identity: eks.amazonaws.com/role-arn (IRSA),
    iam.gke.io/gcp-service-account (GKE Workload Identity), azure.workload.identity/client-id
    (Azure Workload Identity). `create = false` uses an existing ServiceAccount of that name.
  EOT
  type = object({
    name        = optional(string)
    create      = optional(bool, true)
    annotations = optional(map(string), {})
  })
  default = {}
  validation {
    condition     = try(var.service_account.name, null) == null || can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.service_account.name))
    error_message = "service_account.name must be a DNS subdomain name."
  }
}

# ---------------------------------------------------------------------------------------------
# Backing services: null = managed by the operator in instance_namespace (generated credentials);
# an object = external, every field read from a key of `secret_name` (a Secret in
# instance_namespace). `keys` renames the keys; a key set to "" is not passed (null means the
# default key name).
# ---------------------------------------------------------------------------------------------

variable "mysql" {
  description = "External MySQL (null = managed MySQL 8). Keys of `secret_name`: host, port, database, username, password; tls (true|false|skip-verify|preferred|custom) and ssl_ca/ssl_cert/ssl_key when named."
  type = object({
    secret_name = string
    keys = optional(object({
      host     = optional(string, "host")
      port     = optional(string, "port")
      database = optional(string, "database")
      username = optional(string, "username")
      password = optional(string, "password")
      tls      = optional(string)
      ssl_ca   = optional(string)
      ssl_cert = optional(string)
      ssl_key  = optional(string)
    }), {})
  })
  default = null
  validation {
    condition     = var.mysql == null || alltrue([for k in ["host", "database", "username", "password"] : try(var.mysql.keys[k], null) != null])
    error_message = "mysql.keys.host, database, username and password cannot be null: the operator requires them."
  }
}

variable "redis" {
  description = "External Redis (null = managed Redis 7). Keys of `secret_name`: host, port, password; tls and ssl_ca when named. `sentinel_master` connects through a sentinel; `params` are extra URL parameters."
  type = object({
    secret_name = string
    keys = optional(object({
      host     = optional(string, "host")
      port     = optional(string, "port")
      password = optional(string, "password")
      tls      = optional(string)
      ssl_ca   = optional(string)
    }), {})
    sentinel_master = optional(string)
    params          = optional(map(string), {})
  })
  default = null
  validation {
    condition     = var.redis == null || try(var.redis.keys.host, null) != null
    error_message = "redis.keys.host cannot be null."
  }
}

variable "object_store" {
  description = <<-EOT
    External bucket (null = the operator's managed S3-compatible store). Keys of `secret_name`:
    provider (s3|gcs|azure|coreweave), bucket, and when named: path, region, endpoint, port,
    kms_key, force_path_style, tls_enabled, access_key, secret_key. Leave access_key/secret_key
    null for workload identity (IRSA, GKE WI, Azure WI through service_account.annotations).
  EOT
  type = object({
    secret_name = string
    keys = optional(object({
      provider         = optional(string, "provider")
      bucket           = optional(string, "bucket")
      path             = optional(string)
      region           = optional(string)
      endpoint         = optional(string)
      port             = optional(string)
      kms_key          = optional(string)
      force_path_style = optional(string)
      tls_enabled      = optional(string)
      access_key       = optional(string)
      secret_key       = optional(string)
    }), {})
  })
  default = null
  validation {
    condition     = var.object_store == null || try(var.object_store.keys.bucket, null) != null
    error_message = "object_store.keys.bucket cannot be null."
  }
  validation {
    condition     = var.object_store == null || ((try(var.object_store.keys.access_key, null) == null) == (try(var.object_store.keys.secret_key, null) == null))
    error_message = "object_store.keys.access_key and secret_key go together: name both (static keys) or neither (workload identity)."
  }
}

variable "clickhouse" {
  description = "External ClickHouse for Weave traces (null = managed by the operator). Keys of `secret_name`: host, username, password; database, http_port, tcp_port, replicated, cluster_name when named."
  type = object({
    secret_name = string
    keys = optional(object({
      host         = optional(string, "host")
      username     = optional(string, "username")
      password     = optional(string, "password")
      database     = optional(string)
      http_port    = optional(string)
      tcp_port     = optional(string)
      replicated   = optional(string)
      cluster_name = optional(string)
    }), {})
  })
  default = null
  validation {
    condition     = var.clickhouse == null || alltrue([for k in ["host", "username", "password"] : try(var.clickhouse.keys[k], null) != null])
    error_message = "clickhouse.keys.host, username and password cannot be null."
  }
}

variable "kafka" {
  description = "External Kafka (null = managed by the operator). Keys of `secret_name`: bootstrap_servers (comma-separated host:port); username, password, tls, ssl_ca when named. `sasl_mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  type = object({
    secret_name = string
    keys = optional(object({
      bootstrap_servers = optional(string, "bootstrap-servers")
      username          = optional(string)
      password          = optional(string)
      tls               = optional(string)
      ssl_ca            = optional(string)
    }), {})
    sasl_mechanism = optional(string)
  })
  default = null
  validation {
    condition     = var.kafka == null || try(var.kafka.sasl_mechanism, null) == null || contains(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], coalesce(try(var.kafka.sasl_mechanism, null), "PLAIN"))
    error_message = "kafka.sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  }
}

# ---------------------------------------------------------------------------------------------
# Networking, SSO, email
# ---------------------------------------------------------------------------------------------

variable "ingress" {
  description = "One Ingress with every W&B path (spec.networking.mode = ingress); null = no operator-managed edge (see also gateway; set at most one of ingress / gateway). Set at most one of cert_manager_cluster_issuer / cert_manager_issuer (cert-manager then fills tls_secret_name)."
  type = object({
    class_name                  = optional(string)
    name                        = optional(string)
    annotations                 = optional(map(string), {})
    tls_secret_name             = optional(string)
    cert_manager_cluster_issuer = optional(string)
    cert_manager_issuer         = optional(string)
  })
  default = null
  validation {
    condition     = var.ingress == null || try(var.ingress.cert_manager_cluster_issuer, null) == null || try(var.ingress.cert_manager_issuer, null) == null
    error_message = "ingress takes cert_manager_cluster_issuer or cert_manager_issuer, not both."
  }
}

variable "gateway" {
  description = <<-EOT
    Gateway API edge (spec.networking.mode = gateway): one HTTPRoute per W&B app, attached to a
    Gateway that the operator creates (managed = true: gateway_class_name required, listeners
    derived from hostname when empty) or to an existing one (managed = false: gateway_ref
    required). Needs the Gateway API CRDs (gateway.networking.k8s.io/v1) in the cluster. null = no
    Gateway API objects. Set at most one of ingress / gateway, and at most one of
    cert_manager_cluster_issuer / cert_manager_issuer. `annotations`, `tls_secret_name` and the
    issuers apply to the managed Gateway.
  EOT
  type = object({
    managed            = bool
    gateway_class_name = optional(string)
    gateway_ref = optional(object({
      name      = string
      namespace = optional(string)
    }))
    listener_name              = optional(string)
    infrastructure_annotations = optional(map(string), {})
    listeners = optional(list(object({
      name     = string
      port     = number
      protocol = string
      hostname = optional(string)
      tls = optional(object({
        mode = optional(string)
        certificate_ref = optional(object({
          name      = string
          namespace = optional(string)
        }))
      }))
    })), [])
    annotations                 = optional(map(string), {})
    tls_secret_name             = optional(string)
    cert_manager_cluster_issuer = optional(string)
    cert_manager_issuer         = optional(string)
  })
  default = null
  validation {
    condition     = var.gateway == null || !try(var.gateway.managed, false) || try(var.gateway.gateway_class_name, null) != null
    error_message = "gateway.managed = true needs gateway.gateway_class_name."
  }
  validation {
    condition     = var.gateway == null || !try(var.gateway.managed, false) || try(var.gateway.gateway_ref, null) == null
    error_message = "gateway.gateway_ref must not be set when gateway.managed = true (the operator creates <instance_name>-gateway)."
  }
  validation {
    condition     = var.gateway == null || try(var.gateway.managed, false) || try(var.gateway.gateway_ref, null) != null
    error_message = "gateway.managed = false needs gateway.gateway_ref (the existing Gateway the routes attach to)."
  }
  validation {
    condition     = var.gateway == null || try(var.gateway.managed, false) || length(try(var.gateway.listeners, [])) + length(try(var.gateway.infrastructure_annotations, {})) == 0
    error_message = "gateway.listeners and gateway.infrastructure_annotations configure the managed Gateway: they need gateway.managed = true."
  }
  validation {
    condition = var.gateway == null || alltrue([
      for l in try(var.gateway.listeners, []) : l.port >= 1 && l.port <= 65535
    ])
    error_message = "gateway.listeners: port must be between 1 and 65535."
  }
  validation {
    condition     = var.gateway == null || try(var.gateway.cert_manager_cluster_issuer, null) == null || try(var.gateway.cert_manager_issuer, null) == null
    error_message = "gateway takes cert_manager_cluster_issuer or cert_manager_issuer, not both."
  }
}

variable "oidc" {
  description = "Single sign-on. Keys of `secret_name` (instance_namespace): issuer_url, client_id; client_secret and auth_method (implicit|pkce) when named. `session_length` e.g. \"720h\"."
  type = object({
    secret_name = string
    keys = optional(object({
      issuer_url    = optional(string, "issuer-url")
      client_id     = optional(string, "client-id")
      client_secret = optional(string)
      auth_method   = optional(string)
    }), {})
    session_length = optional(string)
  })
  default = null
  validation {
    condition     = var.oidc == null || try(var.oidc.session_length, null) == null || can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", coalesce(try(var.oidc.session_length, null), "1h")))
    error_message = "oidc.session_length must be a duration such as 720h."
  }
}

variable "smtp" {
  description = "SMTP server for email notifications. Keys of `secret_name` (instance_namespace): host, port, username, password."
  type = object({
    secret_name = string
    keys = optional(object({
      host     = optional(string, "host")
      port     = optional(string, "port")
      username = optional(string, "username")
      password = optional(string, "password")
    }), {})
  })
  default = null
}

variable "instance_spec_override" {
  description = "Extra spec fields for the WeightsAndBiases resource, deep-merged by Helm over the module's spec (an escape hatch: features, applications, affinity, ...; see docs/crd-reference.md)."
  type        = any
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Apply behaviour
# ---------------------------------------------------------------------------------------------

variable "helm_timeout_seconds" {
  description = "Timeout of each Helm operation (the operator release waits for its Deployment)."
  type        = number
  default     = 300
}

variable "helm_disable_openapi_validation" {
  description = "Skip Helm's client-side OpenAPI validation of the rendered objects. Default true: helm provider v1.x embeds Helm 3.3, whose validator refuses the CRD's nullable enums (`unknown object type \"nil\"`). The API server still validates every object (schema and CEL rules); with helm provider >= 2.x this can be false."
  type        = bool
  default     = true
}

variable "wait_for_ready" {
  description = "Block the apply until the resource's Ready condition is True (`kubectl wait`, run on the machine running Terraform: needs kubectl on PATH or kubectl_path, and kubeconfig_path or KUBECONFIG). Also makes destroy wait until the operator has finalized the resource before the operator is removed."
  type        = bool
  default     = true
}

variable "wait_timeout_seconds" {
  description = "How long wait_for_ready waits (seconds)."
  type        = number
  default     = 1800
  validation {
    condition     = var.wait_timeout_seconds > 0
    error_message = "wait_timeout_seconds must be positive."
  }
}

variable "kubectl_path" {
  description = "kubectl used by wait_for_ready."
  type        = string
  default     = "kubectl"
}

variable "kubeconfig_path" {
  description = "Kubeconfig used by wait_for_ready's kubectl (null = kubectl's default: KUBECONFIG or ~/.kube/config). The providers are configured by the caller, not by this."
  type        = string
  default     = null
}
