//! One test per mapping row of the v1 -> v2 conversion, plus the round trip.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wandb_api::{NetworkingMode, SecretKeySelector, Size};

use super::*;

fn v1(values: Value) -> Value {
    json!({
        "apiVersion": "apps.wandb.com/v1",
        "kind": "WeightsAndBiases",
        "metadata": {"name": "wandb", "namespace": "default", "uid": "u-1",
                     "labels": {"app.kubernetes.io/name": "weightsandbiases"}},
        "spec": {"chart": {"url": "https://charts.wandb.ai", "name": "operator-wandb", "version": "0.43.8"},
                 "values": values},
    })
}

fn convert(values: Value) -> Converted {
    to_v2(&v1(values))
}

fn ours(key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: "wandb-v1-values".into(),
        key: key.into(),
        optional: None,
    }
}

fn sel(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: name.into(),
        key: key.into(),
        optional: None,
    }
}

fn paths(c: &Converted, kind: FindingKind) -> Vec<String> {
    c.findings
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.path.clone())
        .collect()
}

fn secret_ref(name: &str, key: &str) -> Value {
    json!({"valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
}

#[test]
fn version_from_app_then_api_image_tag() {
    let c =
        convert(json!({"app": {"image": {"tag": "0.84.0"}}, "api": {"image": {"tag": "0.83.0"}}}));
    assert_eq!(c.v2.spec.wandb.version, "0.84.0");
    let c = convert(json!({"api": {"image": {"tag": "0.83.0"}}}));
    assert_eq!(c.v2.spec.wandb.version, "0.83.0");
}

#[test]
fn missing_or_latest_version_is_reported_not_invented() {
    for values in [json!({}), json!({"app": {"image": {"tag": "latest"}}})] {
        let c = convert(values);
        assert_eq!(c.v2.spec.wandb.version, "");
        assert!(
            paths(&c, FindingKind::Unmapped).contains(&"spec.values.app.image.tag".to_string())
        );
    }
}

#[test]
fn hostname_license_size() {
    let c = convert(
        json!({"global": {"host": "https://wandb.example.com/", "license": "eyJlicense", "size": "Medium"}}),
    );
    let w = &c.v2.spec.wandb;
    assert_eq!(w.hostname, "https://wandb.example.com");
    assert_eq!(
        w.license, None,
        "a literal license never reaches the v2 spec"
    );
    assert_eq!(w.license_secret, Some(ours("values.global.license")));
    assert_eq!(c.secret_data["values.global.license"], "eyJlicense");
    assert_eq!(c.v2.spec.size, Some(Size::Medium));
}

#[test]
fn license_secret_and_defaults() {
    let c = convert(json!({"global": {"licenseSecret": {"name": "lic"}}}));
    assert_eq!(c.v2.spec.wandb.license_secret, Some(sel("lic", "license")));
    assert_eq!(c.v2.spec.wandb.hostname, "http://localhost:8080");
    assert!(paths(&c, FindingKind::Approximated).contains(&"spec.values.global.host".to_string()));
    assert_eq!(
        c.v2.spec.size,
        Some(Size::Small),
        "the chart's default size"
    );
    let c = convert(json!({"global": {"size": "huge"}}));
    assert_eq!(c.v2.spec.size, None);
    assert!(paths(&c, FindingKind::Unmapped).contains(&"spec.values.global.size".to_string()));
}

#[test]
fn custom_ca_registry_and_pull_secrets() {
    let pem = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----";
    let c = convert(json!({"global": {
        "customCACerts": [pem], "caCertsConfigMap": "cas",
        "imageRegistry": "registry.example.com/mirror/",
        "imagePullSecrets": [{"name": "pull"}, "pull2"],
    }}));
    let g = c.v2.spec.global.unwrap();
    assert_eq!(g.custom_ca_certs, Some(vec![pem.to_string()]));
    assert_eq!(g.ca_certs_config_map.as_deref(), Some("cas"));
    assert_eq!(
        g.image_registry.as_deref(),
        Some("registry.example.com/mirror")
    );
    let names: Vec<_> = g
        .image_pull_secrets
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["pull", "pull2"]);
}

#[test]
fn service_account_annotations_and_jwt_issuer() {
    let c = convert(json!({
        "app": {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:1"}},
                "internalJWTMap": [{"subject": "system:serviceaccount:default:wandb-weave-trace", "issuer": "https://oidc.eks"}]},
        "api": {"serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "sa@p"}}},
    }));
    let sa =
        c.v2.spec
            .wandb
            .service_account
            .unwrap()
            .annotations
            .unwrap();
    assert_eq!(sa["eks.amazonaws.com/role-arn"], "arn:1");
    assert_eq!(sa["iam.gke.io/gcp-service-account"], "sa@p");
    let auth = c.v2.spec.wandb.internal_service_auth.unwrap();
    assert_eq!(auth.enabled, Some(true));
    assert_eq!(auth.oidc_issuer.as_deref(), Some("https://oidc.eks"));
    let c = convert(json!({}));
    assert_eq!(
        c.v2.spec.wandb.internal_service_auth.unwrap().enabled,
        Some(false)
    );
}

#[test]
fn ingress_class_annotations_hosts_tls() {
    let c = convert(json!({"ingress": {
        "class": "alb", "nameOverride": "wandb-public",
        "annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing"},
        "additionalHosts": ["", "extra.example.com"],
        "tls": [{"hosts": ["wandb.example.com"], "secretName": "wandb-ssl-cert"}],
    }}));
    let n = c.v2.spec.networking.unwrap();
    assert_eq!(n.mode, Some(NetworkingMode::Ingress));
    let i = n.ingress.unwrap();
    assert_eq!(i.ingress_class_name.as_deref(), Some("alb"));
    assert_eq!(i.name.as_deref(), Some("wandb-public"));
    assert_eq!(
        n.annotations.unwrap()["alb.ingress.kubernetes.io/scheme"],
        "internet-facing"
    );
    assert_eq!(
        n.tls.unwrap().secret_name.as_deref(),
        Some("wandb-ssl-cert")
    );
    assert_eq!(
        c.v2.spec.wandb.additional_hostnames,
        Some(vec!["extra.example.com".to_string()])
    );
    let c = convert(json!({"ingress": {"create": false, "class": "gce"}}));
    assert_eq!(c.v2.spec.networking, None);
    assert!(
        !paths(&c, FindingKind::Unmapped)
            .iter()
            .any(|p| p.contains("ingress"))
    );
}

#[test]
fn external_mysql_literals_go_to_the_conversion_secret() {
    let c = convert(json!({"global": {"mysql": {
        "host": "db.example.com", "port": 3306, "database": "wandb_local",
        "user": "wandb", "password": "s3cr%40t", "caCert": "PEM"}}}));
    let m =
        c.v2.spec
            .mysql
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_mysql
            .unwrap();
    assert_eq!(m.host, Some(ours("values.global.mysql.host")));
    assert_eq!(m.password, Some(ours("values.global.mysql.password")));
    assert_eq!(m.ssl_ca, Some(ours("values.global.mysql.caCert")));
    assert_eq!(c.secret_data["values.global.mysql.host"], "db.example.com");
    assert_eq!(c.secret_data["values.global.mysql.port"], "3306");
    assert_eq!(c.secret_data["values.global.mysql.password"], "s3cr%40t");
    assert_eq!(c.secret_data["values.global.mysql.tls"], "preferred");
    let v2 = serde_json::to_string(&c.v2).unwrap();
    assert!(
        !v2.contains("s3cr%40t"),
        "no literal credential in the v2 object: {v2}"
    );
}

#[test]
fn external_mysql_from_value_from_and_password_secret() {
    let c = convert(json!({"global": {"mysql": {
        "host": secret_ref("db", "host"), "user": secret_ref("db", "user"),
        "passwordSecret": {"name": "db", "passwordKey": "pw"}}}}));
    let m =
        c.v2.spec
            .mysql
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_mysql
            .unwrap();
    assert_eq!(m.host, Some(sel("db", "host")));
    assert_eq!(m.username, Some(sel("db", "user")));
    assert_eq!(m.password, Some(sel("db", "pw")));
    assert_eq!(m.database, Some(ours("values.global.mysql.database")));
    assert_eq!(c.secret_data["values.global.mysql.database"], "wandb_local");
}

#[test]
fn chart_installed_mysql_and_redis_are_reconnected_not_replaced() {
    let c = convert(json!({"mysql": {"install": true}}));
    let m = c.v2.spec.mysql.clone().unwrap().remove("default").unwrap();
    assert!(m.managed_mysql.is_none());
    let m = m.external_mysql.unwrap();
    assert_eq!(c.secret_data["values.global.mysql.host"], "wandb-mysql");
    assert_eq!(m.password, Some(sel("wandb-mysql", "MYSQL_PASSWORD")));
    // redis.install defaults to true in the chart.
    let r = c.v2.spec.redis.clone().unwrap().remove("default").unwrap();
    assert!(r.managed_redis.is_none());
    let r = r.external_redis.unwrap();
    assert_eq!(
        c.secret_data["values.global.redis.host"],
        "wandb-redis-master"
    );
    assert_eq!(c.secret_data["values.global.redis.port"], "6379");
    assert_eq!(r.password, None);
    let approximated = paths(&c, FindingKind::Approximated);
    assert!(approximated.contains(&"spec.values.mysql.install".to_string()));
    assert!(approximated.contains(&"spec.values.redis.install".to_string()));
}

#[test]
fn no_mysql_at_all_is_reported() {
    let c = convert(json!({"mysql": {"install": false}, "redis": {"install": false}}));
    assert!(c.v2.spec.mysql.is_none());
    assert!(c.v2.spec.redis.is_none());
    let unmapped = paths(&c, FindingKind::Unmapped);
    assert!(unmapped.contains(&"spec.values.global.mysql.host".to_string()));
    assert!(unmapped.contains(&"spec.values.global.redis.host".to_string()));
}

#[test]
fn external_redis_params_tls_sentinel_and_port_trick() {
    let c = convert(json!({"redis": {"install": false}, "global": {"redis": {
        "host": "redis.example.com", "port": "6380?tls=true", "password": "pw",
        "params": {"master": "gorilla", "ttlInSeconds": 604800}, "caCert": "PEM"}}}));
    let r =
        c.v2.spec
            .redis
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_redis
            .unwrap();
    assert_eq!(c.secret_data["values.global.redis.port"], "6380");
    assert_eq!(r.tls, Some(ours("values.global.redis.params.tls")));
    assert_eq!(c.secret_data["values.global.redis.params.tls"], "true");
    assert_eq!(r.sentinel_master.as_deref(), Some("gorilla"));
    assert_eq!(r.params.unwrap()["ttlInSeconds"], "604800");
    assert_eq!(r.password, Some(ours("values.global.redis.password")));
    assert_eq!(r.ssl_ca, Some(ours("values.global.redis.caCert")));
    let c = convert(json!({"global": {"redis": {"host": "r", "secret": {"secretName": "rs"}}}}));
    let r =
        c.v2.spec
            .redis
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_redis
            .unwrap();
    assert_eq!(r.password, Some(sel("rs", "REDIS_PASSWORD")));
}

#[test]
fn bucket_s3_gcs_azure_and_s3_compatible() {
    let c = convert(json!({"global": {
        "bucket": {"provider": "s3", "name": "my-bucket", "region": "us-east-1", "kmsKey": "arn:kms", "path": "p"},
        "defaultBucket": {"provider": "s3", "name": "other"}}}));
    let b =
        c.v2.spec
            .object_store
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_object_store
            .unwrap();
    assert_eq!(c.secret_data["values.global.bucket.name"], "my-bucket");
    assert_eq!(b.region, Some(ours("values.global.bucket.region")));
    assert_eq!(b.kms_key, Some(ours("values.global.bucket.kmsKey")));
    assert_eq!(b.access_key, None, "no keys: ambient identity");
    assert!(
        paths(&c, FindingKind::Approximated)
            .contains(&"spec.values.global.defaultBucket".to_string())
    );

    let c = convert(json!({"global": {"defaultBucket": {"provider": "gcs", "name": "gb"}}}));
    let b =
        c.v2.spec
            .object_store
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_object_store
            .unwrap();
    assert_eq!(c.secret_data[&b.provider.unwrap().key], "gcs");

    let c = convert(
        json!({"global": {"bucket": {"provider": "az", "name": "acct", "path": "cont/pre", "accessKey": "k=="}}}),
    );
    let b =
        c.v2.spec
            .object_store
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_object_store
            .unwrap();
    assert_eq!(c.secret_data[&b.access_key.unwrap().key], "acct");
    assert_eq!(c.secret_data[&b.bucket.clone().unwrap().key], "cont");
    assert_eq!(c.secret_data[&b.path.unwrap().key], "pre");
    assert_eq!(c.secret_data[&b.secret_key.unwrap().key], "k==");

    let c = convert(
        json!({"global": {"bucket": {"name": "minio:9000/bucket", "accessKey": "a", "secretKey": "s"}}}),
    );
    let b =
        c.v2.spec
            .object_store
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_object_store
            .unwrap();
    assert_eq!(c.secret_data[&b.endpoint.unwrap().key], "minio");
    assert_eq!(c.secret_data[&b.port.unwrap().key], "9000");
    assert_eq!(c.secret_data[&b.bucket.clone().unwrap().key], "bucket");
    assert_eq!(b.secret_key, Some(ours("values.global.bucket.secretKey")));

    let c = convert(json!({"global": {"bucket": {"name": "b", "secret": {"secretName": "bk"}}}}));
    let b =
        c.v2.spec
            .object_store
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_object_store
            .unwrap();
    assert_eq!(b.access_key, Some(sel("bk", "ACCESS_KEY")));
    assert_eq!(b.secret_key, Some(sel("bk", "SECRET_KEY")));
}

#[test]
fn clickhouse_and_oidc_and_smtp() {
    let c = convert(json!({"global": {
        "clickhouse": {"host": "ch", "port": 8443, "user": "u", "password": "p", "replicated": true},
        "auth": {"sessionLengthHours": 24, "oidc": {"clientId": "cid", "issuer": "https://idp", "authMethod": "pkce",
                 "oidcSecret": {"name": "oidc"}}},
        "email": {"smtp": {"host": "smtp", "user": "u", "password": "p"}},
    }}));
    let ch =
        c.v2.spec
            .clickhouse
            .clone()
            .unwrap()
            .remove("default")
            .unwrap()
            .external_clickhouse
            .unwrap();
    assert_eq!(c.secret_data[&ch.http_port.unwrap().key], "8443");
    assert_eq!(c.secret_data[&ch.replicated.unwrap().key], "true");
    assert_eq!(c.secret_data[&ch.database.unwrap().key], "weave_trace_db");
    let o = c.v2.spec.wandb.oidc.unwrap();
    assert_eq!(o.client_secret, Some(sel("oidc", "OIDC_SECRET")));
    assert_eq!(c.secret_data[&o.issuer_url.unwrap().key], "https://idp");
    assert_eq!(o.session_length.as_deref(), Some("24h"));
    let smtp =
        c.v2.spec
            .wandb
            .notifications
            .unwrap()
            .email
            .unwrap()
            .smtp
            .unwrap();
    assert_eq!(c.secret_data[&smtp.port.key], "587");
    assert_eq!(c.secret_data[&smtp.password.key], "p");
}

#[test]
fn env_wins_over_extra_env_and_credentials_become_references() {
    let c = convert(json!({
        "global": {"extraEnv": {"A": "global-extra", "B": "global-extra"}, "env": {"A": "global-env"}},
        "app": {"extraEnv": {"X": "extra", "OIDC_SECRET": "hush"}, "env": {"X": "env"},
                "resources": {"requests": {"cpu": "2"}, "limits": {"memory": "4Gi"}}},
        "weave": {"env": [{"name": "Y", "value": "list-form"}, {"name": "Z", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "z"}}}]},
    }));
    let o = c.v2.spec.wandb.legacy_overrides.clone().unwrap();
    let env = |k: &str| {
        o[k].env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(env("global")["A"].value.as_deref(), Some("global-env"));
    assert_eq!(env("global")["B"].value.as_deref(), Some("global-extra"));
    assert_eq!(env("app")["X"].value.as_deref(), Some("env"));
    let secret = env("app")["OIDC_SECRET"].clone();
    assert_eq!(secret.value, None);
    let r = secret.value_from.unwrap().secret_key_ref.unwrap();
    assert_eq!(c.secret_data[&r.key], "hush");
    assert_eq!(env("weave")["Y"].value.as_deref(), Some("list-form"));
    assert!(
        env("weave")["Z"]
            .value_from
            .as_ref()
            .unwrap()
            .config_map_key_ref
            .is_some()
    );
    let res = o["app"].resources.clone().unwrap();
    assert_eq!(res.requests.unwrap()["cpu"].0, "2");
    assert!(!serde_json::to_string(&c.v2).unwrap().contains("hush"));
}

#[test]
fn templated_values_are_dropped_with_a_warning() {
    let c = convert(json!({"global": {"host": "https://{{ .Values.domain }}",
                                       "extraEnv": {"T": "{{ include \"x\" . }}", "K": "ok"}}}));
    assert_eq!(c.v2.spec.wandb.hostname, "http://localhost:8080");
    let dropped = paths(&c, FindingKind::TemplatedDropped);
    assert!(
        dropped.contains(&"spec.values.global.host".to_string()),
        "{dropped:?}"
    );
    assert!(
        dropped.contains(&"spec.values.global.extraEnv.T".to_string()),
        "{dropped:?}"
    );
    let env = c.v2.spec.wandb.legacy_overrides.clone().unwrap()["global"]
        .env
        .clone()
        .unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].name, "K");
}

#[test]
fn unmapped_sections_are_reported_with_their_path() {
    let c = convert(json!({
        "global": {"host": "https://w", "kafka": {"brokerHost": "k"}, "cloudProvider": "aws"},
        "yace": {"install": true, "regions": ["us-east-1"]},
        "_releaseId": "abc",
    }));
    let unmapped = paths(&c, FindingKind::Unmapped);
    for p in [
        "spec.values.global.kafka",
        "spec.values.global.cloudProvider",
        "spec.values.yace",
        "spec.values._releaseId",
    ] {
        assert!(unmapped.contains(&p.to_string()), "{p} in {unmapped:?}");
    }
    assert!(!unmapped.contains(&"spec.values.global.host".to_string()));
    let annotated: Vec<Finding> =
        serde_json::from_str(&c.v2.metadata.annotations.as_ref().unwrap()[ANNOTATION_FINDINGS])
            .unwrap();
    assert_eq!(annotated, c.findings);
}

#[test]
fn round_trip_is_lossless_and_annotations_hold_no_credential() {
    let values = json!({
        "global": {"host": "https://wandb.example.com", "license": "LIC", "size": "small",
                   "mysql": {"host": "db", "password": 12345, "user": "wandb"},
                   "bucket": {"name": "b", "secretKey": "SK", "accessKey": "AK"},
                   "extraEnv": {"GORILLA_SESSION_KEY": "sess", "PLAIN": "1"}},
        "ingress": {"annotations": {"a.b/c": "d"}},
        "app": {"image": {"tag": "0.84.0"}, "env": [{"name": "API_TOKEN", "value": "tok"}]},
    });
    let mut original = v1(values);
    original["spec"]["chart"]["password"] = json!("chartpw");
    let c = to_v2(&original);
    let v2 = serde_json::to_value(&c.v2).unwrap();
    let text = v2.to_string();
    for secret in ["LIC", "12345", "\"SK\"", "\"AK\"", "sess", "tok", "chartpw"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the v2 object: {text}"
        );
    }
    let (back, missing) = to_v1(&v2, Some(&c.secret_data));
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(back, original);

    // Without the Secret the credentials stay references (same meaning to the chart).
    let (partial, missing) = to_v1(&v2, None);
    assert_eq!(missing.len(), 7, "{missing:?}");
    assert_eq!(
        partial["spec"]["values"]["global"]["license"],
        secret_ref("wandb-v1-values", "values.global.license")
    );
}

#[test]
fn a_v2_resource_survives_a_v1_read_modify_write() {
    let v2 = json!({
        "apiVersion": "apps.wandb.com/v2", "kind": "WeightsAndBiases",
        "metadata": {"name": "w", "namespace": "n"},
        "spec": {"wandb": {"hostname": "https://w.example.com", "version": "0.84.0"}, "size": "dev"},
        "status": {"ready": true, "conditions": [{"type": "Ready", "status": "True", "reason": "R",
                   "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}], "version": "0.84.0"},
    });
    let (as_v1, _) = to_v1(&v2, None);
    assert_eq!(as_v1["spec"], json!({}));
    assert_eq!(as_v1["status"]["phase"], "Completed");
    assert_eq!(as_v1["status"]["version"], "0.84.0");
    let back = serde_json::to_value(to_v2(&as_v1).v2).unwrap();
    assert_eq!(back["spec"], v2["spec"]);
    assert_eq!(
        back["status"], v2["status"],
        "the status survives v2 -> v1 -> v2"
    );
    // A status the v1 operator wrote has no v2 status in it.
    let mut official = as_v1.clone();
    official["status"] = json!({"phase": "Completed", "version": "0.84.0"});
    assert!(to_v2(&official).v2.status.is_none());
    assert!(back["metadata"].get("annotations").is_none());
}

#[test]
fn conversion_secret_is_owned_by_the_resource() {
    let c = convert(json!({"global": {"license": "L"}}));
    let s = conversion_secret(&c.v2, &c.secret_data, true);
    assert_eq!(s.metadata.name.as_deref(), Some("wandb-v1-values"));
    assert_eq!(s.metadata.owner_references.unwrap()[0].uid, "u-1");
    assert_eq!(s.data.unwrap()["values.global.license"].0, b"L");
}
