//! Backing services on the local control plane: managed services get StatefulSets, generated
//! credentials and connection Secrets whose URLs carry those credentials; external ones are
//! wired from the user's Secret keys, and a missing key is named in status.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use wandb_api::WeightsAndBiases;
use wandb_testkit::wait_for;

use common::{TIMEOUT, condition, start};

fn secret_data(s: &Secret) -> BTreeMap<String, String> {
    s.data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn managed_services_are_created_wired_and_the_instance_becomes_ready() {
    let ns = wandb_testkit::namespace("backends-managed").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    ns.apply_yaml(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n  wandb: {hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n",
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_for("the instance to be Ready", TIMEOUT, || async {
        Ok(condition(&wb, "w", "Ready")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;

    // One StatefulSet per service the built-in manifest needs, each with a claim template.
    let sts: Api<StatefulSet> = ns.api();
    let mut names: Vec<String> = sts
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["w-mysql", "w-objectstore", "w-redis"]);

    // Connection URLs carry the generated credentials (never a hard-coded one).
    let secrets: Api<Secret> = ns.api();
    let creds = secret_data(&secrets.get("w-mysql-credentials").await.unwrap());
    let password = creds.get("password").expect("a generated MySQL password");
    assert!(password.len() >= 16);
    let conn = secret_data(&secrets.get("w-mysql-connection").await.unwrap());
    assert_eq!(
        conn["url"],
        format!(
            "mysql://wandb:{password}@w-mysql.{}.svc.cluster.local:3306/wandb_local",
            ns.name()
        )
    );
    let redis = secret_data(&secrets.get("w-redis-connection").await.unwrap());
    assert!(
        redis["url"].starts_with("redis://:"),
        "the Redis password is in the password slot: {}",
        redis["url"]
    );

    // The app reads them by reference.
    let app: Deployment = ns.api::<Deployment>().get("w-app").await.unwrap();
    let env =
        serde_json::to_value(&app.spec.unwrap().template.spec.unwrap().containers[0].env).unwrap();
    assert!(
        env.to_string().contains("\"name\":\"w-mysql-connection\""),
        "{env}"
    );

    // Credentials are kept across reconciles.
    wb.patch(
        "w",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"metadata": {"annotations": {"touch": "1"}}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        &secret_data(&secrets.get("w-mysql-credentials").await.unwrap())["password"],
        password
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn an_external_service_with_a_missing_key_is_named_and_nothing_rolls_out() {
    let ns = wandb_testkit::namespace("backends-external").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let secrets: Api<Secret> = ns.api();
    let db = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("db".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("host".to_string(), ByteString(b"db.example.com".to_vec())),
            ("user".to_string(), ByteString(b"wandb".to_vec())),
            ("database".to_string(), ByteString(b"wandb".to_vec())),
        ])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &db).await.unwrap();
    ns.apply_yaml(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n  wandb: {hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n  mysql:\n    default:\n      externalMysql:\n        host: {name: db, key: host}\n        database: {name: db, key: database}\n        username: {name: db, key: user}\n        password: {name: db, key: password}\n",
    )
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let (_, msg) = wait_for("InfraReady to name the missing key", TIMEOUT, || async {
        Ok(condition(&wb, "w", "InfraReady")
            .await
            .filter(|(s, m)| s == "False" && m.contains("no key password")))
    })
    .await;
    assert!(
        msg.contains("Secret db") && msg.contains("spec.mysql.default"),
        "{msg}"
    );
    assert!(
        ns.api::<Deployment>()
            .get_opt("w-app")
            .await
            .unwrap()
            .is_none(),
        "nothing rolls out with half a configuration"
    );
    assert!(
        secrets
            .get_opt("w-mysql-connection")
            .await
            .unwrap()
            .is_none()
    );

    // Fixing the Secret wires the app, with the credentials URL-encoded.
    let fix = serde_json::json!({"stringData": {"password": "p@ss:w/rd?#%+ é"}});
    secrets
        .patch(
            "db",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(fix),
        )
        .await
        .unwrap();
    let conn = wait_for("the MySQL connection Secret", TIMEOUT, || async {
        Ok(secrets.get_opt("w-mysql-connection").await?)
    })
    .await;
    let url = &secret_data(&conn)["url"];
    assert!(
        url.starts_with(
            "mysql://wandb:p%40ss%3Aw%2Frd%3F%23%25%2B%20%C3%A9@db.example.com:3306/wandb"
        ),
        "{url}"
    );
    running.finish(ns).await;
}
