//! A lenient probe type.
//!
//! Manifests write probes such as `httpGet: {path: /healthz}` without a port; k8s-openapi's
//! `Probe` requires the port, so it cannot parse them. Every field here is optional and the engine
//! fills the gaps (port: the container's first named port; timings: the CR's probe defaults).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

use crate::lenient;

/// A liveness, readiness or startup probe as written in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Probe {
    pub http_get: Option<HttpGetAction>,
    pub tcp_socket: Option<TcpSocketAction>,
    pub exec: Option<ExecAction>,
    pub grpc: Option<GrpcAction>,
    pub initial_delay_seconds: Option<i32>,
    pub period_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub success_threshold: Option<i32>,
    pub failure_threshold: Option<i32>,
    pub termination_grace_period_seconds: Option<i64>,
}

/// HTTP GET check; `port` may be missing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpGetAction {
    #[serde(deserialize_with = "lenient::opt_string")]
    pub path: Option<String>,
    pub port: Option<IntOrString>,
    /// `HTTP` or `HTTPS`.
    #[serde(deserialize_with = "lenient::opt_string")]
    pub scheme: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub host: Option<String>,
    #[serde(deserialize_with = "lenient::nullable")]
    pub http_headers: Vec<HttpHeader>,
}

/// One header of an HTTP probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpHeader {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub value: String,
}

/// TCP connect check; `port` may be missing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TcpSocketAction {
    pub port: Option<IntOrString>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub host: Option<String>,
}

/// Command check.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ExecAction {
    #[serde(deserialize_with = "lenient::string_vec")]
    pub command: Vec<String>,
}

/// gRPC health check; `port` may be missing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GrpcAction {
    pub port: Option<i32>,
    #[serde(deserialize_with = "lenient::opt_string")]
    pub service: Option<String>,
}
