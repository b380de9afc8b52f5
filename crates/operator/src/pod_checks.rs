//! Can the instance's pods start? Two facts for the status, observed after the apply:
//!
//! - every object a pod template needs ([`wandb_engine::decide::pod_needs`]) exists, with its
//!   keys: the operator's own from this pass's writes and the watch caches, the user's through
//!   the pass's [`SecretReader`] (or one read for a ConfigMap, ServiceAccount or claim the
//!   operator does not own, which is rare);
//! - no workload controller reports it cannot create pods: a Deployment's `ReplicaFailure`
//!   condition, and for a StatefulSet or Job without its pods, its `FailedCreate` events (read
//!   only then, so a settled instance reads none).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolumeClaim, ServiceAccount};
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::Built;
use wandb_engine::decide::pod_needs::{self, Existing, NeedKind};

use crate::apply::Applier;
use crate::user_secrets::SecretReader;

/// What the pods need but does not exist, one message each (see [`pod_needs::unmet`]).
pub async fn missing_inputs(
    applier: &Applier,
    reader: &mut SecretReader,
    cr: &WeightsAndBiases,
    built: &Built,
) -> Result<Vec<String>, kube::Error> {
    let needs: Vec<_> = pod_needs::of_objects(&built.objects)
        .into_iter()
        // Created by a migration when it runs; a migration that fails is reported as such.
        .filter(|n| !(n.kind == NeedKind::Secret && built.created_by_migrations.contains(&n.name)))
        .collect();
    let desired: BTreeMap<(&str, &str), &Value> = built
        .objects
        .iter()
        .map(|o| ((o.kind.as_str(), o.name.as_str()), &o.object))
        .collect();
    let declared: BTreeSet<&str> = built.secrets.iter().map(|s| s.name.as_str()).collect();
    let mut existing = Existing::new();
    let names: BTreeSet<(NeedKind, &str)> =
        needs.iter().map(|n| (n.kind, n.name.as_str())).collect();
    for (kind, name) in names {
        let keys = match kind {
            NeedKind::Secret if declared.contains(name) => applier
                .live("v1", "Secret", name)
                .await?
                .map(|s| keys_of(&s)),
            NeedKind::Secret => reader.read(name).await?.map(|v| v.into_keys().collect()),
            NeedKind::ConfigMap => match desired.get(&("ConfigMap", name)) {
                Some(o) => Some(keys_of(o)),
                None => Api::<ConfigMap>::namespaced(applier.client().clone(), applier.namespace())
                    .get_opt(name)
                    .await?
                    .map(|c| {
                        let mut k: BTreeSet<String> =
                            c.data.unwrap_or_default().into_keys().collect();
                        k.extend(c.binary_data.unwrap_or_default().into_keys());
                        k
                    }),
            },
            NeedKind::ServiceAccount => match desired.contains_key(&("ServiceAccount", name)) {
                true => Some(BTreeSet::new()),
                false => {
                    Api::<ServiceAccount>::namespaced(applier.client().clone(), applier.namespace())
                        .get_opt(name)
                        .await?
                        .map(|_| BTreeSet::new())
                }
            },
            NeedKind::PersistentVolumeClaim => Api::<PersistentVolumeClaim>::namespaced(
                applier.client().clone(),
                applier.namespace(),
            )
            .get_opt(name)
            .await?
            .map(|_| BTreeSet::new()),
        };
        if let Some(keys) = keys {
            existing
                .entry(kind)
                .or_default()
                .insert(name.to_string(), keys);
        }
    }
    let fields = wandb_engine::references::user_secret_fields(cr);
    let sa_field = cr
        .spec
        .wandb
        .service_account
        .as_ref()
        .and_then(|s| s.service_account_name.clone());
    let origin = |kind: NeedKind, name: &str| match kind {
        NeedKind::Secret => fields.get(name).cloned(),
        NeedKind::ServiceAccount if sa_field.as_deref() == Some(name) => {
            Some("spec.wandb.serviceAccount.serviceAccountName".to_string())
        }
        _ => None,
    };
    Ok(pod_needs::unmet(&needs, &existing, &origin))
}

/// The keys of a Secret or ConfigMap as JSON (`data`, `binaryData`, `stringData`).
fn keys_of(o: &Value) -> BTreeSet<String> {
    ["data", "binaryData", "stringData"]
        .iter()
        .filter_map(|k| o[*k].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// Workloads of the plan whose controller cannot create their pods, with its words.
pub async fn creation_failures(
    applier: &Applier,
    built: &Built,
) -> Result<Vec<String>, kube::Error> {
    let mut out = Vec::new();
    for o in &built.objects {
        let failure = match o.kind.as_str() {
            "Deployment" => applier
                .live_as::<Deployment>("apps/v1", "Deployment", &o.name)
                .await?
                .and_then(|d| d.status)
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
                .map(|c| c.message.unwrap_or_else(|| c.reason.unwrap_or_default())),
            "StatefulSet" => {
                let Some(sts) = applier
                    .live_as::<StatefulSet>("apps/v1", "StatefulSet", &o.name)
                    .await?
                else {
                    continue;
                };
                let want = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let have = sts.status.as_ref().map_or(0, |s| s.replicas);
                if have >= want {
                    continue;
                }
                failed_create_event(applier, "StatefulSet", &o.name).await?
            }
            "Job" => {
                let Some(job) = applier.live_as::<Job>("batch/v1", "Job", &o.name).await? else {
                    continue;
                };
                let s = job.status.unwrap_or_default();
                let finished = s.conditions.iter().flatten().any(|c| {
                    c.status == "True" && matches!(c.type_.as_str(), "Complete" | "Failed")
                });
                let has_pods =
                    s.active.unwrap_or(0) + s.succeeded.unwrap_or(0) + s.failed.unwrap_or(0) > 0;
                if finished || has_pods {
                    continue;
                }
                failed_create_event(applier, "Job", &o.name).await?
            }
            _ => continue,
        };
        if let Some(message) = failure {
            out.push(format!(
                "{} {} cannot create pods: {message}",
                o.kind, o.name
            ));
        }
    }
    Ok(out)
}

/// The message of the newest `FailedCreate` event of `kind/name`, if any.
async fn failed_create_event(
    applier: &Applier,
    kind: &str,
    name: &str,
) -> Result<Option<String>, kube::Error> {
    let events: Api<Event> = Api::namespaced(applier.client().clone(), applier.namespace());
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind={kind},involvedObject.name={name},reason=FailedCreate"
    ));
    let list = events.list(&lp).await?;
    Ok(list
        .items
        .into_iter()
        .max_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
        })
        .and_then(|e| e.message))
}
