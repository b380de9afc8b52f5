//! The apply engine on the local control plane. A removal is a change: every setting a user
//! takes out of the resource disappears from the live objects (server-side apply drops the
//! fields the operator no longer applies). A settled pass writes nothing to etcd.

mod common;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PodSpec, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, ResourceExt};
use wandb_api::WeightsAndBiases;
use wandb_testkit::wait_for;

use common::{TIMEOUT, start, wait_ready};

const NAME: &str = "rm";

/// The instance without any of the removable settings (built-in manifest, managed services).
const BASE: &str = "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: rm}\nspec:\n  \
    networking: {mode: ingress, ingress: {ingressClassName: nginx}}\n  \
    wandb: {hostname: http://rm.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n";

/// [`BASE`] plus one setting of every kind that must also go away again.
const FULL: &str = "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: rm}\nspec:\n  \
    networking: {mode: ingress, ingress: {ingressClassName: nginx}, annotations: {example.com/edge: \"yes\"}}\n  \
    tolerations: [{key: dedicated, operator: Equal, value: wandb, effect: NoSchedule}]\n  \
    affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, preference: {matchExpressions: [{key: zone, operator: In, values: [a]}]}}]}}\n  \
    redis: {default: {managedRedis: {config: {resources: {requests: {memory: 3Gi}}}}}}\n  \
    wandb:\n    hostname: http://rm.local\n    version: \"0.84.0\"\n    manifestRepository: \"builtin://\"\n    \
    serviceAccount: {annotations: {eks.amazonaws.com/role-arn: \"arn:aws:iam::1:role/w\"}}\n    \
    security: {hideUpgradeBanner: true}\n    \
    features: {console: true}\n    \
    applications: {app: {autoscaling: {minReplicas: 1, maxReplicas: 3}}}\n";

/// Each removable setting as it shows in the live objects.
#[derive(Debug, Default, PartialEq)]
struct Present {
    service_account_annotation: bool,
    ingress_annotation: bool,
    tolerations: bool,
    affinity: bool,
    redis_memory_request: bool,
    env_var: bool,
    console_app: bool,
    hpa: bool,
}

fn pod_spec(d: &Deployment) -> PodSpec {
    d.spec
        .clone()
        .and_then(|s| s.template.spec)
        .unwrap_or_default()
}

async fn observe(ns: &wandb_testkit::TestNamespace) -> anyhow::Result<Present> {
    let sa = ns
        .api::<ServiceAccount>()
        .get(&format!("{NAME}-app"))
        .await?;
    let ingress = ns.api::<Ingress>().get(NAME).await?;
    let deployments: Api<Deployment> = ns.api();
    let app = pod_spec(&deployments.get(&format!("{NAME}-app")).await?);
    let redis = ns
        .api::<StatefulSet>()
        .get(&format!("{NAME}-redis"))
        .await?;
    // A request: limits are dropped at the default size (no `requireLimits`).
    let redis_requests = redis
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.resources)
        .and_then(|r| r.requests)
        .unwrap_or_default();
    Ok(Present {
        service_account_annotation: sa.annotations().contains_key("eks.amazonaws.com/role-arn"),
        ingress_annotation: ingress.annotations().contains_key("example.com/edge"),
        tolerations: app
            .tolerations
            .unwrap_or_default()
            .iter()
            .any(|t| t.key.as_deref() == Some("dedicated")),
        affinity: app.affinity.is_some_and(|a| a.node_affinity.is_some()),
        redis_memory_request: redis_requests.get("memory").map(|q| q.0.as_str()) == Some("3Gi"),
        env_var: app.containers[0]
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "GORILLA_ONPREM_HIDE_UPGRADE_BANNER"),
        console_app: deployments
            .get_opt(&format!("{NAME}-console"))
            .await?
            .is_some_and(|d| d.metadata.deletion_timestamp.is_none()),
        hpa: ns
            .api::<HorizontalPodAutoscaler>()
            .get_opt(&format!("{NAME}-app"))
            .await?
            .is_some_and(|h| h.metadata.deletion_timestamp.is_none()),
    })
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn every_setting_taken_out_of_the_resource_disappears_from_the_cluster() {
    let ns = wandb_testkit::namespace("removals").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();

    ns.apply_yaml(FULL).await;
    wait_ready(&wb, NAME).await;
    let all = Present {
        service_account_annotation: true,
        ingress_annotation: true,
        tolerations: true,
        affinity: true,
        redis_memory_request: true,
        env_var: true,
        console_app: true,
        hpa: true,
    };
    wait_for("every setting to be live", TIMEOUT, || async {
        let now = observe(&ns).await?;
        eprintln!("live: {now:?}");
        Ok((now == all).then_some(()))
    })
    .await;

    // The same field manager applies the resource without them: they leave the resource, and
    // then the cluster.
    ns.apply_yaml(BASE).await;
    let generation = wb.get(NAME).await.unwrap().metadata.generation;
    wait_for("every removed setting to be gone", TIMEOUT, || async {
        let now = observe(&ns).await?;
        eprintln!("live: {now:?}");
        Ok((now == Present::default()).then_some(()))
    })
    .await;
    wait_for("Ready for the new generation", TIMEOUT, || async {
        let cr = wb.get(NAME).await?;
        let st = cr.status.unwrap_or_default();
        Ok((st.ready && st.observed_generation == generation).then_some(()))
    })
    .await;

    running.finish(ns).await;
}

/// `kind/name -> resourceVersion` of every object instance `name` owns, and of the instance.
async fn resource_versions(
    ns: &wandb_testkit::TestNamespace,
    name: &str,
) -> std::collections::BTreeMap<String, String> {
    let selector = format!("{}={name}", wandb_engine::names::INSTANCE_LABEL);
    let mut out = std::collections::BTreeMap::new();
    for (api_version, kind, _) in wandb_operator::apply::KINDS {
        let api: Api<DynamicObject> = Api::namespaced_with(
            ns.client(),
            ns.name(),
            &wandb_operator::apply::api_resource(api_version, kind),
        );
        let Ok(list) = api.list(&ListParams::default().labels(&selector)).await else {
            continue; // a kind the cluster does not serve (Gateway API)
        };
        for o in list.items {
            out.insert(
                format!("{kind}/{}", o.name_any()),
                o.resource_version().unwrap_or_default(),
            );
        }
    }
    let cr = ns.api::<WeightsAndBiases>().get(name).await.unwrap();
    out.insert(
        format!("WeightsAndBiases/{name}"),
        cr.resource_version().unwrap_or_default(),
    );
    out
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_settled_pass_changes_no_resource_version_and_sends_no_write() {
    let ns = wandb_testkit::namespace("settled").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let name = "st";
    ns.apply_yaml(&common::cr_yaml(name, &common::fixtures(), "0.84.0"))
        .await;
    wait_ready(&wb, name).await;
    // A restarted operator knows its objects from its first listing only (no watch event has
    // shown them yet): that must be enough to write nothing.
    running.stop().await;
    let running = start(&ns).await;
    common::settle(&running, &ns, name).await;

    let before = resource_versions(&ns, name).await;
    assert!(
        before.len() > 20,
        "the instance owns its objects: {before:?}"
    );
    let requests = running.ctx.metrics.requests.snapshot();
    let history = common::poke_and_count_writes(&running, &ns, name).await;
    let by_verb = running.ctx.metrics.requests.by_verb_since(&requests);
    eprintln!(
        "settled pass of one instance ({} objects): requests by verb {by_verb:?}, by resource {:?}",
        before.len(),
        running.ctx.metrics.requests.since(&requests)
    );
    assert_eq!(history.last(), Some(&0), "{history:?}");
    for verb in ["create", "update", "patch", "delete", "deletecollection"] {
        assert_eq!(by_verb.get(verb), None, "a settled pass sent a {verb}");
    }
    let mut after = resource_versions(&ns, name).await;
    // The poke itself (an annotation on the instance) is the one change.
    after.insert(
        format!("WeightsAndBiases/{name}"),
        before[&format!("WeightsAndBiases/{name}")].clone(),
    );
    assert_eq!(before, after, "a settled pass wrote to etcd");

    running.finish(ns).await;
}
