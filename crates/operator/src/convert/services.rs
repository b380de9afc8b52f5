//! v1 values -> backing services: MySQL, Redis, the bucket and ClickHouse, always as external
//! connections (a v1 install's data lives where the chart or Terraform put it; the operator must
//! never swap it for a fresh, empty managed service).

use std::collections::BTreeMap;

use serde_json::Value;
use wandb_api::{
    ClickHouseSpec, ExternalClickHouse, ExternalMySql, ExternalObjectStore, ExternalRedis,
    MySqlSpec, ObjectStoreSpec, RedisSpec, SecretKeySelector, WeightsAndBiasesSpec,
};

use super::FindingKind;
use super::values::{Field, Values};

pub fn map(v: &Values, name: &str, spec: &mut WeightsAndBiasesSpec) {
    if let Some(m) = mysql(v, name) {
        spec.mysql = Some(BTreeMap::from([("default".into(), m)]));
    }
    if let Some(r) = redis(v, name) {
        spec.redis = Some(BTreeMap::from([("default".into(), r)]));
    }
    if let Some(b) = bucket(v) {
        spec.object_store = Some(BTreeMap::from([("default".into(), b)]));
    }
    if let Some(c) = clickhouse(v) {
        spec.clickhouse = Some(BTreeMap::from([("default".into(), c)]));
    }
}

/// A value, else a default stored as a literal under the same path.
fn or_default(v: &Values, path: &str, default: &str) -> SecretKeySelector {
    v.selector(path)
        .unwrap_or_else(|| v.store(path, default.to_owned()))
}

fn sel(name: String, key: String) -> SecretKeySelector {
    SecretKeySelector {
        name,
        key,
        optional: None,
    }
}

fn mysql(v: &Values, name: &str) -> Option<MySqlSpec> {
    let installed = v.bool("mysql.install") == Some(true);
    let has_host = v.field("global.mysql.host") != Field::Absent;
    if !installed && !has_host {
        v.warn(
            "global.mysql.host",
            FindingKind::Unmapped,
            "is empty and mysql.install is false: the v1 install had no MySQL; v2 will run a \
             new managed MySQL (set spec.mysql.default.externalMysql to keep existing data)",
        );
        return None;
    }
    let host = if installed && !has_host {
        v.warn(
            "mysql.install",
            FindingKind::Approximated,
            "the chart-installed MySQL is reconnected as externalMysql at its Service and Secret; \
             it keeps running as the chart installed it",
        );
        v.store("global.mysql.host", format!("{name}-mysql"))
    } else {
        v.selector("global.mysql.host")?
    };
    let port = Some(or_default(v, "global.mysql.port", "3306"));
    let database = or_default(v, "global.mysql.database", "wandb_local");
    let username = or_default(v, "global.mysql.user", "wandb");
    let password = v.selector("global.mysql.password").unwrap_or_else(|| {
        match v.str("global.mysql.passwordSecret.name") {
            Some(n) => sel(
                n,
                v.str("global.mysql.passwordSecret.passwordKey")
                    .unwrap_or_else(|| "MYSQL_PASSWORD".into()),
            ),
            // The chart keeps the password (generated for an installed MySQL) in <name>-mysql.
            None => sel(format!("{name}-mysql"), "MYSQL_PASSWORD".into()),
        }
    });
    v.consume("global.mysql.passwordSecret");
    let ssl_ca = v.selector("global.mysql.caCert");
    // The chart always connects with tls=preferred.
    let tls = Some(v.store("global.mysql.tls", "preferred".into()));
    Some(MySqlSpec {
        managed_mysql: None,
        external_mysql: Some(ExternalMySql {
            url: None,
            host: Some(host),
            port,
            database: Some(database),
            username: Some(username),
            password: Some(password),
            tls,
            ssl_ca,
            ssl_cert: None,
            ssl_key: None,
        }),
    })
}

fn redis(v: &Values, name: &str) -> Option<RedisSpec> {
    // The chart installs Redis unless told not to.
    let installed = v.bool("redis.install") != Some(false);
    let has_host = v.field("global.redis.host") != Field::Absent;
    if !has_host && !installed {
        v.warn(
            "global.redis.host",
            FindingKind::Unmapped,
            "is empty and redis.install is false: the v1 install had no Redis; v2 will run a managed Redis",
        );
        return None;
    }
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let (host, port) = if has_host {
        let host = v.selector("global.redis.host")?;
        // The legacy trick `port: "6379?tls=true"` carries parameters in the port.
        let port = match v.field("global.redis.port") {
            Field::Literal(p) => {
                let (p, q) = p.split_once('?').unwrap_or((&p, ""));
                for kv in q.split('&').filter(|s| !s.is_empty()) {
                    let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
                    params.insert(k.to_owned(), val.to_owned());
                }
                Some(v.store("global.redis.port", p.to_owned()))
            }
            Field::SecretRef(s) => Some(s),
            Field::Absent => None,
        };
        (host, port)
    } else {
        v.warn(
            "redis.install",
            FindingKind::Approximated,
            "the chart-installed Redis is reconnected as externalRedis at its Service; it keeps \
             running as the chart installed it",
        );
        (
            v.store("global.redis.host", format!("{name}-redis-master")),
            Some(v.store("global.redis.port", "6379".into())),
        )
    };
    for p in ["global.redis.params", "global.redis.parameters"] {
        for (k, val) in v.object(p).into_iter().flatten() {
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            if !text.is_empty() {
                params.insert(k.clone(), text);
            }
        }
    }
    let password = v.selector("global.redis.password").or_else(|| {
        v.str("global.redis.secret.secretName").map(|n| {
            sel(
                n,
                v.str("global.redis.secret.secretKey")
                    .unwrap_or_else(|| "REDIS_PASSWORD".into()),
            )
        })
    });
    v.consume("global.redis.external");
    let ssl_ca = v.selector("global.redis.caCert");
    let tls_param = params.remove("tls");
    let tls = if ssl_ca.is_some() || tls_param.as_deref() == Some("true") {
        Some(v.store("global.redis.params.tls", "true".into()))
    } else {
        None
    };
    let sentinel_master = params.remove("master").filter(|m| !m.is_empty());
    params.remove("caCertPath");
    Some(RedisSpec {
        managed_redis: None,
        external_redis: Some(ExternalRedis {
            url: None,
            host: Some(host),
            port,
            password,
            tls,
            ssl_ca,
            sentinel_master,
            params: (!params.is_empty()).then_some(params),
        }),
    })
}

/// `global.bucket` (forced by the chart when its name is set), else `global.defaultBucket`.
fn bucket(v: &Values) -> Option<ObjectStoreSpec> {
    let src = if v.str("global.bucket.name").is_some() {
        if v.get("global.defaultBucket").is_some() {
            v.warn(
                "global.defaultBucket",
                FindingKind::Approximated,
                "is overridden by global.bucket, as in the chart",
            );
        }
        "global.bucket"
    } else if v.str("global.defaultBucket.name").is_some() {
        "global.defaultBucket"
    } else {
        v.warn(
            "global.bucket",
            FindingKind::Unmapped,
            "has no name (nor global.defaultBucket): v2 will run a managed object store",
        );
        return None;
    };
    let provider = v
        .str(&format!("{src}.provider"))
        .unwrap_or_else(|| "s3".into())
        .to_ascii_lowercase();
    let p = |f: &str| format!("{src}.{f}");
    let name = v.str(&p("name")).unwrap_or_default();
    let mut store = ExternalObjectStore {
        region: v.selector(&p("region")),
        kms_key: v.selector(&p("kmsKey")),
        ..Default::default()
    };
    // Existing credentials: global.bucket.secret{secretName, accessKeyName, secretKeyName}.
    let secret = v.str("global.bucket.secret.secretName");
    let from_secret = |key_path: &str, default: &str| {
        secret.clone().map(|n| {
            sel(
                n,
                v.str(&format!("global.bucket.secret.{key_path}"))
                    .unwrap_or_else(|| default.into()),
            )
        })
    };
    let access = v
        .selector(&p("accessKey"))
        .or_else(|| from_secret("accessKeyName", "ACCESS_KEY"));
    let secret_key = v
        .selector(&p("secretKey"))
        .or_else(|| from_secret("secretKeyName", "SECRET_KEY"));
    match provider.as_str() {
        "gcs" | "gs" => {
            store.provider = Some(v.store(&p("provider"), "gcs".into()));
            store.bucket = Some(v.store(&p("name"), name));
            store.path = v.selector(&p("path"));
        }
        "az" | "azure" => {
            // Chart: name = storage account, path = <container>/<prefix>, accessKey = account key.
            store.provider = Some(v.store(&p("provider"), "azure".into()));
            store.access_key = Some(v.store(&p("name"), name));
            let path = v.str(&p("path")).unwrap_or_default();
            let (container, prefix) = path.split_once('/').unwrap_or((&path, ""));
            store.bucket = Some(v.store(&format!("{src}.container"), container.to_owned()));
            if !prefix.is_empty() {
                store.path = Some(v.store(&format!("{src}.prefix"), prefix.to_owned()));
            }
            store.secret_key = access;
        }
        other => {
            if other != "s3" {
                v.warn(
                    &p("provider"),
                    FindingKind::Approximated,
                    "is not s3, gcs or az; mapped as an S3-compatible store",
                );
            }
            store.provider = Some(v.store(&p("provider"), "s3".into()));
            // S3-compatible stores are written `host[:port]/bucket`.
            match name.split_once('/') {
                Some((endpoint, bucket)) => {
                    let (host, port) = endpoint.split_once(':').unwrap_or((endpoint, ""));
                    store.endpoint = Some(v.store(&format!("{src}.endpoint"), host.to_owned()));
                    if !port.is_empty() {
                        store.port = Some(v.store(&format!("{src}.port"), port.to_owned()));
                    }
                    store.bucket = Some(v.store(&format!("{src}.bucketName"), bucket.to_owned()));
                    v.warn(
                        &p("name"),
                        FindingKind::Approximated,
                        "names an S3-compatible endpoint (host:port/bucket); mapped to endpoint, \
                         port and bucket with path-style addressing over plain HTTP (set \
                         tlsEnabled in the conversion Secret for HTTPS)",
                    );
                }
                None => store.bucket = Some(v.store(&p("name"), name)),
            }
            store.path = v.selector(&p("path"));
            store.access_key = access;
            store.secret_key = secret_key;
        }
    }
    v.consume("global.bucket.secret");
    Some(ObjectStoreSpec {
        bucket_attribution_disabled: None,
        managed_object_store: None,
        external_object_store: Some(store),
    })
}

fn clickhouse(v: &Values) -> Option<ClickHouseSpec> {
    let host = v.selector("global.clickhouse.host")?;
    let password = v.selector("global.clickhouse.password").or_else(|| {
        v.str("global.clickhouse.passwordSecret.name").map(|n| {
            sel(
                n,
                v.str("global.clickhouse.passwordSecret.passwordKey")
                    .unwrap_or_else(|| "CLICKHOUSE_PASSWORD".into()),
            )
        })
    });
    v.consume("global.clickhouse.passwordSecret");
    let Some(password) = password else {
        v.warn(
            "global.clickhouse.password",
            FindingKind::Unmapped,
            "is not set; externalClickhouse needs a password, so ClickHouse is not mapped",
        );
        return None;
    };
    Some(ClickHouseSpec {
        managed_clickhouse: None,
        external_clickhouse: Some(ExternalClickHouse {
            url: None,
            host: Some(host),
            tcp_port: None,
            // The chart's port is the HTTP port (8443 for an external ClickHouse).
            http_port: Some(or_default(v, "global.clickhouse.port", "8443")),
            database: Some(or_default(
                v,
                "global.clickhouse.database",
                "weave_trace_db",
            )),
            username: Some(or_default(v, "global.clickhouse.user", "default")),
            password: Some(password),
            replicated: v.selector("global.clickhouse.replicated"),
            cluster_name: None,
        }),
    })
}
