//! Deletion: the retention policy for retained data (generated credentials, PVCs), per object:
//! its managed service's `retentionPolicy`, else `spec.retentionPolicy`. `detach` removes this
//! resource's owner references so garbage collection keeps them; `purge` deletes them.
//! Everything else goes with the garbage collector through its owner reference.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use wandb_api::{RetentionPolicy, WeightsAndBiases};
use wandb_engine::backends::retention;
use wandb_engine::names;

use super::{Context, Error};
use crate::apply::Applier;

/// Kinds that can hold retained data.
const RETAINED_KINDS: &[(&str, &str)] = &[("v1", "Secret"), ("v1", "PersistentVolumeClaim")];

pub async fn run(cr: Arc<WeightsAndBiases>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cr.namespace().unwrap_or_default();
    let name = cr.name_any();
    let uid = cr.uid().unwrap_or_default();
    let applier = Applier::new(ctx.client.clone(), &ns);
    // Instances that stay: a Secret they share with this one (`useExactName`) is handed to one
    // of them rather than purged or orphaned.
    let instances: Api<WeightsAndBiases> = Api::namespaced(ctx.client.clone(), &ns);
    let heir = instances
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|o| o.uid() != Some(uid.clone()) && o.metadata.deletion_timestamp.is_none())
        .map(|o| o.name_any())
        .min();
    let selector = format!(
        "{}={},{}={}",
        names::INSTANCE_LABEL,
        names::label_value(&name),
        names::MANAGED_BY_LABEL,
        names::MANAGED_BY
    );
    for (api_version, kind) in RETAINED_KINDS {
        let api = applier.api(api_version, kind);
        let list = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await?;
        for item in list.items {
            let retained = item
                .annotations()
                .get(names::RETAIN_ANNOTATION)
                .is_some_and(|v| v == "true");
            if !retained {
                continue;
            }
            let obj = item.name_any();
            let shared = item
                .annotations()
                .get(names::SHARED_ANNOTATION)
                .is_some_and(|v| v == "true");
            if let (true, Some(heir)) = (shared, &heir) {
                let remaining: Vec<_> = item
                    .owner_references()
                    .iter()
                    .filter(|r| r.uid != uid)
                    .collect();
                api.patch(
                    &obj,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {
                        "labels": {names::INSTANCE_LABEL: names::label_value(heir)},
                        "ownerReferences": remaining,
                    }})),
                )
                .await?;
                applier.count_write();
                tracing::info!(%ns, %name, %kind, %obj, %heir, "shared secret handed over");
                continue;
            }
            match retention::policy_for(&cr, kind, &obj) {
                RetentionPolicy::Purge => {
                    applier.delete(api_version, kind, &obj).await?;
                    tracing::info!(%ns, %name, %kind, %obj, "purged retained object");
                }
                RetentionPolicy::Detach => {
                    let refs = item.owner_references();
                    if !refs.iter().any(|r| r.uid == uid) {
                        continue;
                    }
                    let remaining: Vec<_> = refs.iter().filter(|r| r.uid != uid).collect();
                    api.patch(
                        &obj,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"ownerReferences": remaining}})),
                    )
                    .await?;
                    applier.count_write();
                    tracing::info!(%ns, %name, %kind, %obj, "detached retained object");
                }
            }
        }
    }
    Ok(Action::await_change())
}

/// The owner reference an object is written with: always for ordinary objects; for retained
/// data only when its policy is `purge`, so that data under `detach` survives even a deletion
/// that bypasses the finalizer.
pub fn owner_for(
    retained: bool,
    on_delete: RetentionPolicy,
    owner: &OwnerReference,
) -> Option<&OwnerReference> {
    (!retained || on_delete == RetentionPolicy::Purge).then_some(owner)
}
