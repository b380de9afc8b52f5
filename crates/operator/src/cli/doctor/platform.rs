//! Checks of the cluster and the operator: the CRD and the operator's pods and Lease.

use std::collections::BTreeSet;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::{DoctorArgs, Findings};
use crate::cli::Cluster;

/// The CRD is installed, established, serves v2, and its schema is this binary's.
pub(super) async fn crd(cluster: &Cluster, f: &mut Findings) {
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
pub(super) async fn operator(cluster: &Cluster, args: &DoctorArgs, f: &mut Findings) {
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
