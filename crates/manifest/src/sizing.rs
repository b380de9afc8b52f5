//! Resolving sizing tables for a T-shirt size.
//!
//! A table maps size keys (`default`, `dev`, `micro`, `small`, `medium`, `large`, `xlarge`,
//! `2xlarge`) to [`Sizing`] entries. The resolved sizing is the `default` entry with the size's
//! entry laid over it field by field; `resources` merge per resource name, `autoscaling.horizontal`
//! per field. When the CR does not set `requireLimits`, all limits are removed (requests only).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::model::{
    Application, Autoscaling, Container, HorizontalAutoscaling, ImageRef, InfraConfig, Resources,
    ServerManifest, Sizing,
};

/// The entry every table may have, used under every size.
pub const DEFAULT_KEY: &str = "default";

/// Maps a CR size to the manifest's sizing key. The CR enum spells the top size `xxlarge`, the
/// manifests `2xlarge`; the official operator never matched them and silently used `default`
/// (§9.1). Other sizes are the same in both.
pub fn size_key(size: &str) -> &str {
    match size {
        "xxlarge" => "2xlarge",
        other => other,
    }
}

/// Resolves `table` for `size` (a CR size or a manifest key; [`size_key`] is applied).
pub fn resolve(table: &BTreeMap<String, Sizing>, size: &str, require_limits: bool) -> Sizing {
    let mut out = table.get(DEFAULT_KEY).cloned().unwrap_or_default();
    if let Some(entry) = table.get(size_key(size)) {
        out.overlay(entry);
    }
    if !require_limits {
        out.strip_limits();
    }
    out
}

impl Sizing {
    /// Lays `other` over `self`: every field `other` sets wins.
    pub fn overlay(&mut self, other: &Sizing) {
        fn set<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
            if src.is_some() {
                dst.clone_from(src);
            }
        }
        set(&mut self.replicas, &other.replicas);
        set(&mut self.shards, &other.shards);
        set(&mut self.copies, &other.copies);
        set(&mut self.volume_size, &other.volume_size);
        set(&mut self.metadata_volume_size, &other.metadata_volume_size);
        set(&mut self.replication_factor, &other.replication_factor);
        set(&mut self.min_in_sync_replicas, &other.min_in_sync_replicas);
        set(&mut self.offsets_topic_rf, &other.offsets_topic_rf);
        set(&mut self.transaction_state_rf, &other.transaction_state_rf);
        set(
            &mut self.transaction_state_isr,
            &other.transaction_state_isr,
        );
        if let Some(src) = &other.resources {
            self.resources
                .get_or_insert_with(Default::default)
                .overlay(src);
        }
        if let Some(Autoscaling {
            horizontal: Some(src),
        }) = &other.autoscaling
        {
            let dst = self.autoscaling.get_or_insert_with(Default::default);
            dst.horizontal
                .get_or_insert_with(Default::default)
                .overlay(src);
        }
    }

    /// Removes all limits (for `requireLimits: false`).
    pub fn strip_limits(&mut self) {
        if let Some(r) = &mut self.resources {
            r.limits.clear();
        }
    }

    /// The HPA to create, if any; see [`HorizontalAutoscaling::normalized`].
    pub fn hpa(&self) -> Option<HorizontalAutoscaling> {
        self.autoscaling.as_ref()?.horizontal.as_ref()?.normalized()
    }
}

impl Resources {
    /// Lays `other` over `self`, per resource name.
    pub fn overlay(&mut self, other: &Resources) {
        self.requests
            .extend(other.requests.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.limits
            .extend(other.limits.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// True when neither requests nor limits are set.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }

    /// As Kubernetes `ResourceRequirements` (empty maps become `None`).
    pub fn to_k8s(&self) -> ResourceRequirements {
        fn q(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
            (!m.is_empty()).then(|| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Quantity(v.clone())))
                    .collect()
            })
        }
        ResourceRequirements {
            requests: q(&self.requests),
            limits: q(&self.limits),
            ..Default::default()
        }
    }
}

impl HorizontalAutoscaling {
    /// Lays `other` over `self`, per field (use it for the CR's per-app override too).
    pub fn overlay(&mut self, other: &HorizontalAutoscaling) {
        if other.enabled.is_some() {
            self.enabled = other.enabled;
        }
        if other.min_replicas.is_some() {
            self.min_replicas = other.min_replicas;
        }
        if other.max_replicas.is_some() {
            self.max_replicas = other.max_replicas;
        }
        if other.metrics.is_some() {
            self.metrics.clone_from(&other.metrics);
        }
        if other.behavior.is_some() {
            self.behavior.clone_from(&other.behavior);
        }
    }

    /// `None` when disabled (`enabled: false`) or `maxReplicas` is missing or below 1; otherwise
    /// `minReplicas` defaults to 1 (and is at least 1) and `maxReplicas` is raised to
    /// `minReplicas` if lower, so the result is always a valid HPA range.
    pub fn normalized(&self) -> Option<HorizontalAutoscaling> {
        if self.enabled == Some(false) {
            return None;
        }
        let max = self.max_replicas.filter(|m| *m >= 1)?;
        let min = self.min_replicas.unwrap_or(1).max(1);
        Some(HorizontalAutoscaling {
            enabled: Some(true),
            min_replicas: Some(min),
            max_replicas: Some(max.max(min)),
            metrics: self.metrics.clone(),
            behavior: self.behavior.clone(),
        })
    }
}

impl Application {
    /// The app's sizing for `size`. Note that 0.84.0 keeps app sizing in `sizing.yaml` under
    /// `applications.<app>.sizing`; after the merge it is here like in single-file manifests.
    pub fn sizing_for(&self, size: &str, require_limits: bool) -> Sizing {
        resolve(&self.sizing, size, require_limits)
    }

    /// Resources of one container: the app's sizing, then the container's own `resources` per
    /// resource name, then limits stripped unless `require_limits`.
    pub fn container_resources(
        &self,
        container: &Container,
        size: &str,
        require_limits: bool,
    ) -> Resources {
        let mut out = self.sizing_for(size, true).resources.unwrap_or_default();
        if let Some(own) = &container.resources {
            out.overlay(own);
        }
        if !require_limits {
            out.limits.clear();
        }
        out
    }
}

/// The backing services that have per-instance configuration in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InfraKind {
    Bucket,
    Clickhouse,
    ClickhouseKeeper,
    Mysql,
    Redis,
}

impl InfraKind {
    /// All kinds, in manifest key order.
    pub const ALL: [InfraKind; 5] = [
        InfraKind::Bucket,
        InfraKind::Clickhouse,
        InfraKind::ClickhouseKeeper,
        InfraKind::Mysql,
        InfraKind::Redis,
    ];

    /// The manifest's top-level key.
    pub fn key(self) -> &'static str {
        match self {
            InfraKind::Bucket => "bucket",
            InfraKind::Clickhouse => "clickhouse",
            InfraKind::ClickhouseKeeper => "clickhouseKeeper",
            InfraKind::Mysql => "mysql",
            InfraKind::Redis => "redis",
        }
    }
}

impl ServerManifest {
    /// The instances of one kind of backing service.
    pub fn infra(&self, kind: InfraKind) -> &BTreeMap<String, InfraConfig> {
        match kind {
            InfraKind::Bucket => &self.bucket,
            InfraKind::Clickhouse => &self.clickhouse,
            InfraKind::ClickhouseKeeper => &self.clickhouse_keeper,
            InfraKind::Mysql => &self.mysql,
            InfraKind::Redis => &self.redis,
        }
    }

    /// Sizing of a backing-service instance. The instance's own table is used when it has
    /// entries; otherwise the `default` instance's (manifests declare logical instances such as
    /// `mysql.metadata: {}` that should size like `default`).
    pub fn infra_sizing(
        &self,
        kind: InfraKind,
        instance: &str,
        size: &str,
        require_limits: bool,
    ) -> Sizing {
        let instances = self.infra(kind);
        let table = [instance, DEFAULT_KEY]
            .iter()
            .filter_map(|i| instances.get(*i))
            .map(|c| &c.sizing)
            .find(|t| !t.is_empty());
        table.map_or_else(Sizing::default, |t| resolve(t, size, require_limits))
    }

    /// Image `role` (e.g. `mysql`, `standalone`, `seaweedfs`) of a backing-service instance,
    /// falling back to the `default` instance's images.
    pub fn infra_image(&self, kind: InfraKind, instance: &str, role: &str) -> Option<&ImageRef> {
        let instances = self.infra(kind);
        [instance, DEFAULT_KEY]
            .iter()
            .filter_map(|i| instances.get(*i))
            .find_map(|c| c.images.get(role))
    }

    /// Kafka sizing for `size`.
    pub fn kafka_sizing(&self, size: &str, require_limits: bool) -> Sizing {
        resolve(&self.kafka.sizing, size, require_limits)
    }
}
