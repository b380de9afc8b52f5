//! `diff -f FILE` / `diff NAME`: what applying this resource (or the next reconcile of the live
//! one) would change, object by object, as unified diffs. The engine plans the objects exactly
//! as the controller does; the API server answers a server-side dry-run apply of each with the
//! operator's field manager, so defaulting, merging and field ownership are the server's, not a
//! guess. Secret values are never shown (a changed value shows as `REDACTED (changed)`).
//! Exit 0 when nothing would change, 1 when something would (the `kubectl diff` convention).
//!
//! Like the controller: an existing Job is never re-applied (immutable), migration Jobs of a
//! version whose migrations are recorded as done are not re-created, pod templates carry the
//! inputs hash of the Secret data they read, and objects the instance owns but no longer renders
//! show as deleted. The Secrets the controller composes (connection Secrets, the license copy,
//! the email sink) are composed here without writing (see [`super::compose`]): a rotated password
//! shows as its connection Secret's changed keys and the pod templates whose inputs hash moves.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::{Built, Phase, SecretSource, names};

use base64::Engine as _;

use super::compose;
use super::redact::REDACTED;
use super::{Cluster, KubeArgs, ManifestArgs, fail};
use crate::apply::{self, FIELD_MANAGER, KINDS, is_not_served};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "file"])))]
pub struct DiffArgs {
    /// Name of a live WeightsAndBiases: what its next reconcile would change.
    pub name: Option<String>,
    /// A WeightsAndBiases resource (YAML): what applying it would change.
    #[arg(short = 'f', long = "filename")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub manifest: ManifestArgs,
}

/// One object's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `Kind/name`.
    pub object: String,
    /// Unified diff (or a one-line note for what cannot be shown as one).
    pub diff: String,
}

pub fn run(args: &DiffArgs) -> ExitCode {
    super::block_on(async {
        let cluster = match args.kube.connect().await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let (changes, notes) = match changes(&cluster, args).await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        for n in &notes {
            eprintln!("note: {n}");
        }
        for c in &changes {
            print!("{}", c.diff);
            if !c.diff.ends_with('\n') {
                println!();
            }
        }
        if changes.is_empty() {
            eprintln!("no changes");
            ExitCode::SUCCESS
        } else {
            eprintln!("{} object(s) would change", changes.len());
            ExitCode::FAILURE
        }
    })
}

/// The changes, and notes on what was not compared.
pub async fn changes(
    cluster: &Cluster,
    args: &DiffArgs,
) -> Result<(Vec<Change>, Vec<String>), String> {
    let wb: Api<WeightsAndBiases> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let (cr, live_cr) = match (&args.file, &args.name) {
        (Some(file), _) => {
            let mut cr = super::read_cr_file(file, &cluster.namespace)?;
            let ns = cr.namespace().unwrap_or_default();
            if ns != cluster.namespace {
                return Err(format!(
                    "{} is in namespace {ns}; run with -n {ns}",
                    file.display()
                ));
            }
            let live = wb
                .get_opt(&cr.name_any())
                .await
                .map_err(|e| format!("reading WeightsAndBiases {}: {e}", cr.name_any()))?;
            cr = match admitted(&wb, &cr, live.as_ref()).await {
                Ok(stored) => stored,
                Err(Admission::Refused(msg)) => {
                    return Err(format!(
                        "the API server would refuse {}: {msg}",
                        file.display()
                    ));
                }
                Err(Admission::Unknown(msg)) => {
                    notes.push(format!(
                        "the API server could not dry-run {} ({msg}); its defaults are not applied",
                        file.display()
                    ));
                    cr
                }
            };
            out.extend(cr_change(&cr, live.as_ref()));
            if let Some(live) = &live {
                // The live object's identity and status (migrations done, owner uid).
                cr.metadata.uid = live.metadata.uid.clone();
                cr.status = live.status.clone();
            }
            (cr, live)
        }
        (None, Some(name)) => {
            let cr = super::get_cr(cluster, name).await?;
            (cr.clone(), Some(cr))
        }
        (None, None) => return Err("give NAME or -f FILE".into()),
    };
    let manifest = args.manifest.load(&cr, Some(cluster)).await?;
    let mut built = super::plan(&cr, &manifest)?;
    let composed = compose::composed(&cluster.client, &cluster.namespace, &cr, &built).await?;
    compose::stamp(&cluster.client, &cluster.namespace, &mut built, &composed).await?;
    if live_cr
        .as_ref()
        .is_some_and(|c| !c.status.as_ref().is_some_and(|s| s.ready))
    {
        notes.push(
            "the instance is not Ready: migrations, applications and networking are applied as \
             their gates open (backing services ready, migrations done), not all at the next \
             reconcile; `status` says which gate is closed"
                .into(),
        );
    }
    let owner = live_cr.as_ref().and_then(|c| c.controller_owner_ref(&()));
    if owner.is_none() {
        notes.push(
            "the resource does not exist yet: objects are shown without owner references".into(),
        );
    }
    let recorded = cr
        .status
        .as_ref()
        .and_then(|s| s.wandb.as_ref())
        .and_then(|w| w.migration.as_ref())
        .and_then(|m| m.last_success_version.as_deref())
        == Some(cr.spec.wandb.version.as_str());
    for o in &built.objects {
        let api = Api::<DynamicObject>::namespaced_with(
            cluster.client.clone(),
            &cluster.namespace,
            &apply::api_resource(&o.api_version, &o.kind),
        );
        let what = format!("{}/{}", o.kind, o.name);
        let live = match api.get_opt(&o.name).await {
            Ok(l) => l.map(|l| serde_json::to_value(l).expect("objects serialize")),
            Err(e) if is_not_served(&e) => {
                notes.push(format!(
                    "{what}: the cluster does not serve {} (its CRDs are not installed); the operator cannot create it",
                    o.api_version
                ));
                continue;
            }
            Err(e) => return Err(format!("reading {what}: {e}")),
        };
        if o.kind == "Job" && (live.is_some() || (o.phase == Phase::Migrations && recorded)) {
            continue; // an existing Job is observed, never re-applied; done migrations not re-run
        }
        let owner_ref: Option<&OwnerReference> = owner.as_ref().and_then(|ow| {
            crate::controller::owner_for(o.retain, wandb_api::RetentionPolicy::Detach, ow)
        });
        let mut desired = o.object.clone();
        if let Some(ow) = owner_ref {
            desired["metadata"]["ownerReferences"] =
                serde_json::to_value([ow]).expect("owner references serialize");
        }
        if let Some(l) = &live {
            apply::keep_immutable(&o.kind, &mut desired, l);
        }
        apply::stamp_applied_hash(&mut desired);
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let after = match api.patch(&o.name, &params, &Patch::Apply(&desired)).await {
            Ok(a) => serde_json::to_value(a).expect("objects serialize"),
            // A new namespace, for instance: show the object as the engine built it.
            Err(kube::Error::Api(s)) if live.is_none() && s.code == 404 => {
                notes.push(format!(
                    "{what}: the API server could not dry-run its creation ({}); shown as built",
                    s.message
                ));
                desired
            }
            Err(e) => return Err(format!("dry-run apply of {what}: {e}")),
        };
        if let Some(c) = change(&what, live.as_ref(), Some(&after)) {
            out.push(c);
        }
    }
    out.extend(declared_secrets(cluster, &built, &composed).await?);
    out.extend(pruned(cluster, &cr.name_any(), &built).await?);
    Ok((out, notes))
}

/// Why a dry-run of the resource gave no stored object.
enum Admission {
    /// Validation (schema, CEL rules including transition rules) refused it.
    Refused(String),
    /// The dry-run could not be made (e.g. the namespace does not exist yet).
    Unknown(String),
}

/// The resource as the API server would store it (defaults applied, every rule checked): a
/// dry-run create, or a dry-run replace of the live one's spec (its metadata kept, as only the
/// spec is compared and planned).
async fn admitted(
    wb: &Api<WeightsAndBiases>,
    cr: &WeightsAndBiases,
    live: Option<&WeightsAndBiases>,
) -> Result<WeightsAndBiases, Admission> {
    let params = PostParams {
        dry_run: true,
        field_manager: Some("kubectl-wandb".into()),
    };
    let answer = match live {
        None => wb.create(&params, cr).await,
        Some(l) => {
            let mut next = l.clone();
            next.spec = cr.spec.clone();
            next.status = None;
            wb.replace(&cr.name_any(), &params, &next).await
        }
    };
    answer.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 422 || s.code == 400 => Admission::Refused(s.message),
        kube::Error::Api(s) => Admission::Unknown(s.message),
        other => Admission::Unknown(other.to_string()),
    })
}

/// The resource itself: created, or its spec changed.
fn cr_change(cr: &WeightsAndBiases, live: Option<&WeightsAndBiases>) -> Option<Change> {
    let what = format!("WeightsAndBiases/{}", cr.name_any());
    let spec = |c: &WeightsAndBiases| {
        serde_json::json!({"apiVersion": "apps.wandb.com/v2", "kind": "WeightsAndBiases",
            "metadata": {"name": c.name_any(), "namespace": c.namespace()}, "spec": c.spec})
    };
    change(&what, live.map(spec).as_ref(), Some(&spec(cr)))
}

/// The unified diff of `before` and `after` (normalized), `None` when equal.
pub fn change(what: &str, before: Option<&Value>, after: Option<&Value>) -> Option<Change> {
    let markers = secret_markers(before, after);
    let mut before = before.cloned();
    let mut after = after.cloned();
    for v in before.iter_mut().chain(after.iter_mut()) {
        normalize(v);
    }
    if let (Some(a), Some(m)) = (after.as_mut(), markers) {
        a["data"] = Value::Object(m);
    }
    let yaml = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| serde_saphyr::to_string(v).expect("objects serialize"))
            .unwrap_or_default()
    };
    let (b, a) = (yaml(&before), yaml(&after));
    if b == a {
        return None;
    }
    let diff = similar::TextDiff::from_lines(&b, &a)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!(
                "live/{what}{}",
                if before.is_none() { " (absent)" } else { "" }
            ),
            &format!(
                "desired/{what}{}",
                if after.is_none() { " (deleted)" } else { "" }
            ),
        )
        .to_string();
    Some(Change {
        object: what.to_string(),
        diff,
    })
}

/// Drops what the server maintains and nobody applies: managedFields, resourceVersion, uid,
/// generation, timestamps, status, the operator's applied-hash annotation.
fn normalize(v: &mut Value) {
    if let Some(Value::Object(m)) = v.get_mut("metadata") {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "generation",
            "creationTimestamp",
            "selfLink",
        ] {
            m.remove(k);
        }
        if let Some(Value::Object(a)) = m.get_mut("annotations") {
            a.remove(names::APPLIED_HASH_ANNOTATION);
            if a.is_empty() {
                m.remove("annotations");
            }
        }
    }
    if let Value::Object(m) = v {
        m.remove("status");
    }
    super::redact::object(v);
}

/// The desired side's Secret `data`, each value replaced by `REDACTED` when the live one is
/// equal, else `REDACTED (changed)` or `REDACTED (new)`, so a change shows without its value.
/// `None` unless `after` is a Secret with data.
fn secret_markers(
    before: Option<&Value>,
    after: Option<&Value>,
) -> Option<serde_json::Map<String, Value>> {
    let after = after?;
    if after.get("kind").and_then(Value::as_str) != Some("Secret") {
        return None;
    }
    let data = after.get("data")?.as_object()?;
    let live = before
        .and_then(|b| b.get("data"))
        .and_then(Value::as_object);
    Some(
        data.iter()
            .map(|(k, v)| {
                let marker = match live.and_then(|l| l.get(k)) {
                    Some(old) if old == v => REDACTED.to_string(),
                    Some(_) => format!("{REDACTED} (changed)"),
                    None if before.is_some() => format!("{REDACTED} (new)"),
                    None => REDACTED.to_string(),
                };
                (k.clone(), Value::String(marker))
            })
            .collect(),
    )
}

/// Declared Secrets: a missing one would be created; a composed one whose data would change is
/// shown key by key, values redacted.
async fn declared_secrets(
    cluster: &Cluster,
    built: &Built,
    composed: &compose::Composed,
) -> Result<Vec<Change>, String> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut out = Vec::new();
    for s in &built.secrets {
        let what = format!("Secret/{}", s.name);
        let live = api
            .get_opt(&s.name)
            .await
            .map_err(|e| format!("reading {what}: {e}"))?;
        let next = composed.get(&s.name);
        let note = match (&live, next, &s.source) {
            (None, _, SecretSource::Generated { .. }) => "would be created with generated values",
            (None, Some(_), _) => "would be created (values not shown)",
            (None, None, _) => "not written until its inputs exist (status names what is missing)",
            (Some(l), Some(data), _) => {
                let as_secret = |data: Value| {
                    serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": s.name}, "data": data})
                };
                let live_data = serde_json::to_value(&l.data).unwrap_or_default();
                let next_data: serde_json::Map<String, Value> = data
                    .iter()
                    .map(|(k, v)| {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
                        (k.clone(), Value::String(b64))
                    })
                    .collect();
                let before = as_secret(live_data);
                let after = as_secret(Value::Object(next_data));
                out.extend(change(&what, Some(&before), Some(&after)));
                continue;
            }
            (Some(_), None, _) => continue,
        };
        out.push(Change {
            object: what.clone(),
            diff: format!(
                "--- live/{what}\n+++ desired/{what}\n# {what}: {note}; keys: {}\n",
                s.keys.join(", ")
            ),
        });
    }
    Ok(out)
}

/// Objects labelled as this instance's and managed by the operator that the plan no longer has
/// (retained data is never pruned).
async fn pruned(cluster: &Cluster, instance: &str, built: &Built) -> Result<Vec<Change>, String> {
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
    let selector = super::status::instance_selector(instance);
    let mut out = Vec::new();
    for (api_version, kind, _) in KINDS {
        let api = Api::<DynamicObject>::namespaced_with(
            cluster.client.clone(),
            &cluster.namespace,
            &apply::api_resource(api_version, kind),
        );
        let list = match api.list(&ListParams::default().labels(&selector)).await {
            Ok(l) => l,
            Err(e) if is_not_served(&e) => continue,
            Err(e) => return Err(format!("listing {kind}s: {e}")),
        };
        for item in list {
            let name = item.name_any();
            let retained = item
                .annotations()
                .get(names::RETAIN_ANNOTATION)
                .is_some_and(|v| v == "true");
            if retained
                || item.metadata.deletion_timestamp.is_some()
                || keep.contains(&((*kind).to_string(), name.clone()))
            {
                continue;
            }
            let v = serde_json::to_value(&item).expect("objects serialize");
            if let Some(c) = change(&format!("{kind}/{name}"), Some(&v), None) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(data: Value, rv: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "resourceVersion": rv, "managedFields": [{"manager": "x"}]},
            "data": data})
    }

    #[test]
    fn server_bookkeeping_is_no_change() {
        let a = secret(json!({"k": "dmFsdWU="}), "1");
        let b = secret(json!({"k": "dmFsdWU="}), "2");
        assert_eq!(change("Secret/s", Some(&a), Some(&b)), None);
    }

    #[test]
    fn a_changed_secret_value_shows_as_changed_but_not_its_value() {
        let live = secret(json!({"same": "c2FtZQ==", "pw": "b2xkLXB3"}), "1");
        let next = secret(
            json!({"same": "c2FtZQ==", "pw": "bmV3LXB3", "added": "eA=="}),
            "1",
        );
        let c = change("Secret/s", Some(&live), Some(&next)).unwrap();
        assert!(c.diff.contains("+  pw: REDACTED (changed)"), "{}", c.diff);
        assert!(c.diff.contains("+  added: REDACTED (new)"), "{}", c.diff);
        assert!(c.diff.contains("   same: REDACTED"), "{}", c.diff);
        for v in ["b2xkLXB3", "bmV3LXB3", "old-pw", "new-pw"] {
            assert!(!c.diff.contains(v), "{}", c.diff);
        }
    }

    #[test]
    fn created_and_deleted_objects_are_whole_sided_diffs() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"url": "mysql://u:p4ssw0rd@db:3306/x"}});
        let created = change("ConfigMap/c", None, Some(&cm)).unwrap();
        assert!(created.diff.contains("--- live/ConfigMap/c (absent)"));
        assert!(created.diff.contains("mysql://REDACTED@db:3306/x"));
        assert!(!created.diff.contains("p4ssw0rd"));
        let deleted = change("ConfigMap/c", Some(&cm), None).unwrap();
        assert!(deleted.diff.contains("+++ desired/ConfigMap/c (deleted)"));
    }
}
