//! What W&B's pods get to read, on the local control plane: an external ClickHouse without
//! replication settings reaches Ready with every key its pods read present (no reference to a
//! key the connection Secret does not carry), and the apps' ServiceAccount may do what W&B's
//! secret store and internal service auth need, and no more (SubjectAccessReviews).

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wandb_api::WeightsAndBiases;
use wandb_testkit::wait_for;

use common::{TIMEOUT, condition, cr_yaml, fixtures, start, wait_ready};
use wandb_operator::issuer;

const EXTERNAL_CLICKHOUSE: &str = "  clickhouse:\n    default:\n      externalClickhouse:\n        host: {name: ch, key: host}\n        username: {name: ch, key: user}\n        password: {name: ch, key: password}\n";

/// Whether `user` may `verb` `resource` (namespaced when `ns`), or GET `path`.
async fn allowed(
    client: &kube::Client,
    user: &str,
    resource: Option<(&str, &str, Option<&str>, &str)>,
    path: Option<&str>,
) -> bool {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ]),
            resource_attributes: resource.map(|(verb, res, name, ns)| ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(res.into()),
                name: name.map(str::to_string),
                namespace: Some(ns.into()),
                ..Default::default()
            }),
            non_resource_attributes: path.map(|p| NonResourceAttributes {
                path: Some(p.into()),
                verb: Some("get".into()),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .expect("a SubjectAccessReview")
        .status
        .expect("a SubjectAccessReview status")
        .allowed
}

/// Env `name` of every container of the weave-trace migration Job.
async fn migration_env(ns: &wandb_testkit::TestNamespace, name: &str) -> Vec<Value> {
    let jobs: Api<Job> = ns.api();
    let job = wait_for("the weave-trace migration Job", TIMEOUT, || async {
        Ok(jobs
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|j| {
                j.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.contains("migrate-weave-trace"))
            }))
    })
    .await;
    env_named(&serde_json::to_value(job).unwrap(), name)
}

/// Env `name` of every container of the weave-trace Deployment.
async fn weave_trace_env(ns: &wandb_testkit::TestNamespace, name: &str) -> Vec<Value> {
    let d = ns.api::<Deployment>().get("w-weave-trace").await.unwrap();
    env_named(&serde_json::to_value(d).unwrap(), name)
}

fn env_named(workload: &Value, name: &str) -> Vec<Value> {
    workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["env"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["name"] == name)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn external_clickhouse_without_replication_settings_reaches_ready() {
    let ns = wandb_testkit::namespace("access-ch").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let ch: Secret = serde_json::from_value(json!({
        "metadata": {"name": "ch"},
        "stringData": {"host": "clickhouse.example.com", "user": "weave", "password": "pw"}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &ch).await.unwrap();
    ns.apply_yaml(&format!(
        "{}{EXTERNAL_CLICKHOUSE}",
        cr_yaml("w", &fixtures(), "0.84.0")
    ))
    .await;

    // The weave-trace migration (read while it exists: a recorded migration's Job is deleted)
    // gets the manifest's defaultValue and no cluster variable.
    assert_eq!(
        migration_env(&ns, "WF_CLICKHOUSE_REPLICATED").await,
        [json!({"name": "WF_CLICKHOUSE_REPLICATED", "value": "false"})],
        "the manifest's defaultValue"
    );
    assert!(
        migration_env(&ns, "WF_CLICKHOUSE_REPLICATED_CLUSTER")
            .await
            .is_empty()
    );
    // Ready, and (wait_ready) every key its pods read exists: the connection Secret carries no
    // `replicated` key, and nothing references one.
    wait_ready(&wb, "w").await;
    let conn = secrets.get("w-clickhouse-connection").await.unwrap();
    assert!(!conn.data.unwrap().contains_key("replicated"));
    assert_eq!(
        weave_trace_env(&ns, "WF_CLICKHOUSE_REPLICATED").await,
        [json!({"name": "WF_CLICKHOUSE_REPLICATED", "value": "false"})],
    );

    // Set: the key is written and the apps read it.
    secrets
        .patch(
            "ch",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"replicated": "true"}})),
        )
        .await
        .unwrap();
    let set_replicated = json!({"spec": {"clickhouse": {"default": {"externalClickhouse":
        {"replicated": {"name": "ch", "key": "replicated"}}}}}});
    wb.patch("w", &PatchParams::default(), &Patch::Merge(set_replicated))
        .await
        .unwrap();
    wait_for("the replicated key to be published", TIMEOUT, || async {
        let s = secrets.get("w-clickhouse-connection").await?;
        Ok(s.data
            .unwrap_or_default()
            .get("replicated")
            .filter(|v| v.0 == b"true")
            .map(|_| ()))
    })
    .await;
    let reads_the_key = json!({"name": "WF_CLICKHOUSE_REPLICATED", "valueFrom": {"secretKeyRef":
        {"name": "w-clickhouse-connection", "key": "replicated", "optional": true}}});
    wait_for(
        "WF_CLICKHOUSE_REPLICATED to read the key",
        TIMEOUT,
        || async {
            let env = weave_trace_env(&ns, "WF_CLICKHOUSE_REPLICATED").await;
            Ok((env == [reads_the_key.clone()]).then_some(()))
        },
    )
    .await;
    wait_ready(&wb, "w").await;
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn the_apps_service_account_may_do_what_wandb_needs_and_no_more() {
    let ns = wandb_testkit::namespace("access-rbac").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    ns.apply_yaml(&cr_yaml("w", "builtin://", "0.84.0")).await;
    wait_ready(&wb, "w").await;
    let client = ns.client();
    let n = ns.name();
    let sa = format!("system:serviceaccount:{n}:w-app");

    // W&B's secret store: Secrets of its namespace, and its own namespace object.
    for verb in ["get", "create", "update", "delete"] {
        assert!(
            allowed(&client, &sa, Some((verb, "secrets", None, n)), None).await,
            "{verb} secrets"
        );
    }
    for verb in ["list", "watch", "patch"] {
        assert!(
            !allowed(&client, &sa, Some((verb, "secrets", None, n)), None).await,
            "{verb} secrets is more than the secret store needs"
        );
    }
    assert!(
        !allowed(
            &client,
            &sa,
            Some(("get", "secrets", None, "default")),
            None
        )
        .await
    );
    assert!(allowed(&client, &sa, Some(("get", "namespaces", Some(n), n)), None).await);
    assert!(
        !allowed(
            &client,
            &sa,
            Some(("get", "namespaces", Some("default"), "default")),
            None
        )
        .await
    );

    // Internal service auth: the issuer's discovery document and keys, readable by the apps'
    // ServiceAccount through the cluster's default binding (no object of ours).
    for path in ["/.well-known/openid-configuration", "/openid/v1/jwks"] {
        assert!(allowed(&client, &sa, None, Some(path)).await, "{path}");
    }
    // Clients without credentials may not (a stock cluster), which the status reports, naming
    // the chart option. (Unless another test's chart install opened it meanwhile.)
    let anonymous = |path: &str| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("system:anonymous".into()),
            groups: Some(vec!["system:unauthenticated".into()]),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some(path.into()),
                verb: Some("get".into()),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let open = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &anonymous(issuer::DISCOVERY_PATH))
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed;
    let (status, message) = condition(&wb, "w", "InternalServiceAuth")
        .await
        .expect("an InternalServiceAuth condition");
    if open {
        assert_eq!(status, "True", "{message}");
    } else {
        assert_eq!(status, "False", "{message}");
        assert!(
            message.contains("rbac.unauthenticatedIssuerDiscovery"),
            "{message}"
        );
    }
    running.finish(ns).await;
}
