//! Every env source type, on a small synthetic manifest: what each resolves to, the composite
//! form, defaults, and that secret-backed values stay secretKeyRefs.

use serde_json::{Value, json};
use wandb_api::WeightsAndBiases;
use wandb_engine::Connections;
use wandb_manifest::ServerManifest;

const MANIFEST: &str = r#"
requiredOperatorVersion: ^2.0.0
generatedSecrets:
  - {name: session-key, length: 32}
  - {name: worker-auth, length: 16, useExactName: true}
applications:
  api:
    image: {repository: example.com/wandb/api, tag: "1.0"}
    containers:
      - name: api
        ports: [{containerPort: 8080, name: http}]
    service:
      ports: [{port: 8080, name: http}, {port: 9090, name: grpc}]
    env:
      - {name: LITERAL, value: "x"}
      - {name: FIELD_REF, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
      - {name: MYSQL, sources: [{name: default, type: mysql}]}
      - {name: MYSQL_RUNS, sources: [{name: runs, type: mysql}]}
      - {name: MYSQL_HOST, sources: [{name: default, type: mysql, field: host}]}
      - {name: REDIS, sources: [{name: default, type: redis}]}
      - {name: BUCKET, sources: [{name: default, type: bucket}]}
      - {name: REGION, sources: [{name: default, type: bucket, field: region}], defaultValue: us-west-2}
      - {name: CH_PORT, sources: [{name: default, type: clickhouse, field: port}]}
      - {name: CH_REPLICATED, sources: [{type: custom-resource, field: status.clickhouseStatus.default.replicated}], defaultValue: "false"}
      - {name: KAFKA, sources: [{name: default, type: kafka}]}
      - {name: TRACES, sources: [{type: telemetry, field: tracesEndpoint}]}
      - {name: NO_TELEMETRY, sources: [{type: telemetry, field: logsEndpoint}], defaultValue: none}
      - {name: SESSION, sources: [{name: session-key, type: generatedSecret}]}
      - {name: WORKER, sources: [{name: worker-auth, type: generatedSecret}]}
      - {name: SELF_GRPC, sources: [{name: api, type: service, port: grpc, proto: grpc, path: /x}]}
      - {name: SELF_FIRST, sources: [{name: api, type: service}]}
      - {name: JWT_MAP, sources: [{type: jwt-issuer-map}]}
      - {name: LICENSE, sources: [{type: custom-resource, field: spec.wandb.license}]}
      - {name: OIDC_CLIENT, sources: [{type: custom-resource, field: spec.wandb.oidc.clientId}]}
      - {name: HOSTNAME_URL, sources: [{type: custom-resource, field: status.wandb.hostname}]}
      - {name: PROXIED, sources: [{type: custom-resource, field: spec.wandb.bucketProxy}]}
      - {name: UNSET_FIELD, sources: [{type: custom-resource, field: spec.wandb.oidc.issuerUrl}]}
      - {name: COMPOSITE, sources: [{name: api, type: service, proto: http}, {name: default, type: mysql}, {name: default, type: redis}]}
      - {name: UNKNOWN, sources: [{type: carrier-pigeon}], defaultValue: fallback}
      - {name: NOTHING, sources: [{type: telemetry, field: protocol}]}
"#;

const CR: &str = r#"
apiVersion: apps.wandb.com/v2
kind: WeightsAndBiases
metadata: {name: w, namespace: ns}
spec:
  wandb:
    hostname: https://wandb.example.com/
    version: "1.0"
    licenseSecret: {name: lic, key: jwt}
    oidc:
      clientId: {name: sso, key: id}
  clickhouse:
    default:
      externalClickhouse:
        host: {name: ch, key: host}
        username: {name: ch, key: user}
        password: {name: ch, key: password}
        replicated: {name: ch, key: replicated}
"#;

fn env() -> Vec<Value> {
    let manifest = ServerManifest::from_yaml(MANIFEST).unwrap();
    let cr: WeightsAndBiases = serde_saphyr::from_str(CR).unwrap();
    let conns =
        Connections::from_yaml("telemetry:\n  tracesEndpoint: http://otel:4318/v1/traces\n")
            .unwrap();
    let built = wandb_engine::plan(&cr, &manifest, Some(&conns)).unwrap();
    assert!(
        built.warnings.iter().any(|w| w.contains("carrier-pigeon")),
        "unknown source types are reported: {:?}",
        built.warnings
    );
    let deploy = built
        .objects
        .iter()
        .find(|o| o.kind == "Deployment")
        .unwrap();
    deploy.object["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone()
}

fn var<'a>(env: &'a [Value], name: &str) -> Option<&'a Value> {
    env.iter().find(|e| e["name"] == name)
}

fn value(env: &[Value], name: &str) -> String {
    var(env, name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("{name} has no literal value: {:?}", var(env, name)))
        .to_string()
}

fn secret(env: &[Value], name: &str) -> (String, String) {
    let r =
        &var(env, name).unwrap_or_else(|| panic!("{name} missing"))["valueFrom"]["secretKeyRef"];
    (
        r["name"].as_str().unwrap().to_string(),
        r["key"].as_str().unwrap().to_string(),
    )
}

#[test]
fn literals_and_value_from_pass_through() {
    let e = env();
    assert_eq!(value(&e, "LITERAL"), "x");
    assert_eq!(
        var(&e, "FIELD_REF").unwrap()["valueFrom"],
        json!({"fieldRef": {"fieldPath": "metadata.namespace"}})
    );
}

#[test]
fn backing_services_resolve_through_connections() {
    let e = env();
    assert_eq!(
        secret(&e, "MYSQL"),
        ("w-mysql-connection".into(), "url".into())
    );
    assert_eq!(
        secret(&e, "MYSQL_RUNS"),
        ("w-mysql-connection".into(), "url".into()),
        "unknown instance falls back to default"
    );
    assert_eq!(value(&e, "MYSQL_HOST"), "w-mysql.ns.svc.cluster.local");
    assert_eq!(
        secret(&e, "REDIS"),
        ("w-redis-connection".into(), "url".into())
    );
    assert_eq!(
        secret(&e, "BUCKET"),
        ("w-objectstore-connection".into(), "url".into())
    );
    assert_eq!(
        value(&e, "REGION"),
        "us-east-1",
        "managed object store publishes its region"
    );
    assert_eq!(
        secret(&e, "CH_PORT"),
        ("w-clickhouse-connection".into(), "httpport".into()),
        "a bare ClickHouse port is the HTTP port"
    );
    assert_eq!(
        secret(&e, "CH_REPLICATED"),
        ("w-clickhouse-connection".into(), "replicated".into())
    );
    assert_eq!(
        secret(&e, "KAFKA"),
        ("w-kafka-connection".into(), "url".into())
    );
}

#[test]
fn telemetry_resolves_when_configured_and_defaults_otherwise() {
    let e = env();
    assert_eq!(value(&e, "TRACES"), "http://otel:4318/v1/traces");
    assert_eq!(value(&e, "NO_TELEMETRY"), "none");
    assert!(
        var(&e, "NOTHING").is_none(),
        "no value and no default: the var is omitted"
    );
}

#[test]
fn generated_secrets_service_urls_and_jwt_map() {
    let e = env();
    assert_eq!(
        secret(&e, "SESSION"),
        ("w-session-key".into(), "key".into())
    );
    assert_eq!(
        secret(&e, "WORKER"),
        ("worker-auth".into(), "key".into()),
        "useExactName keeps the name"
    );
    assert_eq!(
        value(&e, "SELF_GRPC"),
        "grpc://w-api.ns.svc.cluster.local:9090/x"
    );
    assert_eq!(value(&e, "SELF_FIRST"), "w-api.ns.svc.cluster.local:8080");
    let map: Value = serde_json::from_str(&value(&e, "JWT_MAP")).unwrap();
    assert_eq!(
        map,
        json!({"system:serviceaccount:ns:w-app": "https://kubernetes.default.svc.cluster.local"})
    );
}

#[test]
fn custom_resource_paths_give_literals_or_secret_refs() {
    let e = env();
    assert_eq!(secret(&e, "LICENSE"), ("lic".into(), "jwt".into()));
    assert_eq!(secret(&e, "OIDC_CLIENT"), ("sso".into(), "id".into()));
    assert_eq!(value(&e, "HOSTNAME_URL"), "https://wandb.example.com");
    assert_eq!(
        value(&e, "PROXIED"),
        "true",
        "bucketProxy is forced on with a managed default object store"
    );
    assert!(var(&e, "UNSET_FIELD").is_none());
}

#[test]
fn composites_use_intermediate_vars_declared_first() {
    let e = env();
    let pos = |n: &str| {
        e.iter()
            .position(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(
        value(&e, "COMPOSITE"),
        "http://w-api.ns.svc.cluster.local:8080,$(COMPOSITE_1),$(COMPOSITE_2)"
    );
    assert_eq!(
        secret(&e, "COMPOSITE_1"),
        ("w-mysql-connection".into(), "url".into())
    );
    assert_eq!(
        secret(&e, "COMPOSITE_2"),
        ("w-redis-connection".into(), "url".into())
    );
    assert!(pos("COMPOSITE_1") < pos("COMPOSITE") && pos("COMPOSITE_2") < pos("COMPOSITE"));
    assert_eq!(value(&e, "UNKNOWN"), "fallback");
    // No var is declared twice and none is empty.
    let mut names: Vec<&str> = e.iter().map(|x| x["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}
