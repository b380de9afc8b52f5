use super::*;

fn inputs(pairs: &[(&str, &str)]) -> ConnInputs {
    let mut i = ConnInputs::new("default");
    for (k, v) in pairs {
        assert!(i.set(k, v), "unknown field {k}");
    }
    i
}

/// Every character class the encoder must handle, and its expected encoding.
const TRICKY: &str = "p@ss:w/o?r#d%+ é😀~._-";
const TRICKY_ENC: &str = "p%40ss%3Aw%2Fo%3Fr%23d%25%2B%20%C3%A9%F0%9F%98%80~._-";

#[test]
fn encoding_keeps_only_unreserved_characters() {
    assert_eq!(encode(TRICKY), TRICKY_ENC);
    assert_eq!(encode("AZaz09-._~"), "AZaz09-._~");
    assert_eq!(encode("a b"), "a%20b");
    assert_eq!(
        encode("&=;,!*'()$[]"),
        "%26%3D%3B%2C%21%2A%27%28%29%24%5B%5D"
    );
    assert_eq!(encode(""), "");
}

#[test]
fn mysql_plain() {
    let i = inputs(&[
        ("host", "db.example.com"),
        ("database", "wandb_local"),
        ("username", "wandb"),
        ("password", "secret"),
    ]);
    assert_eq!(
        mysql_url(&i).unwrap(),
        "mysql://wandb:secret@db.example.com:3306/wandb_local"
    );
}

#[test]
fn mysql_encodes_credentials_and_database() {
    let i = inputs(&[
        ("host", "10.0.0.5"),
        ("port", "3307"),
        ("database", "w&b db"),
        ("user", "us@er:x"),
        ("password", TRICKY),
    ]);
    assert_eq!(
        mysql_url(&i).unwrap(),
        format!("mysql://us%40er%3Ax:{TRICKY_ENC}@10.0.0.5:3307/w%26b%20db")
    );
}

#[test]
fn mysql_tls_and_certificates() {
    let i = inputs(&[
        ("host", "db"),
        ("database", "wandb"),
        ("user", "u"),
        ("password", "p"),
        ("tls", "custom"),
        ("sslCa", "-----BEGIN CERTIFICATE-----"),
        ("sslCert", "pem"),
        ("sslKey", "pem"),
    ]);
    assert_eq!(
        mysql_url(&i).unwrap(),
        "mysql://u:p@db:3306/wandb?tls=custom&ssl-ca=/etc/ssl/certs/mysql_ca.pem\
         &ssl-cert=/etc/ssl/certs/mysql_ssl_cert.pem&ssl-key=/etc/ssl/certs/mysql_ssl_key.pem"
    );
    // Only the CA; no tls param unless set.
    let i = inputs(&[
        ("host", "db"),
        ("database", "wandb"),
        ("user", "u"),
        ("password", "p"),
        ("sslCa", "pem"),
    ]);
    assert_eq!(
        mysql_url(&i).unwrap(),
        "mysql://u:p@db:3306/wandb?ssl-ca=/etc/ssl/certs/mysql_ca.pem"
    );
    let mut i = i;
    i.instance = "runs".into();
    assert_eq!(
        mysql_url(&i).unwrap(),
        "mysql://u:p@db:3306/wandb?ssl-ca=/etc/ssl/certs/mysql_runs_ca.pem"
    );
}

#[test]
fn mysql_errors_name_the_field() {
    let i = inputs(&[("database", "d"), ("user", "u")]);
    assert_eq!(mysql_url(&i), Err(UrlError::Missing("host")));
    let i = inputs(&[
        ("host", "h"),
        ("port", "70000"),
        ("database", "d"),
        ("user", "u"),
    ]);
    assert!(matches!(
        mysql_url(&i),
        Err(UrlError::Invalid { field: "port", .. })
    ));
    let i = inputs(&[("host", "h/x"), ("database", "d"), ("user", "u")]);
    assert!(matches!(
        mysql_url(&i),
        Err(UrlError::Invalid { field: "host", .. })
    ));
}

#[test]
fn redis_forms() {
    let i = inputs(&[("host", "cache")]);
    assert_eq!(
        redis_url(&i).unwrap(),
        "redis://cache:6379?ttlInSeconds=604800"
    );
    let i = inputs(&[("host", "cache"), ("password", TRICKY)]);
    assert_eq!(
        redis_url(&i).unwrap(),
        format!("redis://:{TRICKY_ENC}@cache:6379?ttlInSeconds=604800")
    );
    let i = inputs(&[("host", "cache"), ("port", "6380"), ("tls", "true")]);
    assert_eq!(
        redis_url(&i).unwrap(),
        "redis://cache:6380?ttlInSeconds=604800&tls=true"
    );
    let i = inputs(&[("host", "cache"), ("tls", "false"), ("sslCa", "pem")]);
    assert_eq!(
        redis_url(&i).unwrap(),
        "redis://cache:6379?ttlInSeconds=604800&tls=true&caCertPath=/etc/ssl/certs/redis_ca.pem"
    );
}

#[test]
fn redis_sentinel_and_params() {
    let mut i = inputs(&[
        ("host", "redis.redis.svc.cluster.local"),
        ("password", "pw"),
        ("sentinelMaster", "gorilla"),
    ]);
    i.params.insert("poolSize".into(), "20".into());
    i.params.insert("dialTimeout".into(), "5s".into());
    i.params.insert("empty".into(), String::new());
    i.params.insert("ttlInSeconds".into(), "3600".into());
    i.params.insert("weird".into(), "a&b=c d".into());
    assert_eq!(
        redis_url(&i).unwrap(),
        "redis://:pw@redis.redis.svc.cluster.local:26379?ttlInSeconds=3600&master=gorilla\
         &dialTimeout=5s&poolSize=20&weird=a%26b%3Dc%20d"
    );
}

#[test]
fn s3_compatible_endpoint() {
    let i = inputs(&[
        ("endpoint", "minio.example.com"),
        ("port", "9000"),
        ("accessKey", "AK"),
        ("secretKey", "s/k+="),
        ("bucket", "wandb"),
        ("path", "/prefix/sub/"),
        ("region", "us-east-1"),
        ("tlsEnabled", "false"),
    ]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "s3://AK:s%2Fk%2B%3D@minio.example.com:9000/wandb/prefix/sub?region=us-east-1&tls=false&forcePathStyle=true"
    );
    // Scheme in the endpoint decides tls; explicit forcePathStyle wins.
    let i = inputs(&[
        ("endpoint", "https://s3.internal:8443/"),
        ("bucket", "b"),
        ("forcePathStyle", "false"),
    ]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "s3://s3.internal:8443/b?tls=true&forcePathStyle=false"
    );
}

#[test]
fn aws_s3_without_endpoint() {
    let i = inputs(&[
        ("accessKey", "AKIA"),
        ("secretKey", TRICKY),
        ("bucket", "my-bucket"),
        ("path", "wandb"),
        ("region", "eu-west-1"),
    ]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        format!("s3://AKIA:{TRICKY_ENC}@my-bucket/wandb?region=eu-west-1")
    );
    // Workload identity: no userinfo.
    let i = inputs(&[("bucket", "my-bucket"), ("region", "eu-west-1")]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "s3://my-bucket?region=eu-west-1"
    );
    let i = inputs(&[("bucket", "b"), ("accessKey", "only")]);
    assert!(matches!(
        object_store_url(&i),
        Err(UrlError::Invalid {
            field: "accessKey",
            ..
        })
    ));
}

#[test]
fn gcs_and_azure() {
    let i = inputs(&[("provider", "gcs"), ("bucket", "gb"), ("path", "a/b")]);
    assert_eq!(object_store_url(&i).unwrap(), "gs://gb/a/b");
    let i = inputs(&[
        ("provider", "azure"),
        ("accessKey", "myaccount"),
        ("secretKey", "k3y+/=="),
        ("bucket", "container"),
        ("path", "prefix"),
    ]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "az://:k3y%2B%2F%3D%3D@myaccount/container/prefix"
    );
    let i = inputs(&[
        ("provider", "azure"),
        ("accessKey", "myaccount"),
        ("bucket", "container"),
    ]);
    assert_eq!(object_store_url(&i).unwrap(), "az://myaccount/container");
}

#[test]
fn coreweave_is_virtual_host_style() {
    let i = inputs(&[
        ("endpoint", "https://cwobject.com"),
        ("accessKey", "AK"),
        ("secretKey", "SK"),
        ("bucket", "b"),
        ("region", "US-EAST-04A"),
    ]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "s3://AK:SK@cwobject.com/b?region=US-EAST-04A&tls=true&forcePathStyle=false"
    );
    let i = inputs(&[("endpoint", "http://accel.cwlota.com"), ("bucket", "b")]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "s3://accel.cwlota.com/b?tls=false&forcePathStyle=false"
    );
    let i = inputs(&[("provider", "coreweave"), ("bucket", "b")]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "s3://cwobject.com/b?tls=true&forcePathStyle=false"
    );
    // A CoreWeave-looking name that is another domain stays path-style.
    let i = inputs(&[("endpoint", "notcoreweave.com"), ("bucket", "b")]);
    assert_eq!(
        object_store_url(&i).unwrap(),
        "s3://notcoreweave.com/b?forcePathStyle=true"
    );
}

#[test]
fn clickhouse_form() {
    let i = inputs(&[
        ("host", "ch"),
        ("user", "wandb"),
        ("password", TRICKY),
        ("database", "weave"),
        ("tls", "false"),
    ]);
    assert_eq!(
        clickhouse_url(&i).unwrap(),
        format!("clickhouse://wandb:{TRICKY_ENC}@ch:9000/weave?tls=false")
    );
    let i = inputs(&[("host", "ch"), ("tcpPort", "9440"), ("user", "u")]);
    assert_eq!(
        clickhouse_url(&i).unwrap(),
        "clickhouse://u@ch:9440/default"
    );
}

#[test]
fn kafka_forms() {
    let i = inputs(&[("bootstrapServers", "k1:9093, k2:9093")]);
    assert_eq!(kafka_url(&i).unwrap(), "kafka://k1:9093");
    let i = inputs(&[
        ("bootstrapServers", "broker"),
        ("user", "svc user"),
        ("password", TRICKY),
        ("tls", "true"),
        ("saslMechanism", "SCRAM-SHA-512"),
    ]);
    assert_eq!(
        kafka_url(&i).unwrap(),
        format!("kafka://svc%20user:{TRICKY_ENC}@broker:9092?tls=true&saslMechanism=SCRAM-SHA-512")
    );
    let i = inputs(&[("bootstrapServers", "broker:9093"), ("sslCa", "PEM")]);
    assert_eq!(
        kafka_url(&i).unwrap(),
        "kafka://broker:9093?tls=true&caCertPath=/etc/ssl/certs/kafka_ca.pem",
        "a CA implies TLS and names the mounted file"
    );
    let i = inputs(&[("bootstrapServers", " , ")]);
    assert_eq!(kafka_url(&i), Err(UrlError::Missing("bootstrapServers")));
}

#[test]
fn secret_data_publishes_every_field() {
    let i = inputs(&[
        ("host", "db"),
        ("database", "wandb_local"),
        ("user", "wandb"),
        ("password", "p w"),
    ]);
    let d = connection_secret_data(ServiceKind::Mysql, &i).unwrap();
    assert_eq!(d["url"], "mysql://wandb:p%20w@db:3306/wandb_local");
    assert_eq!(d["password"], "p w", "raw value beside the URL");
    for kind in ServiceKind::ALL {
        let i = inputs(&[
            ("host", "h"),
            ("user", "u"),
            ("database", "d"),
            ("bucket", "b"),
            ("database", "d"),
            ("bootstrapServers", "k:9092"),
        ]);
        let d = connection_secret_data(kind, &i).unwrap();
        for f in kind.fields() {
            assert!(d.contains_key(*f), "{kind:?} misses {f}");
        }
    }
    let i = inputs(&[("bucket", "b"), ("region", "eu-west-1")]);
    let d = connection_secret_data(ServiceKind::ObjectStore, &i).unwrap();
    assert_eq!(d["host"], "s3.eu-west-1.amazonaws.com");
    assert_eq!(d["port"], "443");
    assert_eq!(d["provider"], "s3");
    let i = inputs(&[
        ("host", "ch"),
        ("user", "u"),
        ("replicated", "true"),
        ("clusterName", "prod"),
    ]);
    let d = connection_secret_data(ServiceKind::Clickhouse, &i).unwrap();
    assert_eq!(
        (d["httpport"].as_str(), d["tcpport"].as_str()),
        ("8123", "9000")
    );
    assert_eq!(d["clustername"], "prod");
    assert_eq!(d["replicated"], "true");
}

#[test]
fn unknown_fields_are_reported() {
    let mut i = ConnInputs::new("default");
    assert!(!i.set("nonsense", "x"));
    assert!(i.set("HTTPPort", "8443"));
    assert_eq!(i.http_port.as_deref(), Some("8443"));
    assert!(i.set("host", ""));
    assert_eq!(i.host, None, "empty counts as unset");
}

/// The writer follows the one table of keys env wiring reads: every `fields()` key always (so a
/// required reference never misses), every `optional_fields()` key exactly when its input is set.
#[test]
fn connection_secrets_carry_the_keys_the_table_promises() {
    let minimal = || {
        let mut i = ConnInputs::new("default");
        for (f, v) in [
            ("host", "h"),
            ("user", "u"),
            ("bucket", "b"),
            ("database", "d"),
            ("bootstrapServers", "k:9092"),
        ] {
            i.set(f, v);
        }
        i
    };
    for kind in ServiceKind::ALL {
        let data = connection_secret_data(kind, &minimal()).unwrap();
        for f in kind.fields() {
            assert!(data.contains_key(*f), "{kind:?} lacks {f}: {data:?}");
        }
        for o in kind.optional_fields() {
            assert!(!data.contains_key(o.key), "{kind:?} writes unset {}", o.key);
            let mut set = minimal();
            assert!(set.set(o.cr_field, "true"), "{}", o.cr_field);
            let data = connection_secret_data(kind, &set).unwrap();
            assert_eq!(
                data.get(o.key).map(String::as_str),
                Some("true"),
                "{kind:?}"
            );
            // Empty counts as unset: left out, hence optional references.
            let mut empty = minimal();
            empty.set(o.cr_field, "");
            assert!(
                !connection_secret_data(kind, &empty)
                    .unwrap()
                    .contains_key(o.key)
            );
        }
    }
}

#[test]
fn mysql_from_a_whole_url_and_fields_override_its_parts() {
    let url = format!("mysql://wandb:{TRICKY_ENC}@db.example.com:3307/wandb_local?tls=preferred");
    let i = inputs(&[("url", &url)]);
    assert_eq!(i.password.as_deref(), Some(TRICKY), "percent-decoded");
    assert_eq!(i.port.as_deref(), Some("3307"));
    assert_eq!(i.tls.as_deref(), Some("preferred"));
    assert_eq!(mysql_url(&i).unwrap(), url, "recomposed identically");
    let data = connection_secret_data(ServiceKind::Mysql, &i).unwrap();
    assert_eq!(data["host"], "db.example.com");
    assert_eq!(data["database"], "wandb_local");
    // A field set after the URL wins.
    let i = inputs(&[("url", &url), ("host", "other.example.com")]);
    assert!(mysql_url(&i).unwrap().contains("@other.example.com:3307/"));
    // Without a port the default applies; a URL without a host names what is missing.
    let i = inputs(&[("url", "mysql://u:p@db/wandb")]);
    assert_eq!(mysql_url(&i).unwrap(), "mysql://u:p@db:3306/wandb");
    let i = inputs(&[("url", "mysql:///wandb")]);
    assert_eq!(mysql_url(&i).unwrap_err(), UrlError::Missing("host"));
}
