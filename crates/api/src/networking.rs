use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// How W&B is exposed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.mode) || self.mode != 'gateway' || has(self.gatewayAPI)").message("spec.networking.gatewayAPI is required when mode is gateway"),
    validation = Rule::new("!has(self.gatewayAPI) || (has(self.mode) && self.mode == 'gateway')").message("spec.networking.gatewayAPI is only used when mode is gateway"),
)]
pub struct NetworkingSpec {
    /// `""` (no operator-managed edge), `ingress` (one Ingress with every app path) or `gateway`
    /// (one HTTPRoute per app, and the Gateway when managed; needs the Gateway API CRDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<NetworkingMode>,
    /// Ingress settings for mode `ingress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// Gateway API settings for mode `gateway`.
    #[serde(
        default,
        rename = "gatewayAPI",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_api: Option<GatewayApiSpec>,
    /// TLS for the public hostname(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Annotations added to the Ingress or managed Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Networking modes.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum NetworkingMode {
    #[default]
    #[serde(rename = "")]
    None,
    #[serde(rename = "ingress")]
    Ingress,
    #[serde(rename = "gateway")]
    Gateway,
}

/// Ingress settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// IngressClass; `nginx` also gets an unlimited request body size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// Ingress name; defaults to the resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("spec.networking.ingress.name must be a DNS subdomain name"))]
    pub name: Option<String>,
}

/// Gateway API settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiSpec {
    /// The Gateway the routes attach to (managed by the operator, or referenced).
    pub gateway: GatewaySpec,
    /// Listener (`sectionName`) of the Gateway that every HTTPRoute attaches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_name: Option<String>,
}

/// A managed or referenced Gateway.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.managed) && self.managed) || has(self.gatewayClassName)").message("spec.networking.gatewayAPI.gateway.gatewayClassName is required when managed is true"),
    validation = Rule::new("!(has(self.managed) && self.managed) || !has(self.gatewayRef)").message("spec.networking.gatewayAPI.gateway.gatewayRef must not be set when managed is true"),
    validation = Rule::new("(has(self.managed) && self.managed) || has(self.gatewayRef)").message("spec.networking.gatewayAPI.gateway.gatewayRef is required when managed is false"),
)]
pub struct GatewaySpec {
    /// When true the operator creates Gateway `<name>-gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    /// An existing Gateway (required when not managed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ref: Option<GatewayRef>,
    /// GatewayClass of the managed Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_class_name: Option<String>,
    /// Listeners of the managed Gateway; empty derives one from spec.wandb.hostname (HTTP on 80,
    /// or HTTPS on 443 with the networking.tls Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub listeners: Option<Vec<GatewayListener>>,
    /// Annotations for the managed Gateway's infrastructure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_annotations: Option<BTreeMap<String, String>>,
}

/// Reference to an existing Gateway.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Gateway name.
    pub name: String,
    /// Gateway namespace; defaults to this resource's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A managed Gateway listener.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListener {
    /// Listener name.
    pub name: String,
    /// Port.
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("listener port must be between 1 and 65535"))]
    pub port: i32,
    /// Protocol (HTTP, HTTPS).
    pub protocol: String,
    /// Hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayListenerTls>,
}

/// TLS of a managed Gateway listener.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListenerTls {
    /// TLS mode (Terminate, Passthrough).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Certificate Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_ref: Option<GatewayRef>,
}

/// TLS for the public hostname(s).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Secret holding the certificate for every host of the Ingress, or of the managed Gateway's
    /// default HTTPS listener (default `<name>-tls`, which cert-manager fills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// cert-manager issuer annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_manager: Option<CertManagerSpec>,
}

/// cert-manager issuers; set at most one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.clusterIssuer) && has(self.issuer))").message("spec.networking.tls.certManager takes clusterIssuer or issuer, not both"))]
pub struct CertManagerSpec {
    /// `cert-manager.io/cluster-issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_issuer: Option<String>,
    /// `cert-manager.io/issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}
