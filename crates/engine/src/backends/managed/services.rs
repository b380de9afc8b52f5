//! What each managed service runs: its container, probes, ports and setup Jobs.

use super::telemetry;
use super::workload::*;
use super::*;

impl ManagedMysql {
    pub(super) fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Mysql;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(ctx.inst, kind, &self.instance);
        let mut c = Container {
            name: "mysql".into(),
            // Server settings recurring across W&B installs (reference §6(a)); the data
            // directory is below the volume root (`lost+found`).
            args: Some(
                [
                    "--datadir=/var/lib/mysql/data",
                    "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_0900_ai_ci",
                    "--skip-name-resolve",
                    "--binlog-row-image=MINIMAL",
                    "--max-prepared-stmt-count=1048576",
                    "--innodb-online-alter-log-max-size=268435456",
                    "--sort-buffer-size=33554432",
                ]
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            ),
            env: Some(vec![
                secret_env("MYSQL_ROOT_PASSWORD", &creds, KEY_ROOT_PASSWORD),
                lit("MYSQL_DATABASE", MYSQL_DATABASE),
                lit("MYSQL_USER", MYSQL_USER),
                secret_env("MYSQL_PASSWORD", &creds, KEY_PASSWORD),
            ]),
            ..Default::default()
        };
        // `mysqladmin ping` exits 0 whenever the server answers, even "access denied".
        probes(
            &mut c,
            exec_probe(
                &["mysqladmin", "ping", "-h", "127.0.0.1", "--silent"],
                0,
                10,
                3,
            ),
        );
        Workload {
            kind,
            instance: self.instance.clone(),
            uid: 999,
            container: c,
            data_mount: "/var/lib/mysql",
            scratch: vec![("tmp", "/tmp"), ("run", "/var/run/mysqld")],
            service_ports: vec![("mysql", MYSQL_PORT)],
            headless_ports: vec![("mysql", MYSQL_PORT)],
            metrics: telemetry::enabled(ctx, kind, &self.instance)
                .then(|| telemetry::mysql(&creds)),
        }
        .objects(ctx, &img)
    }
}

impl ManagedRedis {
    pub(super) fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Redis;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(ctx.inst, kind, &self.instance);
        let mut c = Container {
            name: "redis".into(),
            command: Some(vec!["redis-server".into()]),
            // `$(REDIS_PASSWORD)` is expanded by the kubelet: the pod spec holds no secret.
            args: Some(
                [
                    "--requirepass",
                    "$(REDIS_PASSWORD)",
                    "--appendonly",
                    "yes",
                    "--dir",
                    "/data",
                ]
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            ),
            env: Some(vec![
                secret_env("REDIS_PASSWORD", &creds, KEY_PASSWORD),
                // redis-cli reads the password from here (probes).
                secret_env("REDISCLI_AUTH", &creds, KEY_PASSWORD),
            ]),
            ..Default::default()
        };
        probes(
            &mut c,
            exec_probe(
                &["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"],
                0,
                10,
                3,
            ),
        );
        Workload {
            kind,
            instance: self.instance.clone(),
            uid: 999,
            container: c,
            data_mount: "/data",
            scratch: vec![],
            service_ports: vec![("redis", REDIS_PORT)],
            headless_ports: vec![("redis", REDIS_PORT)],
            metrics: telemetry::enabled(ctx, kind, &self.instance)
                .then(|| telemetry::redis(&creds)),
        }
        .objects(ctx, &img)
    }
}

/// The SeaweedFS start script: writes the S3 identity file from the env (the generated keys are
/// alphanumeric; anything that would break the JSON is refused) and starts all components.
pub(super) const SEAWEED_START: &str = r#"case "$S3_ACCESS_KEY$S3_SECRET_KEY" in *'"'*|*'\'*) echo "S3 credentials must not contain quotes or backslashes" >&2; exit 1;; esac
printf '{"identities":[{"name":"wandb","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" > /tmp/s3.json
exec /usr/bin/weed -logtostderr=true server -dir=/data -ip.bind=0.0.0.0 -master.volumeSizeLimitMB=1024 -volume.max=0 -s3 -s3.port={s3} -master.port={master} -filer.port={filer} -volume.port={volume} -s3.config=/tmp/s3.json
"#;

/// Creates the bucket unless it exists (`weed shell` over the master's headless address).
pub(super) const SEAWEED_BUCKET: &str = r#"set -e
if echo "s3.bucket.list" | weed shell -master="$MASTER" | grep -Eq "^[[:space:]]*$BUCKET_NAME([[:space:]]|$)"; then
  echo "bucket $BUCKET_NAME exists"; exit 0
fi
echo "s3.bucket.create -name $BUCKET_NAME" | weed shell -master="$MASTER"
echo "s3.bucket.list" | weed shell -master="$MASTER" | grep -Eq "^[[:space:]]*$BUCKET_NAME([[:space:]]|$)"
echo "bucket $BUCKET_NAME created"
"#;

/// The start script, with the ports of the one table (`super::*_PORT`) and SeaweedFS's own
/// metrics endpoint when asked for.
fn seaweed_start(metrics: bool) -> String {
    let script = SEAWEED_START
        .replace("{s3}", &S3_PORT.to_string())
        .replace("{master}", &SEAWEED_MASTER_PORT.to_string())
        .replace("{filer}", &SEAWEED_FILER_PORT.to_string())
        .replace("{volume}", &SEAWEED_VOLUME_PORT.to_string());
    if metrics {
        format!(
            "{} -metricsPort={}\n",
            script.trim_end(),
            telemetry::SEAWEED_METRICS_PORT
        )
    } else {
        script
    }
}

impl ManagedObjectStore {
    pub(super) fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::ObjectStore;
        let metrics = telemetry::enabled(ctx, kind, &self.instance);
        let inst = ctx.inst;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(inst, kind, &self.instance);
        let mut c = Container {
            name: "seaweedfs".into(),
            command: Some(vec!["/bin/sh".into(), "-ec".into(), seaweed_start(metrics)]),
            env: Some(vec![
                secret_env("S3_ACCESS_KEY", &creds, KEY_ACCESS_KEY),
                secret_env("S3_SECRET_KEY", &creds, KEY_SECRET_KEY),
            ]),
            ..Default::default()
        };
        probes(&mut c, tcp_probe(S3_PORT, 10, 3));
        let mut out = Workload {
            kind,
            instance: self.instance.clone(),
            uid: 1000,
            container: c,
            data_mount: "/data",
            scratch: vec![("tmp", "/tmp")],
            service_ports: vec![("s3", S3_PORT)],
            headless_ports: vec![
                ("s3", S3_PORT),
                ("master", SEAWEED_MASTER_PORT),
                ("master-grpc", SEAWEED_MASTER_PORT + 10000),
                ("filer", SEAWEED_FILER_PORT),
                ("filer-grpc", SEAWEED_FILER_PORT + 10000),
                ("volume", SEAWEED_VOLUME_PORT),
                ("volume-grpc", SEAWEED_VOLUME_PORT + 10000),
            ],
            metrics: metrics.then(telemetry::seaweedfs),
        }
        .objects(ctx, &img);
        let master = format!(
            "{}.{}.svc.cluster.local:{SEAWEED_MASTER_PORT}",
            headless_service(inst, kind, &self.instance),
            inst.namespace
        );
        let job = Container {
            name: "create-bucket".into(),
            command: Some(vec!["/bin/sh".into(), "-ec".into(), SEAWEED_BUCKET.into()]),
            env: Some(vec![lit("MASTER", &master), lit("BUCKET_NAME", BUCKET)]),
            ..Default::default()
        };
        out.push(setup_job(
            ctx,
            kind,
            &self.instance,
            "bucket",
            1000,
            job,
            &img,
        ));
        out
    }
}

impl ManagedClickhouse {
    pub(super) fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Clickhouse;
        let img = resolve_image(ctx, kind, &self.instance);
        let creds = credentials_secret(ctx.inst, kind, &self.instance);
        let mut c = Container {
            name: "clickhouse".into(),
            // The image's entrypoint creates the user and database from these.
            env: Some(vec![
                lit("CLICKHOUSE_USER", CLICKHOUSE_USER),
                secret_env("CLICKHOUSE_PASSWORD", &creds, KEY_PASSWORD),
                lit("CLICKHOUSE_DB", CLICKHOUSE_DATABASE),
                lit("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1"),
            ]),
            ..Default::default()
        };
        probes(&mut c, http_probe("/ping", CLICKHOUSE_HTTP_PORT, 10, 3));
        Workload {
            kind,
            instance: self.instance.clone(),
            uid: 101,
            container: c,
            data_mount: "/var/lib/clickhouse",
            scratch: vec![("logs", "/var/log/clickhouse-server"), ("tmp", "/tmp")],
            service_ports: vec![
                ("http", CLICKHOUSE_HTTP_PORT),
                ("native", CLICKHOUSE_TCP_PORT),
            ],
            headless_ports: vec![
                ("http", CLICKHOUSE_HTTP_PORT),
                ("native", CLICKHOUSE_TCP_PORT),
            ],
            metrics: telemetry::enabled(ctx, kind, &self.instance).then(telemetry::clickhouse),
        }
        .objects(ctx, &img)
    }
}

/// A stable KRaft cluster id per instance: 16 bytes of SHA-256 of `<namespace>/<service>`, in
/// URL-safe base64 without padding (22 characters), as `kafka-storage.sh random-uuid` prints.
pub fn kafka_cluster_id(namespace: &str, service: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let digest = Sha256::digest(format!("{namespace}/{service}").as_bytes());
    let bytes = &digest[..16];
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Creates each topic unless it exists; arguments are `topic:partitions`.
pub(super) const KAFKA_TOPICS: &str = r#"for spec in "$@"; do
  topic="${spec%%:*}"; partitions="${spec##*:}"
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor 1
done
"#;

pub(super) fn legal_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl ManagedKafka {
    pub(super) fn objects(&self, ctx: &InfraContext) -> Vec<DesiredObject> {
        let kind = ServiceKind::Kafka;
        let inst = ctx.inst;
        let img = resolve_image(ctx, kind, &self.instance);
        let name = inst.service_name(kind, &self.instance);
        let host = format!("{name}.{}.svc.cluster.local", inst.namespace);
        let env = vec![
            lit("CLUSTER_ID", &kafka_cluster_id(&inst.namespace, &name)),
            lit("KAFKA_NODE_ID", "1"),
            lit("KAFKA_PROCESS_ROLES", "broker,controller"),
            lit(
                "KAFKA_LISTENERS",
                &format!("PLAINTEXT://:{KAFKA_PORT},CONTROLLER://:{KAFKA_CONTROLLER_PORT}"),
            ),
            lit(
                "KAFKA_ADVERTISED_LISTENERS",
                &format!("PLAINTEXT://{host}:{KAFKA_PORT}"),
            ),
            lit("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            lit(
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ),
            lit("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            lit(
                "KAFKA_CONTROLLER_QUORUM_VOTERS",
                &format!("1@localhost:{KAFKA_CONTROLLER_PORT}"),
            ),
            lit("KAFKA_LOG_DIRS", "/var/lib/kafka/data/logs"),
            lit("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            lit("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            lit("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            lit("KAFKA_MIN_INSYNC_REPLICAS", "1"),
            lit("KAFKA_DEFAULT_REPLICATION_FACTOR", "1"),
            lit("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            lit("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false"),
        ];
        let mut c = Container {
            name: "kafka".into(),
            env: Some(env),
            ..Default::default()
        };
        probes(&mut c, tcp_probe(KAFKA_PORT, 10, 3));
        let mut out = Workload {
            kind,
            instance: self.instance.clone(),
            uid: 1000,
            container: c,
            data_mount: "/var/lib/kafka/data",
            scratch: vec![("tmp", "/tmp")],
            service_ports: vec![("kafka", KAFKA_PORT)],
            headless_ports: vec![("kafka", KAFKA_PORT), ("controller", KAFKA_CONTROLLER_PORT)],
            metrics: None,
        }
        .objects(ctx, &img);

        let topics: Vec<String> = ctx
            .manifest
            .enabled_topics(ctx.features)
            .filter(|t| legal_topic(&t.topic))
            .map(|t| format!("{}:{}", t.topic, t.partition_count.unwrap_or(1).max(1)))
            .collect();
        if !topics.is_empty() {
            let mut args = vec!["topics".to_string()];
            args.extend(topics);
            let job = Container {
                name: "create-topics".into(),
                command: Some(vec!["/bin/sh".into(), "-ec".into(), KAFKA_TOPICS.into()]),
                args: Some(args),
                env: Some(vec![lit("BOOTSTRAP", &format!("{host}:{KAFKA_PORT}"))]),
                ..Default::default()
            };
            out.push(setup_job(
                ctx,
                kind,
                &self.instance,
                "topics",
                1000,
                job,
                &img,
            ));
        }
        out
    }
}
