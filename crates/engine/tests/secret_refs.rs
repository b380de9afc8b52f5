//! Every Secret key and ConfigMap key a pod reads exists: a kubelet refuses to start a container
//! whose required key is missing, so a reference to a key the operator may not write would leave
//! the instance stuck. Walks every env var of every app, migration and managed service of both
//! fixture manifests, with each backing service external or managed, minimally and fully
//! configured, and checks each reference against the keys the operator writes (computed with the
//! same functions the controller uses), the keys of the user's Secrets the resource names, or
//! `optional: true`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::{external, managed, url};
use wandb_engine::{Built, Instance, SecretSource, ServiceKind};

mod common;

/// Each kind's external block: (minimal, full). The full one sets every optional selector.
fn external_block(kind: ServiceKind, full: bool) -> &'static str {
    match (kind, full) {
        (ServiceKind::Mysql, false) => {
            "  mysql: {default: {externalMysql: {host: {name: db, key: host}, database: {name: db, key: database}, username: {name: db, key: user}, password: {name: db, key: password}}}}\n"
        }
        (ServiceKind::Mysql, true) => {
            "  mysql: {default: {externalMysql: {host: {name: db, key: host}, port: {name: db, key: port}, database: {name: db, key: database}, username: {name: db, key: user}, password: {name: db, key: password}, tls: {name: db, key: tls}, sslCa: {name: db, key: ca}, sslCert: {name: db, key: cert}, sslKey: {name: db, key: key}}}}\n"
        }
        (ServiceKind::Redis, false) => {
            "  redis: {default: {externalRedis: {host: {name: cache, key: host}}}}\n"
        }
        (ServiceKind::Redis, true) => {
            "  redis: {default: {externalRedis: {host: {name: cache, key: host}, port: {name: cache, key: port}, password: {name: cache, key: password}, tls: {name: cache, key: tls}, sslCa: {name: cache, key: ca}, sentinelMaster: mymaster, params: {db: \"2\"}}}}\n"
        }
        (ServiceKind::ObjectStore, false) => {
            "  objectStore: {default: {externalObjectStore: {bucket: {name: bucket, key: name}}}}\n"
        }
        (ServiceKind::ObjectStore, true) => {
            "  objectStore: {default: {externalObjectStore: {provider: {name: bucket, key: provider}, endpoint: {name: bucket, key: endpoint}, port: {name: bucket, key: port}, accessKey: {name: bucket, key: ak}, secretKey: {name: bucket, key: sk}, bucket: {name: bucket, key: name}, path: {name: bucket, key: path}, region: {name: bucket, key: region}, kmsKey: {name: bucket, key: kms}, tlsEnabled: {name: bucket, key: tls}, forcePathStyle: {name: bucket, key: pathstyle}}}}\n"
        }
        (ServiceKind::Clickhouse, false) => {
            "  clickhouse: {default: {externalClickhouse: {host: {name: ch, key: host}, username: {name: ch, key: user}, password: {name: ch, key: password}}}}\n"
        }
        (ServiceKind::Clickhouse, true) => {
            "  clickhouse: {default: {externalClickhouse: {host: {name: ch, key: host}, tcpPort: {name: ch, key: tcp}, httpPort: {name: ch, key: http}, database: {name: ch, key: db}, username: {name: ch, key: user}, password: {name: ch, key: password}, replicated: {name: ch, key: replicated}, clusterName: {name: ch, key: cluster, optional: true}}}}\n"
        }
        (ServiceKind::Kafka, false) => {
            "  kafka: {externalKafka: {bootstrapServers: {name: kafka, key: servers}}}\n"
        }
        (ServiceKind::Kafka, true) => {
            "  kafka: {externalKafka: {bootstrapServers: {name: kafka, key: servers}, tls: {name: kafka, key: tls}, sslCa: {name: kafka, key: ca}, saslMechanism: PLAIN, username: {name: kafka, key: user}, password: {name: kafka, key: password}}}\n"
        }
    }
}

/// Each kind's managed block when fully configured (minimal = left out: a managed default).
fn managed_block(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Mysql => {
            "  mysql: {default: {managedMysql: {name: db1, telemetry: {enabled: true}}}}\n"
        }
        ServiceKind::Redis => {
            "  redis: {default: {managedRedis: {name: cache1, telemetry: {enabled: true}}}}\n"
        }
        ServiceKind::ObjectStore => {
            "  objectStore: {default: {managedObjectStore: {name: store1, telemetry: {enabled: true}}}}\n"
        }
        ServiceKind::Clickhouse => {
            "  clickhouse: {default: {managedClickhouse: {name: ch1, telemetry: {enabled: true}}}}\n"
        }
        ServiceKind::Kafka => "  kafka: {managedKafka: {name: kafka1}}\n",
    }
}

const ALL_EXTERNAL: u32 = (1 << ServiceKind::ALL.len()) - 1;

/// A resource with each kind external where `external_mask` has its bit, minimal or full.
fn resource(version: &str, external_mask: u32, full: bool) -> WeightsAndBiases {
    let mut yaml = format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: wandb, namespace: wandb}}\nspec:\n  wandb:\n    hostname: https://wandb.example.com\n    version: \"{version}\"\n"
    );
    if full {
        yaml.push_str(concat!(
            "    license: not-a-real-license\n",
            "    oidc: {clientId: {name: oidc, key: id}, issuerUrl: {name: oidc, key: issuer}, authMethod: {name: oidc, key: method}, clientSecret: {name: oidc, key: secret}}\n",
            "    notifications: {email: {sink: {name: mail, key: sink}}}\n",
        ));
    }
    for (bit, kind) in ServiceKind::ALL.into_iter().enumerate() {
        if external_mask & (1 << bit) != 0 {
            yaml.push_str(external_block(kind, full));
        } else if full {
            yaml.push_str(managed_block(kind));
        }
    }
    let cr: WeightsAndBiases =
        serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    cr.validate_cel()
        .unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
    cr
}

/// A plausible value for an external input field; `blank` empties every field the minimal
/// resource does not set (an optional selector whose value is empty).
fn value_of(field: &str) -> &'static str {
    match field {
        "host" => "svc.example.com",
        "port" | "tcpPort" => "9000",
        "httpPort" => "8123",
        "provider" => "s3",
        "endpoint" => "https://s3.example.com",
        "bootstrapServers" => "kafka.example.com:9092",
        "tls" | "forcePathStyle" | "replicated" => "true",
        _ => "value",
    }
}

/// How the user's Secret values look: all set, or the optional ones empty.
#[derive(Clone, Copy, Debug)]
enum Values {
    Set,
    OptionalEmpty,
}

/// The keys the controller writes into each Secret the build declares, as it would compose them.
/// `minimal`: every kind external with only its required selectors (which inputs are not
/// optional).
fn written_keys(
    cr: &WeightsAndBiases,
    minimal: &WeightsAndBiases,
    built: &Built,
    values: Values,
) -> BTreeMap<String, BTreeSet<String>> {
    let inst = Instance::from_cr(cr).unwrap();
    let declared: BTreeMap<&str, &wandb_engine::SecretSpec> =
        built.secrets.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut out = BTreeMap::new();
    for spec in &built.secrets {
        let keys: BTreeSet<String> = match &spec.source {
            SecretSource::ExternalConnection { instance, .. }
            | SecretSource::ManagedConnection { instance, .. } => {
                let plan = built
                    .infra
                    .iter()
                    .find(|p| p.connection_secret == spec.name)
                    .expect("a connection Secret belongs to a service");
                let inputs = match &spec.source {
                    SecretSource::ExternalConnection { .. } => {
                        let required: BTreeSet<&str> =
                            external::selectors(minimal, plan.kind, instance)
                                .into_iter()
                                .map(|(f, _)| f)
                                .collect();
                        let mut i = external::inputs_template(cr, plan.kind, instance);
                        for (field, sel) in external::selectors(cr, plan.kind, instance) {
                            let empty = matches!(values, Values::OptionalEmpty)
                                && !required.contains(field);
                            // An optional selector may name a missing key: nothing is set.
                            if sel.optional == Some(true) && empty {
                                continue;
                            }
                            i.set(field, if empty { "" } else { value_of(field) });
                        }
                        i
                    }
                    _ => {
                        let creds: BTreeMap<String, String> = plan
                            .credentials_secret
                            .as_deref()
                            .map(|c| {
                                declared[c]
                                    .keys
                                    .iter()
                                    .map(|k| (k.clone(), "generated".to_string()))
                                    .collect()
                            })
                            .unwrap_or_default();
                        managed::connection_inputs(&inst, plan.kind, instance, &creds)
                    }
                };
                url::connection_secret_data(plan.kind, &inputs)
                    .unwrap_or_else(|e| panic!("{}: {e}", spec.name))
                    .into_keys()
                    .collect()
            }
            _ => spec.keys.iter().cloned().collect(),
        };
        out.insert(spec.name.clone(), keys);
    }
    out
}

/// Every `{name, key}` Secret selector the resource itself names (the user's Secrets).
fn user_selectors(v: &Value, out: &mut BTreeSet<(String, String)>) {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(n)), Some(Value::String(k))) = (o.get("name"), o.get("key"))
            {
                out.insert((n.clone(), k.clone()));
            }
            o.values().for_each(|c| user_selectors(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| user_selectors(c, out)),
        _ => {}
    }
}

/// Every (object/container/var, reference) of every pod template.
fn key_refs(built: &Built) -> Vec<(String, &'static str, Value)> {
    let mut out = Vec::new();
    for o in &built.objects {
        let pod = match o.kind.as_str() {
            "Deployment" | "StatefulSet" | "Job" => &o.object["spec"]["template"]["spec"],
            _ => continue,
        };
        for c in ["containers", "initContainers"]
            .iter()
            .flat_map(|f| pod[*f].as_array().into_iter().flatten())
        {
            for e in c["env"].as_array().into_iter().flatten() {
                let at = format!("{} {}/{}/{}", o.kind, o.name, c["name"], e["name"]);
                for (kind, field) in [("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")]
                {
                    if let Some(r) = e["valueFrom"].get(field) {
                        out.push((at.clone(), kind, r.clone()));
                    }
                }
            }
        }
    }
    out
}

fn config_map_keys(built: &Built) -> BTreeMap<String, BTreeSet<String>> {
    built
        .objects
        .iter()
        .filter(|o| o.kind == "ConfigMap")
        .map(|o| {
            let keys = o.object["data"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect();
            (o.name.clone(), keys)
        })
        .collect()
}

#[test]
fn every_key_a_pod_reads_is_written_or_optional() {
    let mut checked = 0;
    let mut optional = 0;
    for version in ["0.79.0", "0.84.0"] {
        let m = common::manifest("fixture", version);
        let minimal = resource(version, ALL_EXTERNAL, false);
        // All managed, all external, and two mixes (each kind both ways beside the others).
        for mask in [0, ALL_EXTERNAL, 0b01010, 0b10101] {
            for full in [false, true] {
                let cr = resource(version, mask, full);
                let built = wandb_engine::plan(&cr, &m, None)
                    .unwrap_or_else(|e| panic!("{version} mask {mask:05b}: {e:?}"));
                let mut users = BTreeSet::new();
                user_selectors(&serde_json::to_value(&cr.spec).unwrap(), &mut users);
                let maps = config_map_keys(&built);
                for values in [Values::Set, Values::OptionalEmpty] {
                    let secrets = written_keys(&cr, &minimal, &built, values);
                    for (at, kind, r) in key_refs(&built) {
                        let name = r["name"].as_str().unwrap().to_string();
                        let key = r["key"].as_str().unwrap().to_string();
                        let case = format!(
                            "{version} external {mask:05b} full={full} {values:?}: {at} reads {kind} {name} key {key}"
                        );
                        if r["optional"] == Value::Bool(true) {
                            optional += 1;
                            continue;
                        }
                        checked += 1;
                        let written = match kind {
                            "Secret" => secrets.get(&name),
                            _ => maps.get(&name),
                        };
                        match written {
                            Some(keys) => assert!(
                                keys.contains(&key),
                                "{case}, which the operator does not write (it writes {keys:?})"
                            ),
                            None => assert!(
                                users.contains(&(name.clone(), key.clone())),
                                "{case}: neither an operator-written object nor a selector of the resource"
                            ),
                        }
                    }
                }
            }
        }
    }
    // The walk saw both kinds of reference (a vacuous pass would prove nothing).
    assert!(checked > 1000, "only {checked} references checked");
    assert!(optional > 0, "no optional reference seen");
}

#[test]
fn unset_clickhouse_replication_falls_back_to_the_manifest_default() {
    let m = common::manifest("fixture", "0.84.0");
    // ClickHouse external and minimal: replicated/clusterName not set.
    let built = wandb_engine::plan(&resource("0.84.0", 1 << 3, false), &m, None).unwrap();
    let refs = key_refs(&built);
    assert!(
        !refs.iter().any(|(_, _, r)| r["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("clickhouse-connection"))
            && matches!(r["key"].as_str(), Some("replicated" | "clustername"))),
        "an unset replication field is referenced"
    );
    let mut replicated = 0;
    for o in built.objects.iter().filter(|o| o.kind != "ConfigMap") {
        for c in o.object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for e in c["env"].as_array().into_iter().flatten() {
                match e["name"].as_str() {
                    Some("WF_CLICKHOUSE_REPLICATED") => {
                        assert_eq!(e["value"], "false", "{}: {e}", o.name);
                        replicated += 1;
                    }
                    Some("WF_CLICKHOUSE_REPLICATED_CLUSTER") => {
                        panic!("{}: the cluster variable must be left out: {e}", o.name)
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        replicated >= 4,
        "weave-trace apps and migration: {replicated}"
    );

    // Set: an optional reference to the key the controller then writes.
    let built = wandb_engine::plan(&resource("0.84.0", 1 << 3, true), &m, None).unwrap();
    let refs = key_refs(&built);
    let r = refs
        .iter()
        .find(|(at, _, _)| at.ends_with("/\"WF_CLICKHOUSE_REPLICATED\""))
        .expect("WF_CLICKHOUSE_REPLICATED references the connection when set");
    assert_eq!(r.2["key"], "replicated");
    assert_eq!(r.2["optional"], true);
}
