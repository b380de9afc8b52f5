use k8s_openapi::api::core::v1::{LocalObjectReference, SecretKeySelector};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings applied to every workload the operator builds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GlobalSpec {
    /// Registry mirror. Every image becomes `<imageRegistry>/<original registry>/<repository>`,
    /// the layout `wsm registry mirror` produces; also the default manifest repository host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("!self.contains('://') && !self.endsWith('/') && self != ''").message("spec.global.imageRegistry is a registry host and optional path, without a scheme or trailing slash, e.g. registry.example.com/mirror"))]
    pub image_registry: Option<String>,

    /// dockerconfigjson Secrets set on every pod the operator builds and used to pull the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,

    /// PEM certificates trusted by every W&B workload (mounted and exported as SSL_CERT_DIR etc.).
    #[serde(
        default,
        rename = "customCACerts",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 32), inner(length(max = 65536)))]
    #[x_kube(validation = Rule::new("self.all(c, c.contains('-----BEGIN CERTIFICATE-----') && c.contains('-----END CERTIFICATE-----'))").message("spec.global.customCACerts entries must be PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"))]
    pub custom_ca_certs: Option<Vec<String>>,

    /// An existing ConfigMap whose `*.crt` keys are trusted by every W&B workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certs_config_map: Option<String>,

    /// HTTP(S) proxy for W&B workloads' egress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxySpec>,

    /// Who picks the uid/gid of managed services' pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_service_uids: Option<ManagedServiceUids>,
}

/// Who picks the uid/gid of managed services' pods. `fixed` (default): the image's own
/// non-root uid (MySQL and Redis 999, object store and Kafka 1000, ClickHouse 101) as
/// runAsUser, runAsGroup and fsGroup, which the official images need under runAsNonRoot.
/// `platform`: none of the three is set, for platforms that assign a uid per namespace
/// (OpenShift's `restricted-v2` refuses a fixed uid outside the namespace's range).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ManagedServiceUids {
    /// The image's own uid/gid, set explicitly.
    #[default]
    Fixed,
    /// Left to the platform (OpenShift `restricted-v2`).
    Platform,
}

/// Proxy settings; credentials must come from a Secret, never a literal URL.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// Proxy for plain HTTP egress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<ProxyValue>,
    /// Proxy for HTTPS egress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<ProxyValue>,
    /// Extra NO_PROXY entries, appended after the cluster-internal ones the operator computes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new("self.all(e, e != '' && !e.contains(','))").message("spec.global.proxy.noProxy entries must be non-empty and contain no comma"))]
    pub no_proxy: Option<Vec<String>>,
}

/// A literal proxy URL (without credentials) or a reference to a Secret key holding one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.value) || has(self.valueFrom)").message("a proxy setting needs value or valueFrom"),
    validation = Rule::new("!(has(self.value) && has(self.valueFrom))").message("a proxy setting takes value or valueFrom, not both"),
)]
pub struct ProxyValue {
    /// `http(s)://host[:port]`; userinfo is refused: put credentials in a Secret and use valueFrom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(
        validation = Rule::new("self.matches('^https?://[^\\\\s/]+/?$')").message("a proxy value must be an http:// or https:// URL with no path"),
        validation = Rule::new("!self.contains('@')").message("a proxy value must not contain credentials; use valueFrom.secretKeyRef"),
    )]
    pub value: Option<String>,
    /// A Secret key holding the proxy URL (may include credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ProxyValueFrom>,
}

/// Source of a proxy URL.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyValueFrom {
    /// The Secret key holding the proxy URL.
    pub secret_key_ref: SecretKeySelector,
}
