//! Prometheus metrics of the operator, served on `/metrics`. Labels carry only names and
//! outcomes (never a value from a Secret).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `success` or `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    durations: Family<OutcomeLabels, Histogram>,
    ready: Family<InstanceLabels, Gauge>,
    manifest_errors: Family<ReasonLabels, Counter>,
    leader: Gauge,
    /// Every request to the API server, by verb and resource.
    pub requests: std::sync::Arc<crate::api_requests::ApiRequests>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wandb_operator");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        let durations = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let ready = Family::<InstanceLabels, Gauge>::default();
        let manifest_errors = Family::<ReasonLabels, Counter>::default();
        let leader = Gauge::default();
        let requests = std::sync::Arc::new(crate::api_requests::ApiRequests::default());
        registry.register(
            "api_requests",
            "Requests to the Kubernetes API server, by verb and resource",
            requests.family.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles of WeightsAndBiases, by outcome",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a WeightsAndBiases reconcile, by outcome",
            durations.clone(),
        );
        registry.register(
            "api_writes",
            "Writes to the Kubernetes API server (create, update, patch, delete), by verb and resource",
            requests.writes.clone(),
        );
        registry.register(
            "instance_ready",
            "1 when the instance's Ready condition is True",
            ready.clone(),
        );
        registry.register(
            "manifest_errors",
            "Server manifests that could not be loaded or used, by reason",
            manifest_errors.clone(),
        );
        registry.register(
            "leader",
            "1 while this process holds the leader lease",
            leader.clone(),
        );
        Metrics {
            registry,
            reconciles,
            durations,
            ready,
            manifest_errors,
            leader,
            requests,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, ok: bool, elapsed: Duration) {
        let labels = OutcomeLabels {
            outcome: if ok { "success" } else { "error" },
        };
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn set_ready(&self, namespace: &str, name: &str, ready: bool) {
        let labels = InstanceLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        self.ready.get_or_create(&labels).set(i64::from(ready));
    }

    /// Drops the readiness series of a deleted instance.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.ready.remove(&InstanceLabels {
            namespace: namespace.into(),
            name: name.into(),
        });
    }

    pub fn manifest_error(&self, reason: &str) {
        self.manifest_errors
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_reconciles_readiness_and_writes() {
        let m = Metrics::default();
        m.reconciled(true, Duration::from_millis(20));
        m.reconciled(false, Duration::from_millis(5));
        let uri: http::Uri = "/apis/apps/v1/namespaces/ns/deployments/w-api?fieldManager=x"
            .parse()
            .unwrap();
        m.requests.record_for_test(&http::Method::PATCH, &uri);
        m.requests.record_for_test(&http::Method::GET, &uri);
        m.set_ready("ns", "wandb", true);
        m.manifest_error("ManifestUnavailable");
        let text = m.encode();
        assert!(
            text.contains("wandb_operator_reconciles_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(text.contains("wandb_operator_reconciles_total{outcome=\"error\"} 1"));
        assert!(
            text.contains(
                "wandb_operator_api_writes_total{verb=\"patch\",resource=\"deployments\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("wandb_operator_api_writes_total{verb=\"get\""));
        assert!(text.contains("wandb_operator_instance_ready{namespace=\"ns\",name=\"wandb\"} 1"));
        assert!(
            text.contains("wandb_operator_manifest_errors_total{reason=\"ManifestUnavailable\"} 1")
        );
        assert!(text.contains("wandb_operator_reconcile_duration_seconds_bucket"));
        m.forget("ns", "wandb");
        assert!(!m.encode().contains("instance_ready{namespace=\"ns\""));
    }
}
