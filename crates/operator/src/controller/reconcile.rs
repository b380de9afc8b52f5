//! One reconcile of a WeightsAndBiases: manifest -> plan -> secrets -> gated, ordered apply ->
//! prune -> status (only written when it changed) -> events for transitions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use wandb_api::{Reason, WeightsAndBiases, WeightsAndBiasesStatus};
use wandb_engine::Phase;
use wandb_manifest::{ManifestError, ManifestLocation, ServerManifest};

use wandb_engine::decide::{
    self, Facts, Failure, FailureKind, Gates, ManifestProblem, MigrationGate, MissingSecret,
    Transition, migration_gate,
};

use super::{Context, Error, cleanup, phases};
use crate::apply::{Applier, FIELD_MANAGER};
use crate::connections;
use crate::user_secrets::SecretReader;
use crate::{email_sink, manifests, observe, pod_checks, pod_inputs, secrets, takeover};

/// The finalizer that runs the retention policy on delete.
pub const FINALIZER: &str = "apps.wandb.com/cleanup";

const REQUEUE_READY: Duration = Duration::from_secs(300);
const REQUEUE_PROGRESSING: Duration = Duration::from_secs(10);
const REQUEUE_MIGRATING: Duration = Duration::from_secs(5);
const REQUEUE_STALLED: Duration = Duration::from_secs(120);
const REQUEUE_GATEWAY_API_MISSING: Duration = Duration::from_secs(20);

pub async fn reconcile(cr: Arc<WeightsAndBiases>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cr
        .namespace()
        .ok_or_else(|| Error::Internal("WeightsAndBiases without a namespace".into()))?;
    let uid = cr.uid().unwrap_or_default();
    let api: Api<WeightsAndBiases> = Api::namespaced(ctx.client.clone(), &ns);
    let action = finalizer(&api, FINALIZER, cr, |event| async {
        match event {
            Event::Apply(cr) => apply(cr, ctx.clone()).await,
            Event::Cleanup(cr) => {
                ctx.forget(&cr);
                cleanup::run(cr, ctx.clone()).await
            }
        }
    })
    .await;
    let action = match action {
        Ok(action) => action,
        // The instance is already gone (deleted while a queued reconcile waited, e.g. one a
        // Secret event triggered): nothing to add or remove, and nothing to warn about.
        Err(
            kube::runtime::finalizer::Error::RemoveFinalizer(kube::Error::Api(s))
            | kube::runtime::finalizer::Error::AddFinalizer(kube::Error::Api(s)),
        ) if s.code == 404 => {
            tracing::debug!(%ns, %uid, "instance gone before its finalizer could be changed");
            Action::await_change()
        }
        Err(e) => return Err(Error::Finalizer(Box::new(e))),
    };
    ctx.reset_failures(&uid);
    Ok(action)
}

async fn apply(cr: Arc<WeightsAndBiases>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cr.namespace().unwrap_or_default();
    let name = cr.name_any();
    let started = Instant::now();
    let applier = Applier::with_cache(ctx.client.clone(), &ns, ctx.owned_cache().await);
    let mut facts = Facts {
        generation: cr.metadata.generation,
        version: cr.spec.wandb.version.clone(),
        hostname: cr.spec.wandb.hostname.clone(),
        manifest: None,
        invalid_spec: None,
        missing_secrets: vec![],
        infra: vec![],
        migrations: MigrationGate::Pending,
        migration_count: 0,
        backups: decide::BackupGate::NotNeeded,
        backup_jobs: vec![],
        backup_acknowledged: None,
        backup_keep: wandb_engine::backends::managed::backup::keep(&cr),
        deployments: vec![],
        generated_secrets: vec![],
        gateway_api_missing: false,
        email_sink: None,
        internal_auth: None,
        failure: None,
        pod_inputs_missing: vec![],
        creation_failures: vec![],
        paused: false,
        v1_conversion: crate::convert::report::of(&cr),
        takeover: None,
    };
    let result = match pass(&cr, &ctx, &applier, &mut facts).await {
        Ok(action) => Ok(action),
        Err(failure) => conclude(&cr, &ctx, &applier, facts, failure).await,
    };
    let writes = applier.writes();
    ctx.record_writes(&ns, &name, writes);
    ctx.metrics.reconciled(result.is_ok(), started.elapsed());
    tracing::debug!(%ns, %name, writes, elapsed = ?started.elapsed(), ok = result.is_ok(), "reconcile done");
    result
}

/// The one place a failed pass becomes conditions (and through them events) and a requeue: a
/// failure only the user can fix stalls the instance and is looked at again later (or when the
/// resource changes); any other is retried with backoff. A conflict is retried silently.
async fn conclude(
    cr: &WeightsAndBiases,
    ctx: &Context,
    applier: &Applier,
    mut facts: Facts,
    failure: Failure,
) -> Result<Action, Error> {
    let silent = failure.reason == decide::failure::CONFLICT;
    tracing::warn!(name = %cr.name_any(), reason = failure.reason, message = %failure.message, "reconcile failed");
    let kind = failure.kind;
    facts.failure = Some(failure.clone());
    if !silent {
        let prev = cr.status.clone().unwrap_or_default();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        if let Err(e) = write_status(cr, ctx, applier, &prev, &facts, &now).await {
            tracing::warn!(name = %cr.name_any(), error = %decide::failure::describe(&e), "could not write the status");
        }
    }
    match kind {
        FailureKind::User => Ok(Action::requeue(REQUEUE_STALLED)),
        FailureKind::Transient | FailureKind::Internal => Err(Error::Failed(failure)),
    }
}

/// Maps a request's error to a [`Failure`] saying what the request was for.
trait Doing<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> Doing<T> for Result<T, kube::Error> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::from_kube(&what(), &e))
    }
}

/// Loads and checks the manifest; a problem is a user-fixable value, not an error.
async fn load_manifest(
    cr: &WeightsAndBiases,
    ctx: &Context,
    field: &str,
    location: &str,
    version: &str,
) -> Result<Arc<ServerManifest>, ManifestProblem> {
    let problem = |e: ManifestError| {
        let reason = match &e {
            ManifestError::Incompatible { .. } | ManifestError::BadRequirement { .. } => {
                Reason::MANIFEST_INCOMPATIBLE
            }
            ManifestError::Io { .. }
            | ManifestError::NotFound { .. }
            | ManifestError::OciNotSupported { .. }
            | ManifestError::Registry { .. }
            | ManifestError::BadLocation { .. } => Reason::MANIFEST_UNAVAILABLE,
            _ => Reason::MANIFEST_INVALID,
        };
        ManifestProblem {
            reason,
            message: format!("{field} {location} (version {version}): {e}"),
        }
    };
    let parsed = ManifestLocation::parse(location).map_err(problem)?;
    let creds = match &parsed {
        ManifestLocation::Oci(repository) => {
            let secrets: Vec<String> = cr
                .spec
                .global
                .as_ref()
                .and_then(|g| g.image_pull_secrets.as_ref())
                .into_iter()
                .flatten()
                .map(|r| r.name.clone())
                .collect();
            let ns = cr.namespace().unwrap_or_default();
            let host = manifests::registry_host(repository);
            manifests::pull_credentials(&ctx.client, &ns, &secrets, &host)
                .await
                .map_err(problem)?
        }
        _ => None,
    };
    let manifest = manifests::load(&ctx.oci, &parsed, version, creds.as_ref())
        .await
        .map_err(problem)?;
    ctx.checked_manifests
        .check(&format!("{location}:{version}"), &manifest)
        .map_err(problem)?;
    Ok(manifest)
}

/// One pass: observe, decide (pure, in the engine), apply what the gates allow, write the status.
async fn pass(
    cr: &WeightsAndBiases,
    ctx: &Context,
    applier: &Applier,
    facts: &mut Facts,
) -> Result<Action, Failure> {
    let prev = cr.status.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let version = cr.spec.wandb.version.clone();
    let status_failed = |e: kube::Error| Failure::from_kube("writing the status", &e);
    // A takeover stays reported (also by a pass that stops early) until this pass says more.
    let previous = prev
        .conditions
        .iter()
        .find(|c| c.type_ == wandb_api::ConditionType::TakeoverComplete.as_str())
        .map(|c| (c.status == "True", c.message.as_str()));
    facts.takeover = previous.map(|(complete, message)| wandb_engine::takeover::TakeoverFact {
        complete,
        message: message.to_string(),
    });

    // Paused: nothing is observed or written, but the status says so (once).
    let annotations = cr.annotations();
    if annotations
        .get(wandb_engine::names::PAUSED_ANNOTATION)
        .is_some_and(|v| v == "true")
    {
        facts.paused = true;
        write_status(cr, ctx, applier, &prev, facts, &now)
            .await
            .map_err(status_failed)?;
        return Ok(Action::await_change());
    }
    // Forward-only versions: an older version than one whose migrations ran is refused before
    // anything is touched, so the running version keeps serving.
    let last_success = prev
        .wandb
        .as_ref()
        .and_then(|w| w.migration.as_ref())
        .and_then(|m| m.last_success_version.clone());
    if let Some(refused) = decide::versions::check(
        &version,
        last_success.as_deref(),
        annotations
            .get(wandb_engine::names::RESTORED_VERSION_ANNOTATION)
            .map(String::as_str),
    ) {
        return Err(refused);
    }
    // A resource created as v1 whose values were not all carried over: said once per change.
    if let Some(note) = crate::convert::report::news(facts.v1_conversion.as_ref(), &prev) {
        publish_warning(ctx, cr, wandb_api::Reason::CONVERSION_INCOMPLETE, &note).await;
    }

    // The user's Secrets are watched from the start, so that creating a missing one or fixing a
    // key is acted on at once, even while the instance waits for it (or for its manifest).
    ctx.secret_index.add(cr, pod_inputs::watched(cr, None));

    // 1. Manifest.
    let (location, field) = crate::manifests::location_for(cr, ctx.default_manifest.as_deref());
    let manifest = match load_manifest(cr, ctx, field, &location, &version).await {
        Ok(m) => m,
        Err(p) => {
            ctx.metrics.manifest_error(p.reason);
            facts.manifest = Some(p);
            write_status(cr, ctx, applier, &prev, facts, &now)
                .await
                .map_err(status_failed)?;
            return Ok(Action::requeue(REQUEUE_STALLED));
        }
    };

    // 2. Plan (pure), with the API server's static checks of every object.
    let mut built = match wandb_engine::plan(cr, &manifest, None) {
        Ok(b) => b,
        Err(errs) => {
            let msg = errs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            facts.invalid_spec = Some(msg);
            write_status(cr, ctx, applier, &prev, facts, &now)
                .await
                .map_err(status_failed)?;
            return Ok(Action::requeue(REQUEUE_STALLED));
        }
    };
    // An upgrade's backup Jobs carry the time they are first created in their dump's name.
    wandb_engine::backends::managed::backup::stamp(
        &mut built.objects,
        &now.0.strftime("%Y%m%dT%H%M%SZ").to_string(),
    );
    for w in &built.warnings {
        tracing::debug!(name = %cr.name_any(), warning = %w, "plan warning");
    }
    ctx.secret_index
        .set(cr, pod_inputs::watched(cr, Some(&built)));

    // A predecessor's installation (the official operator's) being taken over in place.
    let predecessor = takeover::start(ctx, cr, &prev, &built).await?;

    // 3. Secrets: generated once (or adopted from a predecessor), license copied, connection
    // Secrets checked.
    let owner = cr
        .controller_owner_ref(&())
        .ok_or_else(|| Failure::internal("WeightsAndBiases without a uid"))?;
    let mut reader = SecretReader::with_versions(
        applier.client(),
        applier.namespace(),
        ctx.secret_versions.clone(),
    );
    let mut sf = secrets::ensure(
        applier,
        cr,
        &built.secrets,
        &owner,
        &mut reader,
        predecessor.present(),
    )
    .await
    .doing(|| "writing the instance's Secrets".into())?;
    // Connection Secrets are composed from generated credentials or the user's Secrets; a
    // missing input is named and that service's Secret is not written.
    let mut published = connections::publish(
        applier,
        cr,
        &built.instance,
        &built.infra,
        &owner,
        ctx,
        &mut reader,
    )
    .await
    .doing(|| "publishing connection Secrets".into())?;
    facts.email_sink = email_sink::effective(&built, sf.problems.is_empty());
    // The email sink's inputs are reported like a connection's.
    published.problems.append(&mut sf.problems);
    if !published.problems.is_empty() {
        publish_warning(
            ctx,
            cr,
            "ConnectionInputMissing",
            &published
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
        .await;
    }
    // Each pod template carries the hash of the Secret data it reads: a rotation rolls it.
    let mut written = std::mem::take(&mut sf.digests);
    written.extend(std::mem::take(&mut published.digests));
    pod_inputs::stamp(&mut reader, &mut built, written)
        .await
        .doing(|| "reading the Secrets the pods read".into())?;
    let unreachable = published.unreachable.clone();
    if published.freshly_failed {
        let note: Vec<String> = unreachable
            .iter()
            .map(|(k, i, p)| format!("{k} {i}: {p}"))
            .collect();
        publish_warning(ctx, cr, "ExternalServiceUnreachable", &note.join("; ")).await;
    }
    // A connection Secret is missing unless published now; with the reason when its inputs are.
    let mut missing: Vec<MissingSecret> = sf
        .missing
        .into_iter()
        .filter(|m| {
            !published.ready.contains(m) && !published.problems.iter().any(|p| p.name == *m)
        })
        .map(MissingSecret::new)
        .collect();
    missing.extend(published.problems);
    facts.missing_secrets = missing;
    facts.generated_secrets = sf.generated;
    let adopted = std::mem::take(&mut sf.adopted);

    // 4. Gates from observed facts.
    let jobs = observe::migrations(applier, &built.objects)
        .await
        .doing(|| "reading the migration Jobs".into())?;
    let last_success = last_success.as_deref();
    facts.infra = observe::infra(applier, &built.infra, &facts.missing_secrets, &unreachable)
        .await
        .doing(|| "reading the backing services".into())?;
    let infra_ready = facts.infra_ready();
    let backup_jobs = observe::backups(applier, &built.objects)
        .await
        .doing(|| "reading the backup Jobs".into())?;
    let (backups, acknowledged) = decide::backups::decide(cr, &built.instance, &backup_jobs);
    let gates = Gates {
        infra_ready,
        // No migration (nor a vacuous success) before the upgrade's backups are done.
        migrations: migration_gate(&version, last_success, &jobs, infra_ready && backups.done()),
        backups,
    };

    // 5. Apply, phase by phase; the objects of one phase concurrently. Taking over: a
    // predecessor's same-named workload is orphaned first (applied next pass), and its
    // Ingress keeps routing until ours are Available.
    let prepared = takeover::before_apply(applier, cr, &predecessor, &built.objects).await?;
    let planned = prepared.objects.as_deref().unwrap_or(&built.objects);
    let to_apply = phases::without_held_back(planned, &decide::backups::held_back(&backup_jobs));
    let applied = phases::apply(applier, &to_apply, &gates, &jobs, &owner).await?;
    facts.gateway_api_missing = applied.gateway_api_missing;

    // 6. Prune what this instance owns but no longer renders.
    let mut keep: BTreeSet<(String, String)> = built
        .objects
        .iter()
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect();
    keep.extend(
        built
            .secrets
            .iter()
            .map(|s| ("Secret".to_string(), s.name.clone())),
    );
    let pruned = applier
        .prune(&cr.name_any(), &keep)
        .await
        .doing(|| "pruning objects no longer rendered".into())?;
    if !pruned.is_empty() {
        tracing::info!(name = %cr.name_any(), ?pruned, "pruned");
    }

    // 7. Status: can every pod start, and how far did the rollout get?
    facts.pod_inputs_missing = pod_checks::missing_inputs(applier, &mut reader, cr, &built)
        .await
        .doing(|| "checking what the pods read".into())?;
    facts.creation_failures = pod_checks::creation_failures(applier, &built)
        .await
        .doing(|| "checking the workloads' pod creation".into())?;
    facts.internal_auth = ctx.issuer_check(&built.instance).await;
    facts.migration_count = jobs.len();
    facts.migrations = gates.migrations.clone();
    facts.backups = gates.backups.clone();
    facts.backup_jobs = backup_jobs;
    facts.backup_acknowledged = acknowledged;
    facts.deployments = observe::deployments(applier, &built.objects)
        .await
        .doing(|| "reading the Deployments".into())?;
    // Taking over: the predecessor's Deployments go once ours for the same application are.
    facts.takeover = takeover::after_rollout(
        applier,
        cr,
        &predecessor,
        &prepared,
        &manifest,
        &facts.deployments,
        &adopted,
        previous,
    )
    .await?;
    let next = write_status(cr, ctx, applier, &prev, facts, &now)
        .await
        .map_err(status_failed)?;

    // 8. Migrations recorded as succeeded: their finished Jobs can go.
    for job in decide::finished_jobs(&gates.migrations, &jobs) {
        applier
            .delete("batch/v1", "Job", job)
            .await
            .doing(|| format!("deleting the finished migration Job {job}"))?;
    }

    // Backup Jobs beyond `keep`, or of an abandoned or rolled back upgrade, go.
    let retired = crate::backups::retire(applier, cr, next_last_success(&next))
        .await
        .doing(|| "deleting backup Jobs that are no longer kept".into())?;
    if !retired.is_empty() {
        tracing::info!(name = %cr.name_any(), ?retired, "backup Jobs retired");
    }
    let stalled = matches!(gates.migrations, MigrationGate::Failed { .. })
        || matches!(gates.backups, decide::BackupGate::Failed { .. })
        || facts.infra_failure().is_some()
        || facts.gateway_api_missing;
    let next_pass = if next.ready {
        REQUEUE_READY
    } else if stalled {
        REQUEUE_STALLED
    } else if gates.open(Phase::Migrations) {
        REQUEUE_MIGRATING
    } else {
        REQUEUE_PROGRESSING
    };
    // An unreachable external service is looked at again when its failed preflight expires;
    // missing Gateway API CRDs soon, as they may just be being installed (a CRD can be listed
    // by discovery a moment before its objects can be written).
    let mut next_pass = next_pass;
    if !unreachable.is_empty() {
        next_pass = next_pass.min(ctx.preflight_retry);
    }
    if facts.gateway_api_missing {
        next_pass = next_pass.min(REQUEUE_GATEWAY_API_MISSING);
    }
    Ok(Action::requeue(next_pass))
}

fn next_last_success(status: &WeightsAndBiasesStatus) -> Option<&str> {
    status
        .wandb
        .as_ref()?
        .migration
        .as_ref()?
        .last_success_version
        .as_deref()
}

/// Computes the status, patches it only when it changed, and publishes transition events.
async fn write_status(
    cr: &WeightsAndBiases,
    ctx: &Context,
    applier: &Applier,
    prev: &WeightsAndBiasesStatus,
    facts: &Facts,
    now: &Time,
) -> Result<WeightsAndBiasesStatus, kube::Error> {
    let next = decide::compute(prev, facts, now);
    ctx.metrics
        .set_ready(applier.namespace(), &cr.name_any(), next.ready);
    if cr.status.as_ref() == Some(&next) {
        return Ok(next);
    }
    let api: Api<WeightsAndBiases> = Api::namespaced(ctx.client.clone(), applier.namespace());
    let patch = json!({
        "apiVersion": WeightsAndBiases::api_version(&()),
        "kind": WeightsAndBiases::kind(&()),
        "status": next,
    });
    api.patch_status(
        &cr.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    applier.count_write();
    for t in decide::transitions(prev, &next) {
        publish(ctx, cr, &t).await;
    }
    Ok(next)
}

async fn publish(ctx: &Context, cr: &WeightsAndBiases, t: &Transition) {
    let note = super::truncate(&t.note, 1000);
    let event = KubeEvent {
        type_: if t.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: t.reason.clone(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cr.object_ref(&())).await {
        tracing::warn!(name = %cr.name_any(), error = %e, "could not publish an event");
    }
}

/// A Warning event on the instance (repeats aggregate in the recorder).
async fn publish_warning(ctx: &Context, cr: &WeightsAndBiases, reason: &str, note: &str) {
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cr.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish an event");
    }
}
