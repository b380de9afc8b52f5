//! In-place takeover of an installation made by the official operator (pure decisions).
//!
//! Two predecessors leave recognisable objects in the instance's namespace:
//!
//! - the v1 operator installs the `operator-wandb` Helm chart as a release named after the
//!   resource: a release Secret `sh.helm.release.v1.<cr>.v<N>` (labels `owner=helm`,
//!   `name=<cr>`) and workloads labelled `app.kubernetes.io/managed-by=Helm`,
//!   `app.kubernetes.io/instance=<cr>`, `app.kubernetes.io/name=<component>`; the Deployments
//!   of `app`, `console`, `weave`, `parquet`, ... are named `<cr>-<component>-bc`, those of
//!   `api` and `glue` `<cr>-<component>` (and charts from before the `-bc` rename used
//!   `<cr>-<component>` for all);
//! - the official v2 operator runs each manifest application as an `Application`
//!   (`apps.wandb.com`), whose controller owns a Deployment named `<app>`, labelled
//!   `app.kubernetes.io/name=<app>`, `app.kubernetes.io/instance=<namespace>`.
//!
//! The controller observes those objects' metadata; this module decides, from them and the
//! instance's own Deployments, which predecessor workloads are replaced (and may go once ours
//! for the same application are Available), which wait, which stay (nothing of ours replaces
//! them, or they hold data: StatefulSets are never removed), and what to do where one of ours
//! has the same name as one of theirs.

use std::collections::BTreeMap;

use crate::decide::DeploymentFact;
use crate::names;

/// Label Helm's chart objects carry.
pub const HELM_MANAGED_BY: &str = "Helm";
/// Prefix of the v1 operator's Helm release Secrets (`sh.helm.release.v1.<release>.v<N>`).
pub const HELM_RELEASE_SECRET_PREFIX: &str = "sh.helm.release.v1.";
/// The finalizers the predecessors put on the resource. With their operator stopped nobody
/// removes them, and deleting the resource would hang: the takeover drops them.
pub const PREDECESSOR_FINALIZERS: &[&str] =
    &["finalizer.app.wandb.com", "wandb.apps.wandb.com/cleanup"];
/// Annotation on a generated Secret seeded from a predecessor's: `<secret>/<key>` it came from
/// (names only, never the value).
pub const ADOPTED_FROM_ANNOTATION: &str = "apps.wandb.com/adopted-from";

/// Which operator installed what we take over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Predecessor {
    /// The v1 operator (the `operator-wandb` Helm chart).
    HelmChart,
    /// The official v2 operator (`Application` resources).
    OfficialV2,
}

impl Predecessor {
    pub fn describe(self) -> &'static str {
        match self {
            Predecessor::HelmChart => "the v1 operator's Helm release (operator-wandb chart)",
            Predecessor::OfficialV2 => "the official v2 operator's Applications",
        }
    }
}

/// The metadata of one live workload (Deployment or StatefulSet) of the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadMeta {
    pub kind: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `(apiVersion, kind)` of its controller owner reference, if any.
    pub controller: Option<(String, String)>,
    /// `spec.selector.matchLabels` (read only for a workload named like one of ours).
    pub selector: Option<BTreeMap<String, String>>,
}

impl WorkloadMeta {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether an `Application` of the official v2 operator controls it. Its objects carry
    /// `app.kubernetes.io/managed-by=wandb-operator` too, so the label alone does not tell.
    pub fn by_official_application(&self) -> bool {
        self.controller
            .as_ref()
            .is_some_and(|(api, kind)| is_official_application(api, kind))
    }

    /// Whether this operator manages it.
    pub fn is_ours(&self) -> bool {
        self.label(names::MANAGED_BY_LABEL) == Some(names::MANAGED_BY)
            && !self.by_official_application()
    }
}

/// An owner of kind `Application` in the `apps.wandb.com` group: the official v2 operator's.
pub fn is_official_application(api_version: &str, kind: &str) -> bool {
    kind == "Application" && api_version.starts_with("apps.wandb.com/")
}

/// Whose `w` is, for instance `cr` in namespace `ns`: the chart's (Helm-managed, this release)
/// or the official v2 operator's (controlled by an `apps.wandb.com` Application). Anything else
/// (ours, a user's, another release's) is nobody's predecessor.
pub fn predecessor_of(cr: &str, ns: &str, w: &WorkloadMeta) -> Option<Predecessor> {
    let instance = w.label(names::INSTANCE_LABEL);
    // The Application controller labels its workloads with the namespace; the CR's name is
    // accepted too (labels copied from the Application's metadata).
    if w.by_official_application() && (instance == Some(ns) || instance == Some(cr)) {
        return Some(Predecessor::OfficialV2);
    }
    if w.label(names::MANAGED_BY_LABEL) == Some(HELM_MANAGED_BY) && instance == Some(cr) {
        return Some(Predecessor::HelmChart);
    }
    None
}

/// The predecessors present: a Helm release Secret of this release, or any workload of theirs.
pub fn detect(
    cr: &str,
    ns: &str,
    release_secrets: &[String],
    workloads: &[WorkloadMeta],
) -> Vec<Predecessor> {
    let mut found: Vec<Predecessor> = workloads
        .iter()
        .filter_map(|w| predecessor_of(cr, ns, w))
        .collect();
    let release_prefix = format!("{HELM_RELEASE_SECRET_PREFIX}{cr}.v");
    if release_secrets
        .iter()
        .any(|s| s.starts_with(&release_prefix))
    {
        found.push(Predecessor::HelmChart);
    }
    found.sort();
    found.dedup();
    found
}

/// Where a predecessor kept the value of the manifest's generated secret `manifest_name`, as
/// `(Secret, key)` candidates in order. The official v2 operator names them as we do
/// (`<cr>-<name>` or the exact name, key `key`), so those are kept as they are; the chart keeps
/// the session key (rotating it logs every user out) in `<cr>-gorilla-session-key`.
pub fn credential_seeds(cr: &str, manifest_name: &str) -> Vec<(String, String)> {
    match manifest_name {
        "session-key" => vec![(
            format!("{cr}-gorilla-session-key"),
            "GORILLA_SESSION_KEY".to_string(),
        )],
        _ => vec![],
    }
}

/// The application a predecessor workload runs: its `app.kubernetes.io/name`.
fn component(w: &WorkloadMeta) -> Option<&str> {
    w.label("app.kubernetes.io/name")
}

/// One of our applications: its manifest name, legacy (chart) key and Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OurApp {
    pub app: String,
    pub legacy_key: Option<String>,
    pub deployment: DeploymentFact,
}

impl OurApp {
    fn replaces(&self, component: &str) -> bool {
        self.app == component || self.legacy_key.as_deref() == Some(component)
    }
}

/// What to do with the predecessor's workloads in this pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TakeoverPlan {
    pub predecessors: Vec<Predecessor>,
    /// Deployments to delete now: ours for the same application are Available.
    pub remove: Vec<String>,
    /// Deployments kept until ours are Available: `(theirs, ours)`.
    pub waiting: Vec<(String, String)>,
    /// Workloads left in place, with why (nothing of ours replaces them; data).
    pub left: Vec<(String, String)>,
}

impl TakeoverPlan {
    /// Every replaced workload is gone once this pass's removals are done.
    pub fn complete(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// Decides the fate of every predecessor workload. Only Deployments are ever removed, and only
/// once our Deployment for the same application is ready (Available, up to date, every replica
/// ready): until then both serve (the chart's Services select the same labels as ours).
pub fn plan(
    cr: &str,
    ns: &str,
    release_secrets: &[String],
    workloads: &[WorkloadMeta],
    ours: &[OurApp],
) -> TakeoverPlan {
    let mut out = TakeoverPlan {
        predecessors: detect(cr, ns, release_secrets, workloads),
        ..Default::default()
    };
    for w in workloads {
        if predecessor_of(cr, ns, w).is_none() {
            continue;
        }
        let label = format!("{}/{}", w.kind, w.name);
        if w.kind != "Deployment" {
            out.left
                .push((label, "holds data: never removed by the operator".into()));
            continue;
        }
        let Some(c) = component(w) else {
            out.left
                .push((label, "no app.kubernetes.io/name label".into()));
            continue;
        };
        match ours.iter().find(|o| o.replaces(c)) {
            None => out.left.push((
                label,
                format!("no application of this instance replaces {c:?}"),
            )),
            Some(o) if o.deployment.ready() => out.remove.push(w.name.clone()),
            Some(o) => out
                .waiting
                .push((w.name.clone(), o.deployment.name.clone())),
        }
    }
    out
}

/// The official v2 operator runs its own managed services (moco MySQL, opstree Redis,
/// SeaweedFS, Altinity ClickHouse), under names ours do not share: a managed service of ours
/// would start empty beside them. Taking over such an installation needs every service pointed
/// at the existing one as external first; `managed` lists ours as `(kind, instance)`.
pub fn managed_services_refused(
    predecessors: &[Predecessor],
    managed: &[(String, String)],
) -> Option<String> {
    if !predecessors.contains(&Predecessor::OfficialV2) || managed.is_empty() {
        return None;
    }
    let list: Vec<String> = managed.iter().map(|(k, i)| format!("{k}.{i}")).collect();
    Some(format!(
        "taking over the official v2 operator's installation with managed services ({}) would \
         start them empty beside the official operator's data; point each at the existing \
         service as external (spec.<service>.<instance>.external*) first \
         (docs/migrate-from-official.md, In-place takeover)",
        list.join(", ")
    ))
}

/// A predecessor's workload with the name of one of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collision {
    /// The same selector as ours: deleted without its pods (orphaned), so that ours, created
    /// under the name, adopts its ReplicaSet and replaces the pods by a rolling update.
    Adopt { kind: String, name: String },
    /// Anything else: refused, naming what differs (the selector is immutable, and a workload
    /// not clearly the predecessor's is never deleted).
    Refuse {
        kind: String,
        name: String,
        why: String,
    },
}

/// Judges a live workload `live` that has the name of our desired one, whose selector is
/// `ours`. `None`: it is ours already.
pub fn collision(
    cr: &str,
    ns: &str,
    live: &WorkloadMeta,
    ours: &BTreeMap<String, String>,
) -> Option<Collision> {
    if live.is_ours() {
        return None;
    }
    let (kind, name) = (live.kind.clone(), live.name.clone());
    if predecessor_of(cr, ns, live).is_none() {
        return Some(Collision::Refuse {
            kind,
            name,
            why: "it exists and is not managed by wandb-operator nor by the official operator's \
                  release for this resource; rename or delete it"
                .into(),
        });
    }
    if kind != "Deployment" {
        return Some(Collision::Refuse {
            kind,
            name,
            why: "a predecessor's StatefulSet holds data and is never replaced in place".into(),
        });
    }
    match &live.selector {
        Some(s) if s == ours => Some(Collision::Adopt { kind, name }),
        other => Some(Collision::Refuse {
            kind,
            name,
            why: format!(
                "its selector {} differs from ours {} and is immutable; delete it with \
                 `kubectl delete deployment --cascade=orphan`, then the orphaned ReplicaSet once \
                 ours is Available (docs/migrate-from-official.md, In-place takeover)",
                fmt_labels(other.as_ref()),
                fmt_labels(Some(ours)),
            ),
        }),
    }
}

fn fmt_labels(l: Option<&BTreeMap<String, String>>) -> String {
    match l {
        None => "{}".into(),
        Some(l) => format!(
            "{{{}}}",
            l.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// The takeover as the `TakeoverComplete` condition reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakeoverFact {
    pub complete: bool,
    pub message: String,
}

/// The condition's message: who was taken over, what was adopted (Secret names only), what
/// was removed this pass, what waits and what stays.
pub fn fact(plan: &TakeoverPlan, adopted: &[String]) -> Option<TakeoverFact> {
    if plan.predecessors.is_empty() && adopted.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    let who: Vec<&str> = plan.predecessors.iter().map(|p| p.describe()).collect();
    if !who.is_empty() {
        parts.push(format!("predecessor: {}", who.join(" and ")));
    }
    if !adopted.is_empty() {
        parts.push(format!("credentials adopted into {}", adopted.join(", ")));
    }
    if !plan.remove.is_empty() {
        parts.push(format!(
            "removed {} (ours are Available)",
            plan.remove.join(", ")
        ));
    }
    if !plan.waiting.is_empty() {
        let w: Vec<String> = plan
            .waiting
            .iter()
            .map(|(theirs, ours)| format!("{theirs} until {ours} is Available"))
            .collect();
        parts.push(format!("keeping {}", w.join(", ")));
    }
    if plan.complete() {
        parts.push("every replaced workload is gone".into());
    }
    if !plan.left.is_empty() {
        let l: Vec<String> = plan
            .left
            .iter()
            .map(|(o, why)| format!("{o} ({why})"))
            .collect();
        parts.push(format!("left in place: {}", l.join(", ")));
    }
    Some(TakeoverFact {
        complete: plan.complete(),
        message: parts.join("; "),
    })
}

/// The condition once nothing of the predecessor is left to observe (the official v2
/// operator leaves no release Secret behind): a completed takeover stays reported as it was;
/// one in progress whose workloads vanished is complete.
pub fn carried(previous: Option<(bool, &str)>) -> Option<TakeoverFact> {
    let (complete, message) = previous?;
    Some(TakeoverFact {
        complete: true,
        message: if complete {
            message.to_string()
        } else {
            "every replaced workload of the predecessor is gone".into()
        },
    })
}

#[cfg(test)]
mod tests;
