//! In-place takeover of an official operator's installation: observes the predecessor's
//! objects (metadata only) and carries out what [`wandb_engine::takeover`] decides: same-named
//! Deployments orphaned for ours to adopt, the predecessor's Ingress left serving until ours
//! are Available, replaced Deployments deleted once ours are, and the predecessor's finalizer
//! dropped from the resource. Never touches StatefulSets, PVCs, Secrets or databases.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use wandb_api::{ConditionType, Reason, WeightsAndBiases, WeightsAndBiasesStatus};
use wandb_engine::decide::{DeploymentFact, Failure, FailureKind};
use wandb_engine::takeover::{self, Collision, OurApp, Predecessor, WorkloadMeta};
use wandb_engine::{DesiredObject, Phase, names};
use wandb_manifest::ServerManifest;

use crate::apply::Applier;

/// What the namespace holds of a predecessor's installation.
#[derive(Debug, Default)]
pub struct Observed {
    pub release_secrets: Vec<String>,
    pub workloads: Vec<WorkloadMeta>,
    pub predecessors: Vec<Predecessor>,
}

impl Observed {
    pub fn present(&self) -> bool {
        !self.predecessors.is_empty()
    }

    /// Nothing but our own workloads: no predecessor, and no same-named workload of anyone's
    /// to collide with. (A predecessor's installation exists before the resource that takes
    /// it over, so the namespace need not be looked at again.)
    pub fn holds_nothing_foreign(&self) -> bool {
        self.release_secrets.is_empty() && self.workloads.iter().all(WorkloadMeta::is_ours)
    }
}

fn meta_of(kind: &str, m: ObjectMeta) -> WorkloadMeta {
    WorkloadMeta {
        kind: kind.into(),
        controller: m
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .find(|o| o.controller == Some(true))
            .map(|o| (o.api_version, o.kind)),
        name: m.name.unwrap_or_default(),
        labels: m.labels.unwrap_or_default(),
        selector: None,
    }
}

/// Lists (metadata only) the workloads labelled as this release's (`instance=<cr>`, the chart)
/// or the namespace's (`instance=<ns>`, the official v2 operator's Applications), none of which
/// the operator watches (its watches select its own label); the Helm release Secrets of release
/// `<cr>` come from the Secret watch (listed only while it has not listed the namespace yet).
pub async fn observe(
    client: &kube::Client,
    versions: &crate::secret_versions::SecretVersions,
    cr: &WeightsAndBiases,
) -> Result<Observed, kube::Error> {
    let ns = cr.namespace().unwrap_or_default();
    let name = cr.name_any();
    let instances = format!(
        "{} in ({},{})",
        names::INSTANCE_LABEL,
        names::label_value(&name),
        names::label_value(&ns)
    );
    let by_instance = ListParams::default().labels(&instances);
    let mut workloads: Vec<WorkloadMeta> = Vec::new();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for d in deployments.list_metadata(&by_instance).await?.items {
        workloads.push(meta_of("Deployment", d.metadata));
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    for s in statefulsets.list_metadata(&by_instance).await?.items {
        workloads.push(meta_of("StatefulSet", s.metadata));
    }
    let release_prefix = format!("{}{name}.v", takeover::HELM_RELEASE_SECRET_PREFIX);
    let release_secrets: Vec<String> = match versions.names_starting_with(&ns, &release_prefix) {
        Some(names) => names,
        None => {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
            secrets
                .list_metadata(&ListParams::default().labels(&format!("owner=helm,name={name}")))
                .await?
                .items
                .into_iter()
                .map(|s| s.name_any())
                .collect()
        }
    };
    let predecessors = takeover::detect(&name, &ns, &release_secrets, &workloads);
    Ok(Observed {
        release_secrets,
        workloads,
        predecessors,
    })
}

fn match_labels(v: &serde_json::Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["spec"]["selector"]["matchLabels"].clone()).unwrap_or_default()
}

/// Before our workloads are applied: a predecessor's Deployment with the name of one of ours
/// and the same selector is deleted without its pods (orphaned), so that ours adopts its
/// ReplicaSet and replaces the pods by a rolling update; any other same-named workload stops
/// the pass with `TakeoverCollision` (the selector is immutable; a user's object is never
/// deleted). Returns the orphaned Deployments.
pub async fn resolve_collisions(
    applier: &Applier,
    cr: &WeightsAndBiases,
    observed: &Observed,
    objects: &[DesiredObject],
) -> Result<Vec<String>, Failure> {
    let ns = cr.namespace().unwrap_or_default();
    let name = cr.name_any();
    let mut orphaned = Vec::new();
    for o in objects
        .iter()
        .filter(|o| o.kind == "Deployment" || o.kind == "StatefulSet")
    {
        let Some(live) = observed
            .workloads
            .iter()
            .find(|w| w.kind == o.kind && w.name == o.name && !w.is_ours())
        else {
            continue;
        };
        let api = applier.api(&o.api_version, &o.kind);
        let Some(full) = api
            .get_opt(&o.name)
            .await
            .map_err(|e| Failure::from_kube(&format!("reading {} {}", o.kind, o.name), &e))?
        else {
            continue;
        };
        let full = serde_json::to_value(&full).expect("objects serialize");
        let live = WorkloadMeta {
            selector: Some(match_labels(&full)),
            ..live.clone()
        };
        match takeover::collision(&name, &ns, &live, &match_labels(&o.object)) {
            None => {}
            Some(Collision::Adopt { kind, name: obj }) => {
                api.delete(&obj, &DeleteParams::orphan())
                    .await
                    .map_err(|e| Failure::from_kube(&format!("orphaning {kind} {obj}"), &e))?;
                applier.count_write();
                applier.record(&kind, &obj, None);
                tracing::info!(%ns, %name, %kind, %obj, "predecessor's workload orphaned for ours to adopt its pods");
                orphaned.push(obj);
            }
            Some(Collision::Refuse {
                kind,
                name: obj,
                why,
            }) => {
                return Err(Failure {
                    kind: FailureKind::User,
                    reason: Reason::TAKEOVER_COLLISION,
                    message: format!("{kind} {obj} has the name of one of ours: {why}"),
                });
            }
        }
    }
    Ok(orphaned)
}

/// The objects to apply in this pass: while a predecessor's workloads still serve and ours are
/// not all ready, a networking object (Ingress, HTTPRoute) of ours whose name is taken by one
/// that is not ours is held back, so that the predecessor's keeps routing to its Services
/// until ours can answer.
pub async fn hold_networking(
    applier: &Applier,
    cr: &WeightsAndBiases,
    observed: &Observed,
    objects: &[DesiredObject],
    ours_ready: bool,
) -> Result<(Vec<DesiredObject>, Vec<String>), Failure> {
    let uid = cr.uid().unwrap_or_default();
    let mut out = Vec::with_capacity(objects.len());
    let mut held = Vec::new();
    for o in objects {
        if observed.present() && !ours_ready && o.phase == Phase::Networking {
            let live = applier
                .api(&o.api_version, &o.kind)
                .get_metadata_opt(&o.name)
                .await;
            // Ours carry our controller reference (the official v2 operator's carry our
            // labels, and a plain reference to the same resource).
            let theirs = match live {
                Ok(Some(m)) => !m
                    .owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && o.uid == uid),
                Ok(None) => false,
                Err(e) if crate::apply::is_not_served(&e) => false,
                Err(e) => {
                    return Err(Failure::from_kube(
                        &format!("reading {} {}", o.kind, o.name),
                        &e,
                    ));
                }
            };
            if theirs {
                held.push(format!("{}/{}", o.kind, o.name));
                continue;
            }
        }
        out.push(o.clone());
    }
    Ok((out, held))
}

/// Our applications with their Deployments' facts, for [`takeover::plan`].
pub fn our_apps(manifest: &ServerManifest, deployments: &[DeploymentFact]) -> Vec<OurApp> {
    deployments
        .iter()
        .map(|d| OurApp {
            app: d.component.clone(),
            legacy_key: manifest
                .applications
                .get(&d.component)
                .and_then(|a| a.legacy_key.clone()),
            deployment: d.clone(),
        })
        .collect()
}

/// Deletes the predecessor's Deployments the plan removes (with their pods).
pub async fn remove(applier: &Applier, names: &[String]) -> Result<(), Failure> {
    for n in names {
        applier
            .delete("apps/v1", "Deployment", n)
            .await
            .map_err(|e| {
                Failure::from_kube(&format!("deleting the replaced Deployment {n}"), &e)
            })?;
        tracing::info!(namespace = %applier.namespace(), deployment = %n, "predecessor's Deployment removed: ours is Available");
    }
    Ok(())
}

/// Drops the predecessor's finalizers from the resource: with its operator stopped nobody
/// would remove them, and deleting the resource would hang.
pub async fn drop_finalizers(
    client: &kube::Client,
    cr: &WeightsAndBiases,
) -> Result<bool, kube::Error> {
    let current = cr.finalizers().to_vec();
    let kept: Vec<String> = current
        .iter()
        .filter(|f| !takeover::PREDECESSOR_FINALIZERS.contains(&f.as_str()))
        .cloned()
        .collect();
    if kept.len() == current.len() {
        return Ok(false);
    }
    let api: Api<WeightsAndBiases> =
        Api::namespaced(client.clone(), &cr.namespace().unwrap_or_default());
    // The resourceVersion makes the merge patch conditional: a concurrent change (our own
    // finalizer being added, say) fails it with a conflict and the next pass retries.
    let patch = json!({"metadata": {
        "resourceVersion": cr.resource_version(),
        "finalizers": kept,
    }});
    api.patch(
        &cr.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(true)
}

fn failed(doing: &str) -> impl FnOnce(kube::Error) -> Failure + '_ {
    move |e| Failure::from_kube(doing, &e)
}

/// Whether a pass needs to look for a predecessor: not once the instance has been Ready with no
/// takeover in progress (a predecessor is met on the first rollout; the namespace is then not
/// listed again on every pass).
pub fn worth_observing(prev: &WeightsAndBiasesStatus) -> bool {
    let status = |t: ConditionType| {
        prev.conditions
            .iter()
            .find(|c| c.type_ == t.as_str())
            .map(|c| c.status.as_str())
    };
    status(ConditionType::Ready) != Some("True")
        || status(ConditionType::TakeoverComplete) == Some("False")
}

/// First step of a pass: observes a predecessor (see [`worth_observing`]; and only until a
/// look found none: the passes before first Ready then list nothing); refuses managed
/// services beside the official v2 operator's data; drops the predecessor's finalizer from the
/// resource.
pub async fn start(
    ctx: &crate::controller::Context,
    cr: &WeightsAndBiases,
    prev: &WeightsAndBiasesStatus,
    built: &wandb_engine::Built,
) -> Result<Observed, Failure> {
    let uid = cr.uid().unwrap_or_default();
    if !worth_observing(prev) || ctx.without_predecessor(&uid) {
        return Ok(Observed::default());
    }
    let client = &ctx.client;
    let observed = observe(client, &ctx.secret_versions, cr)
        .await
        .map_err(failed("looking for a predecessor's installation"))?;
    if observed.holds_nothing_foreign() {
        ctx.found_no_predecessor(&uid);
    }
    let managed: Vec<(String, String)> = built
        .infra
        .iter()
        .filter(|p| p.mode == wandb_engine::Mode::Managed)
        .map(|p| (p.kind.key().to_string(), p.instance.clone()))
        .collect();
    if let Some(why) = takeover::managed_services_refused(&observed.predecessors, &managed) {
        return Err(Failure {
            kind: FailureKind::User,
            reason: Reason::TAKEOVER_COLLISION,
            message: why,
        });
    }
    if observed.present()
        && drop_finalizers(client, cr)
            .await
            .map_err(failed("removing the predecessor's finalizer"))?
    {
        tracing::info!(name = %cr.name_any(), "predecessor's finalizer removed");
    }
    Ok(observed)
}

/// What [`before_apply`] decided for this pass.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The objects to apply instead of the plan's (`None`: all of them).
    pub objects: Option<Vec<DesiredObject>>,
    /// Networking objects held back (`Kind/name`).
    pub held: Vec<String>,
    /// Predecessor Deployments orphaned this pass (ours under their name come next pass).
    pub orphaned: Vec<String>,
}

/// Before the apply: same-named workloads orphaned, the predecessor's Ingress kept serving
/// until ours are ready.
pub async fn before_apply(
    applier: &Applier,
    cr: &WeightsAndBiases,
    observed: &Observed,
    objects: &[DesiredObject],
) -> Result<Prepared, Failure> {
    if !observed.present() {
        return Ok(Prepared::default());
    }
    let orphaned = resolve_collisions(applier, cr, observed, objects).await?;
    let before = crate::observe::deployments(applier, objects)
        .await
        .map_err(failed("reading the Deployments"))?;
    let ready = !before.is_empty() && before.iter().all(DeploymentFact::ready);
    let (mut kept, held) = hold_networking(applier, cr, observed, objects, ready).await?;
    kept.retain(|o| !orphaned.contains(&o.name));
    Ok(Prepared {
        objects: Some(kept),
        held,
        orphaned,
    })
}

/// After the rollout was observed: removes the predecessor's Deployments whose replacement is
/// ready, and says how far the takeover is (`previous`: the condition as it stood).
#[allow(clippy::too_many_arguments)]
pub async fn after_rollout(
    applier: &Applier,
    cr: &WeightsAndBiases,
    observed: &Observed,
    prepared: &Prepared,
    manifest: &ServerManifest,
    deployments: &[DeploymentFact],
    adopted: &[String],
    previous: Option<(bool, &str)>,
) -> Result<Option<takeover::TakeoverFact>, Failure> {
    if !observed.present() {
        return Ok(takeover::carried(previous));
    }
    let live: Vec<WorkloadMeta> = observed
        .workloads
        .iter()
        .filter(|w| !prepared.orphaned.contains(&w.name))
        .cloned()
        .collect();
    let plan = takeover::plan(
        &cr.name_any(),
        applier.namespace(),
        &observed.release_secrets,
        &live,
        &our_apps(manifest, deployments),
    );
    remove(applier, &plan.remove).await?;
    Ok(takeover::fact(&plan, adopted).map(|mut f| {
        if !prepared.held.is_empty() {
            f.message.push_str(&format!(
                "; {} held until ours are Available",
                prepared.held.join(", ")
            ));
        }
        f
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wandb_api::set_condition;

    fn status(conds: &[(ConditionType, bool)]) -> WeightsAndBiasesStatus {
        let mut s = WeightsAndBiasesStatus::default();
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
        for (t, ok) in conds {
            set_condition(&mut s.conditions, *t, *ok, "R", "", None, &now);
        }
        s
    }

    #[test]
    fn only_our_own_workloads_means_nothing_to_take_over() {
        let ours = meta_of(
            "Deployment",
            ObjectMeta {
                name: Some("w-api".into()),
                labels: Some(
                    [(
                        names::MANAGED_BY_LABEL.to_string(),
                        names::MANAGED_BY.to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
        );
        let theirs = meta_of(
            "Deployment",
            ObjectMeta {
                name: Some("w-app".into()),
                ..Default::default()
            },
        );
        let observed = |workloads: Vec<WorkloadMeta>, release_secrets: Vec<String>| Observed {
            release_secrets,
            workloads,
            predecessors: vec![],
        };
        assert!(observed(vec![], vec![]).holds_nothing_foreign());
        assert!(observed(vec![ours.clone()], vec![]).holds_nothing_foreign());
        assert!(!observed(vec![ours, theirs], vec![]).holds_nothing_foreign());
        assert!(!observed(vec![], vec!["sh.helm.release.v1.w.v1".into()]).holds_nothing_foreign());
    }

    #[test]
    fn the_namespace_is_listed_until_ready_and_while_a_takeover_is_in_progress() {
        assert!(worth_observing(&status(&[])));
        assert!(worth_observing(&status(&[(ConditionType::Ready, false)])));
        assert!(!worth_observing(&status(&[(ConditionType::Ready, true)])));
        assert!(worth_observing(&status(&[
            (ConditionType::Ready, true),
            (ConditionType::TakeoverComplete, false)
        ])));
        assert!(!worth_observing(&status(&[
            (ConditionType::Ready, true),
            (ConditionType::TakeoverComplete, true)
        ])));
    }
}
