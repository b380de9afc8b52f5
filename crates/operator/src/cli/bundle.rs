//! `support-bundle NAME -o FILE.tar.gz`: everything needed to debug an instance, redacted.
//!
//! Contents (under `wandb-support-<name>/`): `README.txt` (what is inside and what could not be
//! collected), `instance.yaml` (the resource and its status), `status.txt`/`status.json`,
//! `events.yaml` (every event of the namespace), `objects/<Kind>/<name>.yaml` (everything the
//! operator made for the instance, plus its Pods and PersistentVolumeClaims), `manifest.txt`
//! (the server manifest as the operator uses it), `preflight.txt`, `cluster.yaml` (version and
//! nodes), `operator/` (Lease, Deployment, and the operator pods' logs and metrics when it runs
//! in the cluster; best effort, said so in the README).
//!
//! Redaction: every Secret value (keys kept), URL credentials, credential-named env values (see
//! [`super::redact`]); then every value of every Secret of the namespace is searched for in
//! every file, raw and base64, and replaced. The bundle is assembled in memory and written only
//! when that final check passes; it is not written at all when the namespace's Secrets cannot be
//! read (their values could not be searched for).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use kube::api::{DynamicObject, ListParams, LogParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::redact::Redactor;
use super::{Cluster, KubeArgs, ManifestArgs, fail};
use crate::apply::{self, KINDS, is_not_served};

#[derive(Args, Debug)]
pub struct BundleArgs {
    /// Name of the WeightsAndBiases resource.
    pub name: String,
    /// Where to write the bundle (`.tar.gz`).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Namespace of the operator (default: found by its label in any namespace).
    #[arg(long)]
    pub operator_namespace: Option<String>,
    /// Log lines per operator pod.
    #[arg(long, default_value_t = 5000)]
    pub log_lines: i64,
}

/// Label of the operator's pods (the chart's `app.kubernetes.io/name`).
const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name=wandb-operator";

/// Files of the bundle, before redaction.
#[derive(Default)]
struct Files {
    entries: Vec<(String, Vec<u8>)>,
    /// What could not be collected, for the README.
    missing: Vec<String>,
}

impl Files {
    fn object(&mut self, path: &str, redactor: &Redactor, mut v: Value) {
        redactor.value(&mut v);
        let yaml = serde_saphyr::to_string(&v).unwrap_or_else(|e| format!("# {e}\n"));
        self.entries.push((path.to_string(), yaml.into_bytes()));
    }

    fn text(&mut self, path: &str, redactor: &Redactor, text: &str) {
        self.entries
            .push((path.to_string(), redactor.text(text).into_bytes()));
    }
}

pub fn run(args: &BundleArgs) -> ExitCode {
    super::block_on(async {
        let cluster = match args.kube.connect().await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        match collect(&cluster, args).await {
            Ok(summary) => {
                eprintln!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        }
    })
}

/// Collects, redacts, verifies and writes the bundle; returns a one-line summary.
pub async fn collect(cluster: &Cluster, args: &BundleArgs) -> Result<String, String> {
    let ns = &cluster.namespace;
    let name = &args.name;
    let cr = super::get_cr(cluster, name).await?;
    let redactor = secret_values(cluster).await?;
    let mut f = Files::default();
    let mut cr_value = serde_json::to_value(&cr).expect("resources serialize");
    cr_value["apiVersion"] = "apps.wandb.com/v2".into();
    cr_value["kind"] = "WeightsAndBiases".into();
    f.object("instance.yaml", &redactor, cr_value);

    match super::status::report(cluster, name, 50).await {
        Ok(r) => {
            f.text("status.txt", &redactor, &super::status::text(&r));
            let json = serde_json::to_string_pretty(&r).expect("reports serialize");
            f.text("status.json", &redactor, &json);
        }
        Err(e) => f.missing.push(format!("status: {e}")),
    }

    let events: Api<Event> = Api::namespaced(cluster.client.clone(), ns);
    match events.list(&ListParams::default()).await {
        Ok(list) => {
            let v = serde_json::to_value(&list.items).expect("events serialize");
            f.object("events.yaml", &redactor, v);
        }
        Err(e) => f.missing.push(format!("events: {e}")),
    }

    owned_objects(cluster, name, &redactor, &mut f).await;

    // The manifest and the preflight need a plan.
    match args.manifest.load(&cr, Some(cluster)).await {
        Ok(manifest) => {
            let location = args.manifest.location_for(&cr);
            f.text(
                "manifest.txt",
                &redactor,
                &format!(
                    "# Server manifest {location}, version {}, as the operator uses it (parsed and merged)\n{manifest:#?}\n",
                    cr.spec.wandb.version
                ),
            );
            match super::plan(&cr, &manifest) {
                Ok(built) => {
                    let text = match super::preflight::run(&cluster.client, ns, &cr, &built).await {
                        Ok(found) if found.is_empty() => {
                            "no external services (managed services are not preflighted)\n".into()
                        }
                        Ok(found) => found.iter().map(|x| x.line() + "\n").collect(),
                        Err(e) => format!("preflight could not run: {e}\n"),
                    };
                    f.text(
                        "preflight.txt",
                        &redactor,
                        &format!(
                            "# Run from where support-bundle ran, not from the cluster\n{text}"
                        ),
                    );
                }
                Err(e) => f.missing.push(format!("plan (for the preflight): {e}")),
            }
        }
        Err(e) => f.missing.push(format!("server manifest: {e}")),
    }

    cluster_info(cluster, &redactor, &mut f).await;
    operator(cluster, args, &redactor, &mut f).await;

    let root = format!("wandb-support-{name}");
    let readme = readme(&cluster.namespace, name, &f, &redactor);
    f.text("README.txt", &redactor, &readme);
    let bytes = archive(&root, &f.entries)?;
    // The last check: no file may still hold a Secret value.
    for (path, content) in &f.entries {
        redactor
            .verify(content)
            .map_err(|e| format!("{path}: {e}; refusing to write the bundle"))?;
    }
    std::fs::write(&args.output, &bytes)
        .map_err(|e| format!("writing {}: {e}", args.output.display()))?;
    Ok(format!(
        "wrote {} ({} files, {} bytes; {} Secret values redacted wherever found){}",
        args.output.display(),
        f.entries.len(),
        bytes.len(),
        redactor.len(),
        if f.missing.is_empty() {
            String::new()
        } else {
            format!(
                "; {} item(s) could not be collected, see README.txt",
                f.missing.len()
            )
        }
    ))
}

/// Every value of every Secret of the namespace; refuses when they cannot be read.
async fn secret_values(cluster: &Cluster) -> Result<Redactor, String> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = api.list(&ListParams::default()).await.map_err(|e| {
        format!(
            "cannot list the Secrets of namespace {} to redact their values ({e}); refusing to write a bundle",
            cluster.namespace
        )
    })?;
    let mut values: Vec<Vec<u8>> = Vec::new();
    for s in list.items {
        values.extend(s.data.unwrap_or_default().into_values().map(|b| b.0));
        values.extend(
            s.string_data
                .unwrap_or_default()
                .into_values()
                .map(String::into_bytes),
        );
    }
    Ok(Redactor::new(values.iter().map(Vec::as_slice)))
}

/// The operator's objects of the instance (by label), its Pods and PersistentVolumeClaims.
async fn owned_objects(cluster: &Cluster, name: &str, redactor: &Redactor, f: &mut Files) {
    let selector = super::status::instance_selector(name);
    let mut kinds: Vec<(&str, &str)> = KINDS.iter().map(|(v, k, _)| (*v, *k)).collect();
    kinds.extend([("v1", "Pod"), ("v1", "PersistentVolumeClaim")]);
    for (api_version, kind) in kinds {
        let api = Api::<DynamicObject>::namespaced_with(
            cluster.client.clone(),
            &cluster.namespace,
            &apply::api_resource(api_version, kind),
        );
        // Pods and claims carry the instance label but not always managed-by (templates and
        // claim templates set what they set).
        let lp = if matches!(kind, "Pod" | "PersistentVolumeClaim") {
            ListParams::default().labels(&format!(
                "{}={}",
                wandb_engine::names::INSTANCE_LABEL,
                wandb_engine::names::label_value(name)
            ))
        } else {
            ListParams::default().labels(&selector)
        };
        match api.list(&lp).await {
            Ok(list) => {
                for item in list {
                    let path = format!("objects/{kind}/{}.yaml", item.name_any());
                    let mut v = serde_json::to_value(&item).expect("objects serialize");
                    v["apiVersion"] = api_version.into();
                    v["kind"] = kind.into();
                    f.object(&path, redactor, v);
                }
            }
            Err(e) if is_not_served(&e) => {}
            Err(e) => f.missing.push(format!("{kind} objects: {e}")),
        }
    }
}

/// Server version and a node summary.
async fn cluster_info(cluster: &Cluster, redactor: &Redactor, f: &mut Files) {
    let version = match cluster.client.apiserver_version().await {
        Ok(v) => json!({"gitVersion": v.git_version, "platform": v.platform}),
        Err(e) => {
            f.missing.push(format!("server version: {e}"));
            Value::Null
        }
    };
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let nodes = match nodes.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .map(|n| {
                let status = n.status.clone().unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status.clone());
                let info = status.node_info;
                json!({
                    "name": n.name_any(),
                    "ready": ready,
                    "kubelet": info.as_ref().map(|i| i.kubelet_version.clone()),
                    "os": info.as_ref().map(|i| format!("{}/{}", i.operating_system, i.architecture)),
                    "allocatable": status.allocatable,
                    "taints": n.spec.as_ref().and_then(|s| s.taints.clone()),
                    "unschedulable": n.spec.as_ref().and_then(|s| s.unschedulable),
                })
            })
            .collect(),
        Err(e) => {
            f.missing.push(format!("nodes: {e}"));
            Vec::new()
        }
    };
    f.object(
        "cluster.yaml",
        redactor,
        json!({"version": version, "nodes": nodes}),
    );
}

/// The operator's Deployment, Lease, logs and metrics, when it runs in this cluster.
async fn operator(cluster: &Cluster, args: &BundleArgs, redactor: &Redactor, f: &mut Files) {
    let lp = ListParams::default().labels(OPERATOR_SELECTOR);
    let pods: Api<Pod> = match &args.operator_namespace {
        Some(ns) => Api::namespaced(cluster.client.clone(), ns),
        None => Api::all(cluster.client.clone()),
    };
    let pods = match pods.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            f.missing.push(format!(
                "operator pods ({OPERATOR_SELECTOR}): {e}; no operator logs or metrics"
            ));
            return;
        }
    };
    if pods.is_empty() {
        f.missing.push(format!(
            "operator: no pod labelled {OPERATOR_SELECTOR} in the cluster (not running in-cluster?); no operator logs or metrics"
        ));
        return;
    }
    let mut namespaces: Vec<String> = pods.iter().filter_map(|p| p.namespace()).collect();
    namespaces.dedup();
    for ns in &namespaces {
        let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), ns);
        if let Ok(list) = deployments.list(&lp).await {
            for d in list {
                let mut v = serde_json::to_value(&d).expect("objects serialize");
                v["apiVersion"] = "apps/v1".into();
                v["kind"] = "Deployment".into();
                f.object(
                    &format!("operator/{ns}/deployment-{}.yaml", d.name_any()),
                    redactor,
                    v,
                );
            }
        }
        let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), ns);
        match leases.get_opt("wandb-operator-leader").await {
            Ok(Some(l)) => {
                let v = serde_json::to_value(&l).expect("objects serialize");
                f.object(&format!("operator/{ns}/lease.yaml"), redactor, v);
            }
            Ok(None) => f.missing.push(format!(
                "operator Lease {ns}/wandb-operator-leader: none (leader election off)"
            )),
            Err(e) => f.missing.push(format!("operator Lease in {ns}: {e}")),
        }
    }
    for pod in pods {
        let pns = pod.namespace().unwrap_or_default();
        let pname = pod.name_any();
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &pns);
        let params = LogParams {
            tail_lines: Some(args.log_lines),
            timestamps: true,
            ..Default::default()
        };
        match api.logs(&pname, &params).await {
            Ok(logs) => f.text(&format!("operator/{pns}/{pname}.log"), redactor, &logs),
            Err(e) => f
                .missing
                .push(format!("logs of operator pod {pns}/{pname}: {e}")),
        }
        match metrics(cluster, &pod).await {
            Ok(m) => f.text(&format!("operator/{pns}/{pname}.metrics.txt"), redactor, &m),
            Err(e) => f
                .missing
                .push(format!("metrics of operator pod {pns}/{pname}: {e}")),
        }
    }
}

/// `/metrics` of an operator pod through the API server's pod proxy, on the port of its
/// `--metrics-bind-address` (8080 by default).
async fn metrics(cluster: &Cluster, pod: &Pod) -> Result<String, String> {
    let port = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.args.as_ref())
        .and_then(|args| {
            args.iter()
                .find_map(|a| a.strip_prefix("--metrics-bind-address="))
                .map(|addr| addr.rsplit(':').next().unwrap_or("8080").to_string())
        })
        .unwrap_or_else(|| "8080".into());
    if port == "0" {
        return Err("metrics are disabled (--metrics-bind-address=0)".into());
    }
    let path = format!(
        "/api/v1/namespaces/{}/pods/{}:{port}/proxy/metrics",
        pod.namespace().unwrap_or_default(),
        pod.name_any()
    );
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    cluster
        .client
        .request_text(req)
        .await
        .map_err(|e| short(&e))
}

/// The API server's message of an error, without kube's debug dump of the status.
fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

fn readme(ns: &str, name: &str, f: &Files, redactor: &Redactor) -> String {
    let mut s = format!(
        "W&B operator support bundle for WeightsAndBiases {ns}/{name}\n\
         Written by `wandb-operator support-bundle` {}.\n\n\
         Redacted: every Secret value (keys kept), credentials inside URLs, env values whose name\n\
         says they are credentials, last-applied-configuration annotations; then each of the {}\n\
         values of the namespace's Secrets (raw and base64, {} characters or more) wherever found.\n\n\
         Files:\n",
        env!("CARGO_PKG_VERSION"),
        redactor.len(),
        super::redact::MIN_SCANNED_LEN
    );
    for (path, _) in &f.entries {
        s.push_str("  ");
        s.push_str(path);
        s.push('\n');
    }
    s.push_str("\nNot collected (best effort):\n");
    if f.missing.is_empty() {
        s.push_str("  nothing\n");
    }
    for m in &f.missing {
        s.push_str("  - ");
        s.push_str(m);
        s.push('\n');
    }
    s
}

/// A gzipped tar of `entries` under `root/`.
fn archive(root: &str, entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_cksum();
        tar.append_data(&mut header, format!("{root}/{path}"), content.as_slice())
            .map_err(|e| format!("archiving {path}: {e}"))?;
    }
    let gz = tar.into_inner().map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}
