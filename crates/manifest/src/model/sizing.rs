//! Sizing entries (`sizing.<size>` of applications and backing services).
//!
//! Resolution (`default` entry, then the size entry on top) lives in [`crate::sizing`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::lenient;

/// One sizing entry. Which fields matter depends on the consumer: applications read
/// `resources` and `autoscaling`; infra reads `replicas`, `volumeSize`, ...; Kafka adds the
/// replication settings. All are optional so that an entry can override just one field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Sizing {
    pub replicas: Option<i32>,
    /// Present in manifests, unused by the official operator.
    pub shards: Option<i32>,
    /// Object-store data copies.
    pub copies: Option<i32>,
    /// PVC size (Kubernetes quantity, e.g. `100Gi`).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub volume_size: Option<String>,
    /// Metadata PVC size (object store).
    #[serde(deserialize_with = "lenient::opt_string")]
    pub metadata_volume_size: Option<String>,
    pub resources: Option<Resources>,
    pub autoscaling: Option<Autoscaling>,
    /// Kafka: default topic replication factor.
    pub replication_factor: Option<i32>,
    /// Kafka: `min.insync.replicas`.
    pub min_in_sync_replicas: Option<i32>,
    /// Kafka: offsets topic replication factor.
    #[serde(rename = "offsetsTopicRF")]
    pub offsets_topic_rf: Option<i32>,
    /// Kafka: transaction state log replication factor (the official operator swaps this and
    /// the next one in its JSON tags, §9.2; we read them by their manifest names).
    #[serde(rename = "transactionStateRF")]
    pub transaction_state_rf: Option<i32>,
    /// Kafka: transaction state log min ISR.
    #[serde(rename = "transactionStateISR")]
    pub transaction_state_isr: Option<i32>,
}

/// Requests and limits by resource name; quantities are kept as strings (`cpu: 2` -> `"2"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Resources {
    #[serde(deserialize_with = "lenient::string_map")]
    pub requests: BTreeMap<String, String>,
    #[serde(deserialize_with = "lenient::string_map")]
    pub limits: BTreeMap<String, String>,
}

/// Autoscaling settings of a sizing entry.
///
/// Only `horizontal` is part of the format. The 0.79.0 manifest also has a flat
/// `autoscaling: {enabled, minReplicas, maxReplicas}` under `nginx-proxy.sizing.default`, which the
/// official operator ignores; we ignore it too (unknown keys), so both operators agree.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Autoscaling {
    pub horizontal: Option<HorizontalAutoscaling>,
}

/// HorizontalPodAutoscaler settings. `metrics` and `behavior` are `autoscaling/v2` JSON passed
/// through to the HPA spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HorizontalAutoscaling {
    /// `Some(false)` disables the HPA even when replicas are set.
    pub enabled: Option<bool>,
    pub min_replicas: Option<i32>,
    pub max_replicas: Option<i32>,
    pub metrics: Option<serde_json::Value>,
    pub behavior: Option<serde_json::Value>,
}
