//! Applies the plan's objects phase by phase, as the gates allow. The objects of one phase do
//! not depend on each other, so they are applied concurrently (bounded): a phase costs about one
//! round trip, not one per object. A write the API server refuses does not stop the rest of its
//! phase, but no later phase starts; every refusal is reported together.

use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use wandb_engine::decide::{Failure, FailureKind, Gates, JobState, MigrationFact};
use wandb_engine::{DesiredObject, GATEWAY_API_VERSION, Phase};

use crate::apply::{Applier, is_not_served};

/// Writes in flight at once for one instance. The API server handles far more; this bounds one
/// instance's share when many reconcile together.
const CONCURRENT_WRITES: usize = 16;

type WriteFuture<'a> = std::pin::Pin<
    Box<dyn Future<Output = (&'a DesiredObject, Result<(), kube::Error>)> + Send + 'a>,
>;

/// What applying found besides errors.
#[derive(Debug, Default)]
pub struct Applied {
    /// Gateway mode in a cluster without the Gateway API: reported in the status (and by its
    /// event) instead of failing the pass, so the rest still rolls out.
    pub gateway_api_missing: bool,
}

/// `objects` without the backup Jobs held back: one backup Job runs at a time, as they share
/// the ReadWriteOnce backups PVC. The held back ones do not exist yet, so leaving them out of a
/// pass's writes prunes nothing.
pub fn without_held_back<'a>(
    objects: &'a [DesiredObject],
    held: &[String],
) -> std::borrow::Cow<'a, [DesiredObject]> {
    if held.is_empty() {
        return std::borrow::Cow::Borrowed(objects);
    }
    objects
        .iter()
        .filter(|o| !(o.phase == Phase::Backups && o.kind == "Job" && held.contains(&o.name)))
        .cloned()
        .collect()
}

pub async fn apply(
    applier: &Applier,
    objects: &[DesiredObject],
    gates: &Gates,
    migrations: &[MigrationFact],
    owner: &OwnerReference,
) -> Result<Applied, Failure> {
    let mut out = Applied::default();
    let mut refused: Vec<Failure> = Vec::new();
    // Objects come sorted by phase.
    let mut rest = objects;
    while let Some(first) = rest.first() {
        let phase = first.phase;
        let end = rest
            .iter()
            .position(|o| o.phase != phase)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(end);
        rest = tail;
        if !gates.open(phase) {
            continue;
        }
        if !refused.is_empty() {
            break;
        }
        // Boxed: an un-named closure future here trips the compiler's higher-ranked lifetime
        // inference once the reconcile future must be `Send`.
        let writes: Vec<WriteFuture> = group
            .iter()
            .map(|o| -> WriteFuture {
                Box::pin(async move { (o, apply_one(applier, o, migrations, owner).await) })
            })
            .collect();
        let results: Vec<(&DesiredObject, Result<(), kube::Error>)> = futures::stream::iter(writes)
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        for (o, result) in results {
            let Err(e) = result else { continue };
            if o.api_version == GATEWAY_API_VERSION && is_not_served(&e) {
                out.gateway_api_missing = true;
                continue;
            }
            let failure = Failure::from_kube(&format!("writing {} {}", o.kind, o.name), &e);
            if failure.kind != FailureKind::User {
                return Err(failure);
            }
            refused.push(failure);
        }
    }
    match refused.len() {
        0 => Ok(out),
        1 => Err(refused.remove(0)),
        n => {
            let first = refused[0].clone();
            let all: Vec<String> = refused.into_iter().map(|f| f.message).collect();
            Err(Failure {
                message: format!("{n} writes were refused: {}", all.join("; ")),
                ..first
            })
        }
    }
}

async fn apply_one(
    applier: &Applier,
    o: &DesiredObject,
    migrations: &[MigrationFact],
    owner: &OwnerReference,
) -> Result<(), kube::Error> {
    if o.kind == "Job" && job_exists(applier, o, migrations).await? {
        return Ok(()); // Jobs are immutable; an existing one is observed, never re-applied
    }
    // No desired object is retained data (that is in Secrets and claims): always owned.
    let owner_for = super::owner_for(o.retain, wandb_api::RetentionPolicy::Detach, owner);
    applier.apply(&o.object, owner_for).await.map(|_| ())
}

/// Whether the Job `o` exists (migration Jobs were observed already; others are looked up).
async fn job_exists(
    applier: &Applier,
    o: &DesiredObject,
    migrations: &[MigrationFact],
) -> Result<bool, kube::Error> {
    if let Some(m) = migrations.iter().find(|m| m.job == o.name) {
        return Ok(m.state != JobState::Missing);
    }
    Ok(applier
        .live(&o.api_version, &o.kind, &o.name)
        .await?
        .is_some())
}
