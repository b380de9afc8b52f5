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
use wandb_engine::{GATEWAY_API_VERSION, Phase};
use wandb_manifest::{ManifestError, ManifestLocation, ServerManifest};

use super::{Context, Error, cleanup};
use crate::apply::{Applier, FIELD_MANAGER, is_not_served};
use crate::connections;
use crate::gates::{Gates, JobState, MigrationGate, migration_gate};
use crate::status::{self, Facts, ManifestProblem, Transition};
use crate::user_secrets::SecretReader;
use crate::{email_sink, manifests, observe, pod_inputs, secrets};

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
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.reset_failures(&uid);
    Ok(action)
}

async fn apply(cr: Arc<WeightsAndBiases>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cr.namespace().unwrap_or_default();
    let name = cr.name_any();
    let started = Instant::now();
    let applier = Applier::with_cache(ctx.client.clone(), &ns, ctx.owned_cache().await);
    let result = apply_inner(&cr, &ctx, &applier).await;
    let writes = applier.writes();
    ctx.record_writes(&ns, &name, writes);
    ctx.metrics
        .reconciled(result.is_ok(), started.elapsed(), writes);
    tracing::debug!(%ns, %name, writes, elapsed = ?started.elapsed(), ok = result.is_ok(), "reconcile done");
    result
}

/// Loads and checks the manifest; a problem is a user-fixable value, not an error.
async fn load_manifest(
    cr: &WeightsAndBiases,
    ctx: &Context,
    field: &str,
    location: &str,
    version: &str,
) -> Result<ServerManifest, ManifestProblem> {
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
    manifest.check_compatible().map_err(problem)?;
    manifest.ensure_valid().map_err(problem)?;
    Ok(manifest)
}

async fn apply_inner(
    cr: &WeightsAndBiases,
    ctx: &Context,
    applier: &Applier,
) -> Result<Action, Error> {
    let prev = cr.status.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let version = cr.spec.wandb.version.clone();
    let mut facts = Facts {
        generation: cr.metadata.generation,
        version: version.clone(),
        hostname: cr.spec.wandb.hostname.clone(),
        manifest: None,
        invalid_spec: None,
        missing_secrets: vec![],
        infra: vec![],
        migrations: MigrationGate::Pending,
        migration_count: 0,
        deployments: vec![],
        generated_secrets: vec![],
        gateway_api_missing: false,
        email_sink: None,
        internal_auth: None,
        v1_conversion: crate::convert::report::of(cr),
    };
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
            write_status(cr, ctx, applier, &prev, &facts, &now).await?;
            return Ok(Action::requeue(REQUEUE_STALLED));
        }
    };

    // 2. Plan (pure).
    let mut built = match wandb_engine::plan(cr, &manifest, None) {
        Ok(b) => b,
        Err(errs) => {
            let msg = errs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            facts.invalid_spec = Some(msg);
            write_status(cr, ctx, applier, &prev, &facts, &now).await?;
            return Ok(Action::requeue(REQUEUE_STALLED));
        }
    };
    for w in &built.warnings {
        tracing::debug!(name = %cr.name_any(), warning = %w, "plan warning");
    }
    ctx.secret_index
        .set(cr, pod_inputs::watched(cr, Some(&built)));

    // 3. Secrets: generated once, license copied, connection Secrets checked.
    let owner = cr
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Internal("WeightsAndBiases without a uid".into()))?;
    let mut reader = SecretReader::new(applier.client(), applier.namespace());
    let mut sf = secrets::ensure(applier, cr, &built.secrets, &owner, &mut reader).await?;
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
    .await?;
    facts.email_sink = email_sink::effective(&built, sf.problems.is_empty());
    // The email sink's inputs are reported like a connection's.
    published.problems.append(&mut sf.problems);
    if !published.problems.is_empty() {
        publish_warning(
            ctx,
            cr,
            "ConnectionInputMissing",
            &published.problems.join("; "),
        )
        .await;
    }
    // Each pod template carries the hash of the Secret data it reads: a rotation rolls it.
    let mut written = std::mem::take(&mut sf.digests);
    written.extend(std::mem::take(&mut published.digests));
    pod_inputs::stamp(&mut reader, &mut built, written).await?;
    let unreachable = published.unreachable.clone();
    if published.freshly_failed {
        let note: Vec<String> = unreachable
            .iter()
            .map(|(k, i, p)| format!("{k} {i}: {p}"))
            .collect();
        publish_warning(ctx, cr, "ExternalServiceUnreachable", &note.join("; ")).await;
    }
    let mut missing: Vec<String> = sf
        .missing
        .into_iter()
        .filter(|m| {
            !published.ready.contains(m)
                && !published.problems.iter().any(|p| p.starts_with(m.as_str()))
        })
        .collect();
    missing.extend(published.problems);
    facts.missing_secrets = missing;
    facts.generated_secrets = sf.generated;

    // 4. Gates from observed facts.
    let jobs = observe::migrations(applier, &built.objects).await?;
    let last_success = prev
        .wandb
        .as_ref()
        .and_then(|w| w.migration.as_ref())
        .and_then(|m| m.last_success_version.as_deref());
    facts.infra = observe::infra(applier, &built.infra).await?;
    for f in &mut facts.infra {
        f.preflight = unreachable
            .iter()
            .find(|(k, i, _)| *k == f.kind && *i == f.instance)
            .map(|(_, _, p)| p.clone());
    }
    let infra_ready = facts.infra_ready();
    let gates = Gates {
        infra_ready,
        migrations: migration_gate(&version, last_success, &jobs, infra_ready),
    };

    // 5. Apply, phase by phase (objects come sorted by phase).
    for o in &built.objects {
        if !gates.open(o.phase) {
            continue;
        }
        if o.kind == "Job" && job_exists(applier, o, &jobs).await? {
            continue; // Jobs are immutable; an existing one is observed, never re-applied
        }
        let owner_for = super::owner_for(cr, &o.kind, &o.name, o.retain, &owner);
        match applier.apply(&o.object, owner_for).await {
            Ok(_) => {}
            // Gateway mode in a cluster without the Gateway API: reported in the status (and
            // by its event) instead of failing the reconcile, so the rest still rolls out.
            Err(e) if o.api_version == GATEWAY_API_VERSION && is_not_served(&e) => {
                facts.gateway_api_missing = true;
            }
            Err(e) => return Err(e.into()),
        }
    }

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
    let pruned = applier.prune(&cr.name_any(), &keep).await?;
    if !pruned.is_empty() {
        tracing::info!(name = %cr.name_any(), ?pruned, "pruned");
    }

    // 7. Status.
    facts.internal_auth = ctx.issuer_check(&built.instance).await;
    facts.migration_count = jobs.len();
    facts.migrations = gates.migrations.clone();
    facts.deployments = observe::deployments(applier, &built.objects).await?;
    let next = write_status(cr, ctx, applier, &prev, &facts, &now).await?;

    // 8. Migrations recorded as succeeded: their finished Jobs can go.
    if gates.migrations == MigrationGate::AllComplete {
        for j in jobs.iter().filter(|j| j.state == JobState::Complete) {
            applier.delete("batch/v1", "Job", &j.job).await?;
        }
    }

    let stalled = matches!(gates.migrations, MigrationGate::Failed { .. })
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

/// Whether the Job `o` exists (migration Jobs were observed already; others are looked up).
async fn job_exists(
    applier: &Applier,
    o: &wandb_engine::DesiredObject,
    migrations: &[crate::gates::MigrationFact],
) -> Result<bool, Error> {
    if let Some(m) = migrations.iter().find(|m| m.job == o.name) {
        return Ok(m.state != JobState::Missing);
    }
    Ok(applier
        .live(&o.api_version, &o.kind, &o.name)
        .await?
        .is_some())
}

/// Computes the status, patches it only when it changed, and publishes transition events.
async fn write_status(
    cr: &WeightsAndBiases,
    ctx: &Context,
    applier: &Applier,
    prev: &WeightsAndBiasesStatus,
    facts: &Facts,
    now: &Time,
) -> Result<WeightsAndBiasesStatus, Error> {
    let next = status::compute(prev, facts, now);
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
    for t in status::transitions(prev, &next) {
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
