# wandb-operator Terraform module: the operator chart (charts/wandb-operator) and one
# WeightsAndBiases resource, rendered from structured data through the local chart
# charts/wandb-instance (values = [yamlencode(...)], never `set` string parsing, and no
# kubernetes_manifest, so the CRD need not exist at plan time).

locals {
  operator_chart       = coalesce(try(var.operator_chart.chart, null), "${path.module}/../charts/wandb-operator")
  instance_release     = coalesce(var.instance_release_name, "${var.instance_name}-instance")
  service_account_name = coalesce(try(var.service_account.name, null), "${var.instance_name}-app")
  url                  = var.hostname

  # Managed license Secret (only when the license is given as a literal). Whether a license was
  # given is not secret; the license is.
  has_license_literal = nonsensitive(var.license != null)
  license_secret_name = "${var.instance_name}-license"
  license_ref = var.license_secret != null ? { name = var.license_secret.name, key = var.license_secret.key } : (
    local.has_license_literal ? { name = local.license_secret_name, key = "license" } : null
  )

  watch_namespaces = distinct(concat([var.instance_namespace], var.watch_namespaces))

  # ---- operator chart values ------------------------------------------------------------------
  operator_values = merge(
    {
      crds = { install = var.crds_install }
      image = {
        repository = var.operator_image.repository
        tag        = var.operator_image.tag
        digest     = var.operator_image.digest
        pullPolicy = var.operator_image.pull_policy
      }
      imagePullSecrets = [for s in var.image_pull_secrets : { name = s }]
      rbac = {
        scope           = var.rbac_scope
        watchNamespaces = var.rbac_scope == "namespaced" ? local.watch_namespaces : []
      }
      caCerts = {
        certs             = var.operator_ca_certs
        existingConfigMap = try(coalesce(var.operator_ca_configmap), "")
      }
      proxy = {
        httpProxy      = try(coalesce(try(var.proxy.http_proxy, null)), "")
        httpsProxy     = try(coalesce(try(var.proxy.https_proxy, null)), "")
        noProxy        = join(",", try(var.proxy.no_proxy, []))
        existingSecret = try(coalesce(try(var.proxy.secret_name, null)), "")
      }
    },
    var.operator_replicas == null ? {} : { replicas = var.operator_replicas },
  )

  # ---- instance spec --------------------------------------------------------------------------
  # sel(secret, {field = key or null}) -> {field = {name, key}} without the null keys. Written as a
  # for expression per service (Terraform has no user functions).
  mysql_fields = var.mysql == null ? {} : {
    host     = var.mysql.keys.host, port = var.mysql.keys.port, database = var.mysql.keys.database
    username = var.mysql.keys.username, password = var.mysql.keys.password, tls = var.mysql.keys.tls
    sslCa    = var.mysql.keys.ssl_ca, sslCert = var.mysql.keys.ssl_cert, sslKey = var.mysql.keys.ssl_key
  }
  redis_fields = var.redis == null ? {} : {
    host = var.redis.keys.host, port = var.redis.keys.port, password = var.redis.keys.password
    tls  = var.redis.keys.tls, sslCa = var.redis.keys.ssl_ca
  }
  object_store_fields = var.object_store == null ? {} : {
    provider   = var.object_store.keys.provider, bucket = var.object_store.keys.bucket
    path       = var.object_store.keys.path, region = var.object_store.keys.region
    endpoint   = var.object_store.keys.endpoint, port = var.object_store.keys.port
    kmsKey     = var.object_store.keys.kms_key, forcePathStyle = var.object_store.keys.force_path_style
    tlsEnabled = var.object_store.keys.tls_enabled, accessKey = var.object_store.keys.access_key
    secretKey  = var.object_store.keys.secret_key
  }
  clickhouse_fields = var.clickhouse == null ? {} : {
    host       = var.clickhouse.keys.host, username = var.clickhouse.keys.username
    password   = var.clickhouse.keys.password, database = var.clickhouse.keys.database
    httpPort   = var.clickhouse.keys.http_port, tcpPort = var.clickhouse.keys.tcp_port
    replicated = var.clickhouse.keys.replicated, clusterName = var.clickhouse.keys.cluster_name
  }
  kafka_fields = var.kafka == null ? {} : {
    bootstrapServers = var.kafka.keys.bootstrap_servers, username = var.kafka.keys.username
    password         = var.kafka.keys.password, tls = var.kafka.keys.tls, sslCa = var.kafka.keys.ssl_ca
  }
  oidc_fields = var.oidc == null ? {} : {
    issuerUrl    = var.oidc.keys.issuer_url, clientId = var.oidc.keys.client_id
    clientSecret = var.oidc.keys.client_secret, authMethod = var.oidc.keys.auth_method
  }
  smtp_fields = var.smtp == null ? {} : {
    host     = var.smtp.keys.host, port = var.smtp.keys.port
    username = var.smtp.keys.username, password = var.smtp.keys.password
  }

  mysql_refs        = { for f, k in local.mysql_fields : f => { name = var.mysql.secret_name, key = k } if k != null && k != "" }
  redis_refs        = { for f, k in local.redis_fields : f => { name = var.redis.secret_name, key = k } if k != null && k != "" }
  object_store_refs = { for f, k in local.object_store_fields : f => { name = var.object_store.secret_name, key = k } if k != null && k != "" }
  clickhouse_refs   = { for f, k in local.clickhouse_fields : f => { name = var.clickhouse.secret_name, key = k } if k != null && k != "" }
  kafka_refs        = { for f, k in local.kafka_fields : f => { name = var.kafka.secret_name, key = k } if k != null && k != "" }
  oidc_refs         = { for f, k in local.oidc_fields : f => { name = var.oidc.secret_name, key = k } if k != null && k != "" }
  smtp_refs         = { for f, k in local.smtp_fields : f => { name = var.smtp.secret_name, key = k } if k != null && k != "" }

  # Parts whose shape depends on the inputs are built as JSON and decoded, so that the two
  # branches of a conditional need not have the same Terraform type.
  spec_mysql = jsondecode(var.mysql == null ? jsonencode({ default = { managedMysql = {} } }) : jsonencode({
    default = { externalMysql = local.mysql_refs }
  }))
  spec_redis = jsondecode(var.redis == null ? jsonencode({ default = { managedRedis = {} } }) : jsonencode({
    default = { externalRedis = merge(
      local.redis_refs,
      length(var.redis.params) > 0 ? { params = var.redis.params } : {},
      var.redis.sentinel_master != null ? { sentinelMaster = var.redis.sentinel_master } : {},
    ) }
  }))
  spec_object_store = jsondecode(var.object_store == null ? jsonencode({ default = { managedObjectStore = {} } }) : jsonencode({
    default = { externalObjectStore = local.object_store_refs }
  }))
  spec_clickhouse = jsondecode(var.clickhouse == null ? jsonencode({ default = { managedClickhouse = {} } }) : jsonencode({
    default = { externalClickhouse = local.clickhouse_refs }
  }))
  spec_kafka = jsondecode(var.kafka == null ? jsonencode({ managedKafka = {} }) : jsonencode({
    externalKafka = merge(local.kafka_refs, var.kafka.sasl_mechanism != null ? { saslMechanism = var.kafka.sasl_mechanism } : {})
  }))

  proxy_setting = {
    for env, lit in { httpProxy = try(var.proxy.http_proxy, null), httpsProxy = try(var.proxy.https_proxy, null) } :
    env => jsondecode(lit != null ? jsonencode({ value = lit }) : jsonencode({
      valueFrom                                        = { secretKeyRef = { name = var.proxy.secret_name, key = env == "httpProxy" ? "HTTP_PROXY" : "HTTPS_PROXY", optional = true } }
    }))
    if lit != null || try(var.proxy.secret_name, null) != null
  }
  spec_global = merge(
    var.image_registry == null ? {} : { imageRegistry = var.image_registry },
    length(var.image_pull_secrets) == 0 ? {} : { imagePullSecrets = [for s in var.image_pull_secrets : { name = s }] },
    length(var.ca_certs) == 0 ? {} : { customCACerts = var.ca_certs },
    var.ca_certs_configmap == null ? {} : { caCertsConfigMap = var.ca_certs_configmap },
    var.proxy == null ? {} : {
      proxy = jsondecode(jsonencode(merge(local.proxy_setting, length(var.proxy.no_proxy) > 0 ? { noProxy = var.proxy.no_proxy } : {})))
    },
  )

  spec_wandb = merge(
    {
      hostname = var.hostname
      version  = var.wandb_version
      serviceAccount = merge(
        { create = var.service_account.create, serviceAccountName = local.service_account_name },
        length(var.service_account.annotations) > 0 ? { annotations = var.service_account.annotations } : {},
      )
    },
    local.license_ref == null ? {} : { licenseSecret = local.license_ref },
    length(var.additional_hostnames) == 0 ? {} : { additionalHostnames = var.additional_hostnames },
    var.manifest_repository == null ? {} : { manifestRepository = var.manifest_repository },
    var.oidc == null ? {} : {
      oidc = jsondecode(jsonencode(merge(local.oidc_refs, var.oidc.session_length != null ? { sessionLength = var.oidc.session_length } : {})))
    },
    var.smtp == null ? {} : { notifications = { email = { smtp = local.smtp_refs } } },
  )

  # Gateway API references ({name, namespace?}) without null attributes.
  gateway_ref = try(var.gateway.gateway_ref, null) == null ? null : merge(
    { name = var.gateway.gateway_ref.name },
    var.gateway.gateway_ref.namespace == null ? {} : { namespace = var.gateway.gateway_ref.namespace },
  )
  gateway_listeners = [for l in try(var.gateway.listeners, []) : merge(
    { name = l.name, port = l.port, protocol = l.protocol },
    l.hostname == null ? {} : { hostname = l.hostname },
    l.tls == null ? {} : {
      tls = merge(
        l.tls.mode == null ? {} : { mode = l.tls.mode },
        l.tls.certificate_ref == null ? {} : {
          certificateRef = merge(
            { name = l.tls.certificate_ref.name },
            l.tls.certificate_ref.namespace == null ? {} : { namespace = l.tls.certificate_ref.namespace },
          )
        },
      )
    },
  )]

  # The edge settings shared by ingress and gateway mode: annotations on the Ingress or managed
  # Gateway, and its TLS Secret / cert-manager issuer.
  edge = var.ingress != null ? {
    annotations                 = var.ingress.annotations
    tls_secret_name             = var.ingress.tls_secret_name
    cert_manager_cluster_issuer = var.ingress.cert_manager_cluster_issuer
    cert_manager_issuer         = var.ingress.cert_manager_issuer
    } : var.gateway != null ? {
    annotations                 = var.gateway.annotations
    tls_secret_name             = var.gateway.tls_secret_name
    cert_manager_cluster_issuer = var.gateway.cert_manager_cluster_issuer
    cert_manager_issuer         = var.gateway.cert_manager_issuer
  } : null
  edge_common = local.edge == null ? "{}" : jsonencode(merge(
    length(local.edge.annotations) > 0 ? { annotations = local.edge.annotations } : {},
    local.edge.tls_secret_name == null && local.edge.cert_manager_cluster_issuer == null && local.edge.cert_manager_issuer == null ? {} : {
      tls = merge(
        local.edge.tls_secret_name == null ? {} : { secretName = local.edge.tls_secret_name },
        local.edge.cert_manager_cluster_issuer == null && local.edge.cert_manager_issuer == null ? {} : {
          certManager = local.edge.cert_manager_cluster_issuer != null ? { clusterIssuer = local.edge.cert_manager_cluster_issuer } : { issuer = local.edge.cert_manager_issuer }
        },
      )
    },
  ))

  spec_networking = jsondecode(var.ingress != null ? jsonencode(merge(
    { mode = "ingress" },
    jsondecode(local.edge_common),
    var.ingress.class_name == null && var.ingress.name == null ? {} : {
      ingress = merge(
        var.ingress.class_name == null ? {} : { ingressClassName = var.ingress.class_name },
        var.ingress.name == null ? {} : { name = var.ingress.name },
      )
    },
    )) : var.gateway != null ? jsonencode(merge(
    { mode = "gateway" },
    jsondecode(local.edge_common),
    {
      gatewayAPI = merge(
        {
          gateway = merge(
            { managed = var.gateway.managed },
            var.gateway.gateway_class_name == null ? {} : { gatewayClassName = var.gateway.gateway_class_name },
            local.gateway_ref == null ? {} : { gatewayRef = local.gateway_ref },
            length(local.gateway_listeners) == 0 ? {} : { listeners = local.gateway_listeners },
            length(var.gateway.infrastructure_annotations) == 0 ? {} : { infrastructureAnnotations = var.gateway.infrastructure_annotations },
          )
        },
        var.gateway.listener_name == null ? {} : { listenerName = var.gateway.listener_name },
      )
    },
  )) : jsonencode({ mode = "" }))

  spec = merge(
    {
      size            = var.size
      retentionPolicy = { onDelete = var.retention_policy }
      wandb           = local.spec_wandb
      mysql           = local.spec_mysql
      redis           = local.spec_redis
      objectStore     = local.spec_object_store
      clickhouse      = local.spec_clickhouse
      kafka           = local.spec_kafka
      networking      = local.spec_networking
    },
    length(local.spec_global) == 0 ? {} : { global = local.spec_global },
  )

  # Connection Secrets the operator publishes per backing service (<name>-<kind>-connection; the
  # apps read them, also for external services). Known in advance from the naming rule.
  connection_secret_names = {
    mysql       = "${var.instance_name}-mysql-connection"
    redis       = "${var.instance_name}-redis-connection"
    objectStore = "${var.instance_name}-objectstore-connection"
    clickhouse  = "${var.instance_name}-clickhouse-connection"
    kafka       = "${var.instance_name}-kafka-connection"
  }

  kubectl_env = var.kubeconfig_path == null ? {} : { KUBECONFIG = var.kubeconfig_path }
}

# ---- namespaces -------------------------------------------------------------------------------

resource "kubernetes_namespace" "operator" {
  count = var.install_operator && var.create_operator_namespace ? 1 : 0
  metadata {
    name = var.operator_namespace
  }
}

resource "kubernetes_namespace" "instance" {
  # Not created twice when the operator shares the namespace.
  count = var.create_instance_namespace && !(var.install_operator && var.create_operator_namespace && var.instance_namespace == var.operator_namespace) ? 1 : 0
  metadata {
    name = var.instance_namespace
  }
}

# ---- operator ---------------------------------------------------------------------------------

resource "helm_release" "operator" {
  count      = var.install_operator ? 1 : 0
  name       = var.operator_release_name
  namespace  = var.operator_namespace
  chart      = local.operator_chart
  repository = try(var.operator_chart.repository, null)
  version    = try(var.operator_chart.version, null)
  values     = [yamlencode(local.operator_values), yamlencode(var.operator_values)]
  wait       = true
  timeout    = var.helm_timeout_seconds
  atomic     = false
  # See var.helm_disable_openapi_validation: Helm 3.3's client-side check rejects the CRD's
  # nullable enums; the API server validates every object anyway.
  disable_openapi_validation = var.helm_disable_openapi_validation

  # In namespaced scope the watched namespaces must exist before the chart's Roles are created.
  depends_on = [kubernetes_namespace.operator, kubernetes_namespace.instance]
}

# ---- instance ---------------------------------------------------------------------------------

resource "kubernetes_secret" "license" {
  count = var.install_instance && local.has_license_literal && var.license_secret == null ? 1 : 0
  metadata {
    name      = local.license_secret_name
    namespace = var.instance_namespace
    labels = {
      "app.kubernetes.io/instance"   = var.instance_name
      "app.kubernetes.io/managed-by" = "terraform"
    }
  }
  data = {
    license = var.license
  }
  type       = "Opaque"
  depends_on = [kubernetes_namespace.instance]
}

# Ordering only: on destroy this runs after the instance release is gone and before the operator
# is removed, and waits until the operator has finalized the resource (retention policy applied).
resource "terraform_data" "finalized_before_operator_removal" {
  count = var.install_instance && var.install_operator && var.wait_for_ready ? 1 : 0
  input = {
    kubectl   = var.kubectl_path
    env       = local.kubectl_env
    namespace = var.instance_namespace
    name      = var.instance_name
    timeout   = var.wait_timeout_seconds
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh", "-c"]
    environment = self.input.env
    command     = "\"${self.input.kubectl}\" wait --for=delete \"weightsandbiases.apps.wandb.com/${self.input.name}\" -n \"${self.input.namespace}\" --timeout=${self.input.timeout}s"
  }

  depends_on = [helm_release.operator]
}

resource "helm_release" "instance" {
  count     = var.install_instance ? 1 : 0
  name      = local.instance_release
  namespace = var.instance_namespace
  chart     = "${path.module}/charts/wandb-instance"
  values = [
    yamlencode({ name = var.instance_name, spec = local.spec }),
    yamlencode({ spec = var.instance_spec_override }),
  ]
  wait                       = true
  timeout                    = var.helm_timeout_seconds
  disable_openapi_validation = var.helm_disable_openapi_validation

  lifecycle {
    precondition {
      condition     = !local.has_license_literal || var.license_secret == null
      error_message = "Set license or license_secret, not both."
    }
    precondition {
      condition     = var.ingress == null || var.gateway == null
      error_message = "Set ingress or gateway (the networking mode), not both."
    }
  }

  depends_on = [
    helm_release.operator,
    kubernetes_namespace.instance,
    kubernetes_secret.license,
    terraform_data.finalized_before_operator_removal,
  ]
}

# wait_for_ready: the Ready condition of a custom resource is not something Helm waits for, and
# kubernetes_manifest's wait is unavailable (provider v1.13 has no kubernetes_manifest and v2+
# needs the CRD at plan time). kubectl wait on the machine running Terraform; re-run whenever the
# release changes.
resource "terraform_data" "ready" {
  count            = var.install_instance && var.wait_for_ready ? 1 : 0
  triggers_replace = [sha256(jsonencode(helm_release.instance[0].values)), var.wandb_version]

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    environment = local.kubectl_env
    command     = "\"${var.kubectl_path}\" wait --for=condition=Ready \"weightsandbiases.apps.wandb.com/${var.instance_name}\" -n \"${var.instance_namespace}\" --timeout=${var.wait_timeout_seconds}s"
  }
}
