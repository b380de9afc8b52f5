//! `apps.wandb.com/v1` `WeightsAndBiases`: the resource of the official v1 operator, whose spec is
//! the values of the `operator-wandb` Helm chart (`spec.values`) and an optional chart reference
//! (`spec.chart`). Served for compatibility only: v2 is the storage version and every v1 object
//! is converted by the operator's conversion webhook (see the `convert` module of the operator
//! crate and docs/migrate-from-official.md). Both fields are kept as free-form JSON, exactly as
//! the official v1 CRD does, so any object the official CRD stored stays readable.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The v1 spec: chart values, untyped.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "apps.wandb.com",
    version = "v1",
    kind = "WeightsAndBiases",
    plural = "weightsandbiases",
    singular = "weightsandbiases",
    shortname = "wandb",
    category = "wandb",
    namespaced,
    status = "WeightsAndBiasesV1Status",
    doc = "A W&B Server instance in the official v1 operator's form (operator-wandb chart values); converted to v2 by wandb-operator."
)]
#[serde(rename_all = "camelCase")]
pub struct WeightsAndBiasesV1Spec {
    /// The operator-wandb chart to install (ignored: wandb-operator renders server manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub chart: Option<serde_json::Value>,
    /// Values of the operator-wandb chart; mapped to the v2 spec on conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub values: Option<serde_json::Value>,
}

/// The v1 status: the v2 status as is (so that the API server's v2 -> v1 -> v2 round trips keep
/// it) plus the v1 operator's `phase`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct WeightsAndBiasesV1Status {
    /// `Completed` when Ready, else `Loading`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The running W&B version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The rest of the v2 status.
    #[serde(flatten)]
    #[schemars(skip)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

fn free_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
