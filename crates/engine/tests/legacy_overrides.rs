//! `spec.wandb.legacyOverrides` (env and resources, global then per app, by name or legacy
//! name) and autoscaling overrides with only one bound, on a small synthetic manifest.

use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_manifest::ServerManifest;

const MANIFEST: &str = r#"
requiredOperatorVersion: ^2.0.0
applications:
  api:
    legacyKey: app
    image: {repository: example.com/wandb/api, tag: "1.0"}
    containers:
      - name: api
        ports: [{containerPort: 8080, name: http}]
        resources: {requests: {cpu: "1", memory: 1Gi}, limits: {memory: 2Gi}}
    env:
      - {name: KEEP, value: manifest}
      - {name: SHARED, value: manifest}
      - {name: MINE, value: manifest}
    sizing:
      default:
        autoscaling:
          horizontal: {minReplicas: 2, maxReplicas: 3}
  worker:
    image: {repository: example.com/wandb/worker, tag: "1.0"}
    containers: [{name: worker}]
    env:
      - {name: SHARED, value: manifest}
migrations:
  gorilla:
    image: {repository: example.com/wandb/api, tag: "1.0"}
    env:
      - {name: SHARED, value: manifest}
"#;

fn plan(extra: &str) -> wandb_engine::Built {
    let cr = format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: ns}}\nspec:\n  wandb:\n    hostname: https://w.example.com\n    version: \"1.0\"\n{extra}"
    );
    let cr: WeightsAndBiases = serde_saphyr::from_str(&cr).unwrap();
    let manifest = ServerManifest::from_yaml(MANIFEST).unwrap();
    wandb_engine::plan(&cr, &manifest, None).unwrap()
}

fn object<'a>(b: &'a wandb_engine::Built, kind: &str, name: &str) -> &'a Value {
    &b.objects
        .iter()
        .find(|o| o.kind == kind && o.object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name}"))
        .object
}

fn env_of(container: &Value) -> Vec<(String, Value)> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn value(env: &[(String, Value)], name: &str) -> Option<String> {
    env.iter()
        .find(|(n, _)| n == name)
        .map(|(_, e)| e["value"].as_str().unwrap_or_default().to_string())
}

const OVERRIDES: &str = "    legacyOverrides:
      global:
        env:
          - {name: SHARED, value: global}
          - {name: MINE, value: global}
          - {name: NEW_GLOBAL, value: g}
      app:
        env:
          - {name: MINE, value: app}
          - {name: TOKEN, valueFrom: {secretKeyRef: {name: w-v1-values, key: values.app.env.TOKEN}}}
        resources: {requests: {cpu: \"3\"}, limits: {memory: 8Gi}}
      nothing-here:
        env: [{name: X, value: y}]
";

#[test]
fn global_then_app_env_replace_in_place_and_app_key_may_be_the_legacy_name() {
    let b = plan(OVERRIDES);
    let api = &object(&b, "Deployment", "w-api")["spec"]["template"]["spec"]["containers"][0];
    let env = env_of(api);
    assert_eq!(value(&env, "KEEP").as_deref(), Some("manifest"));
    assert_eq!(value(&env, "SHARED").as_deref(), Some("global"));
    assert_eq!(
        value(&env, "MINE").as_deref(),
        Some("app"),
        "the app's override wins over global"
    );
    assert_eq!(value(&env, "NEW_GLOBAL").as_deref(), Some("g"));
    let token = &env.iter().find(|(n, _)| n == "TOKEN").unwrap().1;
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["key"],
        "values.app.env.TOKEN"
    );
    // Replaced in place: KEEP, SHARED, MINE keep the manifest's order.
    let names: Vec<_> = env.iter().map(|(n, _)| n.as_str()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("KEEP") < pos("SHARED") && pos("SHARED") < pos("MINE"));

    let worker = &object(&b, "Deployment", "w-worker")["spec"]["template"]["spec"]["containers"][0];
    let env = env_of(worker);
    assert_eq!(value(&env, "SHARED").as_deref(), Some("global"));
    assert_eq!(
        value(&env, "MINE").as_deref(),
        Some("global"),
        "another app's override stays there"
    );

    let job = b.objects.iter().find(|o| o.kind == "Job").unwrap();
    let env = env_of(&job.object["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(
        value(&env, "SHARED").as_deref(),
        Some("global"),
        "migrations get global env"
    );

    assert!(
        b.warnings
            .iter()
            .any(|w| w.contains("legacyOverrides.nothing-here")),
        "{:?}",
        b.warnings
    );
}

#[test]
fn resources_overlay_per_name_and_limits_need_require_limits() {
    let b = plan(OVERRIDES);
    let r = &object(&b, "Deployment", "w-api")["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(r["requests"]["cpu"], "3");
    assert_eq!(r["requests"]["memory"], "1Gi");
    assert!(
        r.get("limits").is_none(),
        "limits dropped without requireLimits: {r}"
    );

    let b = plan(&format!("{OVERRIDES}  requireLimits: true\n"));
    let r = &object(&b, "Deployment", "w-api")["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(r["limits"]["memory"], "8Gi");
}

#[test]
fn autoscaling_bounds_are_each_optional() {
    let b = plan(
        "    applications:\n      api: {autoscaling: {maxReplicas: 7}}\n      worker: {autoscaling: {maxReplicas: 4}}\n",
    );
    let hpa = &object(&b, "HorizontalPodAutoscaler", "w-api")["spec"];
    assert_eq!(hpa["minReplicas"], 2, "the manifest's minimum is kept");
    assert_eq!(hpa["maxReplicas"], 7);
    let hpa = &object(&b, "HorizontalPodAutoscaler", "w-worker")["spec"];
    assert_eq!(hpa["minReplicas"], 1);
    assert_eq!(hpa["maxReplicas"], 4);

    let b = plan("    applications:\n      api: {autoscaling: {minReplicas: 5}}\n");
    let hpa = &object(&b, "HorizontalPodAutoscaler", "w-api")["spec"];
    assert_eq!(hpa["minReplicas"], 5);
    assert_eq!(hpa["maxReplicas"], 5, "max is raised to min");
}
