//! The `WeightsAndBiases` custom resource (`apps.wandb.com/v2`).
//!
//! Field names and meanings follow the official W&B operator's v2 API so existing CRs apply
//! unchanged. Validation lives in the schema (OpenAPI + CEL rules with messages), so a cluster
//! without admission webhooks still rejects bad input. This crate has no client code.

mod conditions;
mod crd;
mod global;
mod infra;
mod networking;
mod spec;
mod status;
pub mod v1;
mod wandb;

pub use conditions::{ConditionType, Reason, set_condition};
pub use crd::{
    CONVERSION_PATH, UPSTREAM_TYPED_FIELDS, WEBHOOK_SERVICE_NAME, WEBHOOK_SERVICE_NAMESPACE, crd,
    crd_yaml,
};
pub use global::{GlobalSpec, ManagedServiceUids, ProxySpec, ProxyValue, ProxyValueFrom};
pub use infra::*;
pub use networking::*;
pub use spec::{RetentionPolicy, RetentionSpec, Size, WeightsAndBiases, WeightsAndBiasesSpec};
pub use status::*;
pub use wandb::*;

/// Re-exported so callers name one selector type.
pub use k8s_openapi::api::core::v1::SecretKeySelector;
