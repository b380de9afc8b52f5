//! `doctor -f FILE` / `doctor NAME`: checks before an install or an upgrade, each finding with
//! its fix. Exit 1 when any check is an error, 2 when the checks could not run.
//!
//! Checked: the CRD is installed, established, serves v2 and matches this binary's; the operator
//! runs (pods labelled `app.kubernetes.io/name=wandb-operator`) and, with leader election, one of
//! them holds a fresh Lease; the server manifest loads and is compatible, and the engine accepts
//! the spec; every Secret and key the pods or the operator will read exists; external services
//! answer the preflight (from where doctor runs); the ingress class, the Gateway API or a default
//! StorageClass exist where the resource needs them; the version change from the running one is
//! not a downgrade and no migration of the running version failed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use wandb_api::{NetworkingMode, WeightsAndBiases};
use wandb_engine::Built;
use wandb_manifest::ServerManifest;

use super::status::Output;
use super::{Cluster, KubeArgs, ManifestArgs, fail};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "file"])))]
pub struct DoctorArgs {
    /// Name of a live WeightsAndBiases.
    pub name: Option<String>,
    /// A WeightsAndBiases resource (YAML) to check before applying it.
    #[arg(short = 'f', long = "filename")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Namespace of the operator (default: found by its label in any namespace).
    #[arg(long)]
    pub operator_namespace: Option<String>,
    /// Name of the operator's leader Lease.
    #[arg(long, default_value = "wandb-operator-leader")]
    pub leader_election_id: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub check: String,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn ok(&mut self, check: &str, message: impl Into<String>) {
        self.push(check, Level::Ok, message.into(), None);
    }
    fn warn(&mut self, check: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Level::Warning, message.into(), Some(fix.into()));
    }
    fn error(&mut self, check: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Level::Error, message.into(), Some(fix.into()));
    }
    fn push(&mut self, check: &str, level: Level, message: String, fix: Option<String>) {
        self.0.push(Finding {
            check: check.into(),
            level,
            message,
            fix,
        });
    }
}

pub fn run(args: &DoctorArgs) -> ExitCode {
    super::block_on(async {
        let cluster = match args.kube.connect().await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let findings = match check(&cluster, args).await {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        match args.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&findings).expect("findings serialize")
            ),
            Output::Text => print!("{}", text(&findings)),
        }
        if findings.iter().any(|f| f.level == Level::Error) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Runs every check.
pub async fn check(cluster: &Cluster, args: &DoctorArgs) -> Result<Vec<Finding>, String> {
    let mut f = Findings::default();
    crd(cluster, &mut f).await;
    operator(cluster, args, &mut f).await;
    let wb: Api<WeightsAndBiases> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let (cr, live) = match (&args.file, &args.name) {
        (Some(file), _) => {
            let cr = super::read_cr_file(file, &cluster.namespace)?;
            let live = wb.get_opt(&cr.name_any()).await.ok().flatten();
            (cr, live)
        }
        (None, Some(name)) => match wb.get_opt(name).await {
            Ok(Some(cr)) => (cr.clone(), Some(cr)),
            Ok(None) => {
                f.error(
                    "resource",
                    format!("WeightsAndBiases {}/{name} not found", cluster.namespace),
                    "check the name and -n NAMESPACE, or use doctor -f FILE before creating it",
                );
                return Ok(f.0);
            }
            Err(e) => {
                f.error(
                    "resource",
                    format!(
                        "cannot read WeightsAndBiases {}/{name}: {e}",
                        cluster.namespace
                    ),
                    "install the CRD (see above) and check your permissions",
                );
                return Ok(f.0);
            }
        },
        (None, None) => return Err("give NAME or -f FILE".into()),
    };
    upgrade_path(&cr, live.as_ref(), &mut f);
    let manifest = match args.manifest.load(&cr, Some(cluster)).await {
        Ok(m) => {
            f.ok(
                "manifest",
                format!(
                    "{} version {} loads and is compatible with this operator",
                    args.manifest.location_for(&cr),
                    cr.spec.wandb.version
                ),
            );
            m
        }
        Err(e) => {
            f.error(
                "manifest",
                e,
                "check spec.wandb.version and spec.wandb.manifestRepository (registry reachable, \
                 tag present, imagePullSecrets for a private registry); an incompatible manifest \
                 needs a newer operator",
            );
            return Ok(f.0);
        }
    };
    let built = match super::plan(&cr, &manifest) {
        Ok(b) => {
            f.ok("spec", "the engine accepts the spec");
            b
        }
        Err(e) => {
            f.error("spec", e, "fix the named fields of the resource");
            return Ok(f.0);
        }
    };
    secrets(cluster, &cr, &built, &manifest, &mut f).await?;
    preflight(cluster, &cr, &built, &mut f).await?;
    networking(cluster, &built, &mut f).await;
    storage(cluster, &built, &mut f).await;
    Ok(f.0)
}

/// The CRD is installed, established, serves v2, and its schema is this binary's.
async fn crd(cluster: &Cluster, f: &mut Findings) {
    const CHECK: &str = "crd";
    let ours = wandb_api::crd();
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let installed = match api.get_opt(&ours.name_any()).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return f.error(
                CHECK,
                format!("the CRD {} is not installed", ours.name_any()),
                "wandb-operator crd | kubectl apply --server-side -f -   (or install the Helm chart)",
            );
        }
        Err(e) => {
            return f.warn(
                CHECK,
                format!("cannot read CustomResourceDefinitions: {e}"),
                "run doctor with permission to get customresourcedefinitions",
            );
        }
    };
    let established = installed
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    let schema = |c: &CustomResourceDefinition| {
        c.spec.versions.iter().find(|v| v.name == "v2").map(|v| {
            (
                v.served,
                serde_json::to_value(&v.schema).unwrap_or_default(),
            )
        })
    };
    match (established, schema(&installed), schema(&ours)) {
        (false, _, _) => f.error(
            CHECK,
            "the CRD is installed but not Established",
            "kubectl describe crd weightsandbiases.apps.wandb.com (its conditions say why)",
        ),
        (_, None, _) | (_, Some((false, _)), _) => f.error(
            CHECK,
            "the installed CRD does not serve apps.wandb.com/v2",
            "wandb-operator crd | kubectl apply --server-side -f -",
        ),
        (_, Some((_, installed)), Some((_, ours))) if installed != ours => f.warn(
            CHECK,
            format!(
                "the installed CRD's v2 schema differs from this binary's (wandb-operator {}): an older or newer operator installed it",
                env!("CARGO_PKG_VERSION")
            ),
            "use the doctor of the operator version you run, or upgrade the CRD with the operator (Helm upgrades it; else wandb-operator crd | kubectl apply --server-side -f -)",
        ),
        _ => f.ok(CHECK, "installed, established, serving v2, current"),
    }
}

/// Operator pods ready and, with leader election, a Lease held by one of them and renewed.
async fn operator(cluster: &Cluster, args: &DoctorArgs, f: &mut Findings) {
    const CHECK: &str = "operator";
    let lp = ListParams::default().labels("app.kubernetes.io/name=wandb-operator");
    let api: Api<Pod> = match &args.operator_namespace {
        Some(ns) => Api::namespaced(cluster.client.clone(), ns),
        None => Api::all(cluster.client.clone()),
    };
    let pods = match api.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            return f.warn(
                CHECK,
                format!("cannot list the operator's pods: {e}"),
                "run doctor with permission to list pods, or pass --operator-namespace",
            );
        }
    };
    let ready: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect();
    if pods.is_empty() {
        let place = match &args.operator_namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "the cluster".into(),
        };
        return f.error(
            CHECK,
            format!("no operator pod (label app.kubernetes.io/name=wandb-operator) in {place}"),
            "install the operator (helm install wandb-operator charts/wandb-operator); an operator \
             running outside the cluster is not seen by this check",
        );
    }
    if ready.is_empty() {
        return f.error(
            CHECK,
            format!("{} operator pod(s), none Ready", pods.len()),
            "kubectl describe pod -l app.kubernetes.io/name=wandb-operator; kubectl logs -l app.kubernetes.io/name=wandb-operator",
        );
    }
    let ns = ready[0].namespace().unwrap_or_default();
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &ns);
    let names: BTreeSet<String> = pods.iter().map(|p| p.name_any()).collect();
    match leases.get_opt(&args.leader_election_id).await {
        Ok(None) if ready.len() == 1 => f.ok(
            CHECK,
            format!("1 pod Ready in {ns} (leader election off)"),
        ),
        Ok(None) => f.error(
            CHECK,
            format!("{} operator pods Ready but no Lease {ns}/{}: without leader election they all reconcile", ready.len(), args.leader_election_id),
            "set leaderElection.enabled=true in the chart (or --leader-elect), or run one replica",
        ),
        Ok(Some(lease)) => {
            let spec = lease.spec.unwrap_or_default();
            let holder = spec.holder_identity.unwrap_or_default();
            let fresh = match (&spec.renew_time, spec.lease_duration_seconds) {
                (Some(t), Some(d)) => {
                    let age = k8s_openapi::jiff::Timestamp::now().duration_since(t.0);
                    age.as_secs() <= i64::from(d) * 2
                }
                _ => false,
            };
            if names.contains(&holder) && fresh {
                f.ok(CHECK, format!("{} pod(s) Ready in {ns}; {holder} leads", ready.len()));
            } else if !fresh {
                f.error(
                    CHECK,
                    format!("the Lease {ns}/{} (holder {holder:?}) is not being renewed: no replica leads", args.leader_election_id),
                    "kubectl logs -l app.kubernetes.io/name=wandb-operator (look for leader election errors; RBAC on leases)",
                );
            } else {
                f.warn(
                    CHECK,
                    format!("the Lease is held by {holder:?}, which is not a current operator pod"),
                    "wait one lease period for a running replica to take over",
                );
            }
        }
        Err(e) => f.warn(
            CHECK,
            format!("cannot read the leader Lease: {e}"),
            "run doctor with permission to get leases",
        ),
    }
}

/// Downgrades are refused; a failed migration of the running version is reported.
fn upgrade_path(cr: &WeightsAndBiases, live: Option<&WeightsAndBiases>, f: &mut Findings) {
    const CHECK: &str = "upgrade";
    let desired = &cr.spec.wandb.version;
    let status = live.and_then(|l| l.status.as_ref());
    let Some(running) = status.and_then(|s| s.version.as_deref()) else {
        return f.ok(
            CHECK,
            format!("new installation of {desired} (nothing running yet)"),
        );
    };
    let migration = status
        .and_then(|s| s.wandb.as_ref())
        .and_then(|w| w.migration.as_ref());
    if let Some(m) = migration.filter(|m| m.phase == Some(wandb_api::MigrationPhase::Failed)) {
        f.error(
            CHECK,
            format!(
                "a migration for {} failed: {}",
                m.version.as_deref().unwrap_or("?"),
                m.reason.as_deref().unwrap_or("see the MigrationsComplete condition")
            ),
            "fix the cause (wandb-operator status NAME shows the Job), delete the failed Job to retry, or set spec.wandb.version back",
        );
    }
    let parse = |v: &str| semver::Version::parse(v.trim_start_matches('v')).ok();
    match (parse(running), parse(desired)) {
        (Some(r), Some(d)) if d < r => f.error(
            CHECK,
            format!("{running} -> {desired} is a downgrade: the database schema of {running} stays"),
            format!("keep spec.wandb.version at {running} or later; going back needs a database backup taken on {desired}"),
        ),
        (Some(r), Some(d)) if d == r => f.ok(CHECK, format!("{running} runs; no version change")),
        (Some(_), Some(_)) => f.ok(
            CHECK,
            format!("{running} -> {desired}: an upgrade (its migrations run before the new version starts)"),
        ),
        _ => f.warn(
            CHECK,
            format!("cannot compare versions {running} and {desired} (not semantic versions)"),
            "check the W&B release notes for the supported upgrade path",
        ),
    }
}

/// Secret references of `v`'s pod templates: (Secret, key or whole, optional).
fn secret_refs(v: &Value, out: &mut Vec<(String, Option<String>)>) {
    match v {
        Value::Object(m) => {
            let required = |o: &Value| o.get("optional").and_then(Value::as_bool) != Some(true);
            if let Some(r) = m.get("secretKeyRef").filter(|r| required(r))
                && let (Some(n), Some(k)) = (r["name"].as_str(), r["key"].as_str())
            {
                out.push((n.into(), Some(k.into())));
            }
            if let Some(r) = m.get("secretRef").filter(|r| required(r))
                && let Some(n) = r["name"].as_str()
            {
                out.push((n.into(), None));
            }
            if let Some(r) = m.get("secret").filter(|r| required(r))
                && let Some(n) = r["secretName"].as_str()
            {
                out.push((n.into(), None));
            }
            m.values().for_each(|c| secret_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| secret_refs(c, out)),
        _ => {}
    }
}

/// Every Secret (and key) the pods read exists, except those the operator or a migration
/// creates.
async fn secrets(
    cluster: &Cluster,
    cr: &WeightsAndBiases,
    built: &Built,
    manifest: &ServerManifest,
    f: &mut Findings,
) -> Result<(), String> {
    const CHECK: &str = "secrets";
    let mut exempt: BTreeSet<String> = built.secrets.iter().map(|s| s.name.clone()).collect();
    exempt.extend(
        manifest
            .migrations
            .keys()
            .flat_map(|m| manifest.migration_env(m).unwrap_or_default())
            .filter(|e| e.name.ends_with("_SECRET_NAME"))
            .filter_map(|e| e.value),
    );
    let mut refs = Vec::new();
    for o in &built.objects {
        secret_refs(&o.object, &mut refs);
    }
    refs.sort();
    refs.dedup();
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut problems = Vec::new();
    let present = |name: &str| {
        let api = api.clone();
        let name = name.to_string();
        async move {
            api.get_opt(&name)
                .await
                .map_err(|e| format!("reading Secret {name}: {e}"))
        }
    };
    // Every Secret the spec names (license, OIDC, SMTP, proxy, image pull, external services).
    let named = wandb_engine::references::user_secrets(cr);
    for name in &named {
        if present(name).await?.is_none() {
            problems.push(format!("Secret {name} not found"));
        }
    }
    // Every key the pods read of a Secret that is not the operator's or a migration's.
    let yours: Vec<&(String, Option<String>)> =
        refs.iter().filter(|(n, _)| !exempt.contains(n)).collect();
    for (name, key) in &yours {
        match present(name).await? {
            None => problems.push(format!("Secret {name} not found")),
            Some(s) => {
                if let Some(k) = key {
                    let has = s.data.as_ref().is_some_and(|d| d.contains_key(k))
                        || s.string_data.as_ref().is_some_and(|d| d.contains_key(k));
                    if !has {
                        problems.push(format!("Secret {name} has no key {k}"));
                    }
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        f.ok(
            CHECK,
            format!(
                "the {} Secret(s) the spec names exist; of the pods' {} Secret reference(s), {} are to Secrets the operator or a migration creates and the other {} resolve",
                named.len(),
                refs.len(),
                refs.len() - yours.len(),
                yours.len()
            ),
        );
    } else {
        f.error(
            CHECK,
            problems.join("; "),
            format!(
                "create the Secrets and keys in namespace {} (kubectl create secret generic NAME --from-literal=KEY=...)",
                cluster.namespace
            ),
        );
    }
    Ok(())
}

/// External services answer the preflight (their Secret keys read first).
async fn preflight(
    cluster: &Cluster,
    cr: &WeightsAndBiases,
    built: &Built,
    f: &mut Findings,
) -> Result<(), String> {
    let found = super::preflight::run(&cluster.client, &cluster.namespace, cr, built).await?;
    for x in found {
        let check = format!("service {}/{}", x.kind, x.instance);
        match (&x.problem, x.endpoint.is_some()) {
            (Some(p), false) => f.error(
                &check,
                p.clone(),
                format!("create the Secret keys spec.{}.{} names", x.kind, x.instance),
            ),
            (Some(p), true) => f.warn(
                &check,
                p.clone(),
                "check the host, port and TLS settings in the Secret, DNS and firewalls; this ran from where doctor runs, the operator repeats it from the cluster",
            ),
            (None, _) => f.ok(
                &check,
                match (&x.endpoint, &x.skipped) {
                    (_, Some(why)) => format!("not checked: {why}"),
                    (Some(e), None) => format!("{e} answers"),
                    (None, None) => "ok".into(),
                },
            ),
        }
    }
    Ok(())
}

/// The ingress class or the Gateway API, as the networking mode needs.
async fn networking(cluster: &Cluster, built: &Built, f: &mut Findings) {
    const CHECK: &str = "networking";
    match built.instance.networking {
        NetworkingMode::Ingress => {
            let class = built
                .objects
                .iter()
                .find(|o| o.kind == "Ingress")
                .and_then(|o| o.object.pointer("/spec/ingressClassName"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let api: Api<IngressClass> = Api::all(cluster.client.clone());
            let classes = match api.list(&ListParams::default()).await {
                Ok(l) => l.items,
                Err(e) => {
                    return f.warn(
                        CHECK,
                        format!("cannot list IngressClasses: {e}"),
                        "run doctor with permission to list ingressclasses",
                    );
                }
            };
            match class {
                Some(c) if classes.iter().any(|x| x.name_any() == c) => {
                    f.ok(CHECK, format!("IngressClass {c} exists"));
                }
                Some(c) => f.error(
                    CHECK,
                    format!("IngressClass {c} (spec.networking) does not exist: nothing will serve the Ingress"),
                    "install that ingress controller, or name an existing class (kubectl get ingressclass)",
                ),
                None => {
                    let default = classes.iter().find(|x| {
                        x.annotations()
                            .get("ingressclass.kubernetes.io/is-default-class")
                            .is_some_and(|v| v == "true")
                    });
                    match default {
                        Some(d) => f.ok(CHECK, format!("no class named; the default IngressClass {} serves it", d.name_any())),
                        None => f.warn(
                            CHECK,
                            "the Ingress names no class and the cluster has no default IngressClass",
                            "set the ingress class in spec.networking, or mark one default (ingressclass.kubernetes.io/is-default-class=true)",
                        ),
                    }
                }
            }
        }
        NetworkingMode::Gateway => {
            if crate::controller::gateway_api_served(&cluster.client).await {
                f.ok(
                    CHECK,
                    "the cluster serves the Gateway API (gateway.networking.k8s.io/v1)",
                );
            } else {
                f.error(
                    CHECK,
                    crate::status::GATEWAY_API_MISSING,
                    "install the Gateway API CRDs (standard channel) and a Gateway controller",
                );
            }
        }
        _ => {
            f.ok(
                CHECK,
                "no Ingress or Gateway needed in this networking mode",
            );
        }
    }
}

/// Managed services' volume claims need their StorageClass, or a default one.
async fn storage(cluster: &Cluster, built: &Built, f: &mut Findings) {
    const CHECK: &str = "storage";
    let mut wanted: BTreeSet<Option<String>> = BTreeSet::new();
    for o in built.objects.iter().filter(|o| o.kind == "StatefulSet") {
        for t in o
            .object
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            wanted.insert(
                t.pointer("/spec/storageClassName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            );
        }
    }
    if wanted.is_empty() {
        return f.ok(CHECK, "no persistent volumes needed (no managed service)");
    }
    let api: Api<StorageClass> = Api::all(cluster.client.clone());
    let classes = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return f.warn(
                CHECK,
                format!("cannot list StorageClasses: {e}"),
                "run doctor with permission to list storageclasses",
            );
        }
    };
    for w in wanted {
        match w {
            Some(c) if classes.iter().any(|x| x.name_any() == c) => {
                f.ok(CHECK, format!("StorageClass {c} exists"));
            }
            Some(c) => f.error(
                CHECK,
                format!(
                    "StorageClass {c} does not exist: the managed services' volumes stay Pending"
                ),
                "create it, or name an existing one (kubectl get storageclass)",
            ),
            None => {
                let default = classes.iter().find(|x| {
                    x.annotations()
                        .get("storageclass.kubernetes.io/is-default-class")
                        .is_some_and(|v| v == "true")
                });
                match default {
                    Some(d) => f.ok(CHECK, format!("managed services' volumes use the default StorageClass {}", d.name_any())),
                    None => f.error(
                        CHECK,
                        "managed services need volumes, they name no StorageClass and the cluster has no default one: their claims stay Pending",
                        "mark a StorageClass default (storageclass.kubernetes.io/is-default-class=true) or use external services",
                    ),
                }
            }
        }
    }
}

/// Findings as lines: `[ok]`, `[warning]`, `[ERROR]`, each problem with its fix.
pub fn text(findings: &[Finding]) -> String {
    let mut o = String::new();
    for x in findings {
        let tag = match x.level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "ERROR",
        };
        o.push_str(&format!("[{tag}] {}: {}\n", x.check, x.message));
        if let Some(fix) = &x.fix {
            o.push_str(&format!("    fix: {fix}\n"));
        }
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    o.push_str(&format!("{errors} error(s), {warnings} warning(s)\n"));
    o
}
