//! Preflight of external services: the endpoint a connection names must resolve and accept a TCP
//! connection (3 s). Checked before the first rollout and again whenever the endpoint changes;
//! the result is reported in `status.infra` (state `Degraded`) and a Warning event. It does not
//! gate the rollout: the operator may run where cluster DNS or egress differ from the apps'.

use std::time::Duration;

use wandb_engine::ServiceKind;
use wandb_engine::backends::url::ConnInputs;

const TIMEOUT: Duration = Duration::from_secs(3);

/// `host:port` of what a W&B pod will connect to, when the inputs name one.
pub fn endpoint(kind: ServiceKind, i: &ConnInputs) -> Option<String> {
    let with_port = |host: &str, port: Option<&str>, default: u16| {
        let port = port.and_then(|p| p.parse::<u16>().ok()).unwrap_or(default);
        format!("{host}:{port}")
    };
    match kind {
        ServiceKind::Mysql => Some(with_port(i.host.as_deref()?, i.port.as_deref(), 3306)),
        ServiceKind::Redis => {
            let default = if i.sentinel_master.is_some() {
                26379
            } else {
                6379
            };
            Some(with_port(i.host.as_deref()?, i.port.as_deref(), default))
        }
        ServiceKind::Clickhouse => Some(with_port(i.host.as_deref()?, i.tcp_port.as_deref(), 9000)),
        ServiceKind::Kafka => {
            let first = i
                .bootstrap_servers
                .as_deref()?
                .split(',')
                .next()?
                .trim()
                .to_string();
            (!first.is_empty()).then_some(first)
        }
        ServiceKind::ObjectStore => {
            // Cloud stores without a custom endpoint are reached over the internet: not checked.
            let ep = i.endpoint.as_deref().filter(|e| !e.is_empty())?;
            let (https, rest) = match ep.split_once("://") {
                Some((scheme, rest)) => (scheme == "https", rest),
                None => (i.tls.as_deref() == Some("true"), ep),
            };
            let hostport = rest.split('/').next()?;
            if hostport
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                Some(hostport.to_string())
            } else {
                Some(with_port(
                    hostport,
                    i.port.as_deref(),
                    if https { 443 } else { 80 },
                ))
            }
        }
    }
}

/// `Ok` when `endpoint` resolves and accepts a TCP connection in time.
pub async fn check(endpoint: &str) -> Result<(), String> {
    match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(endpoint)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{endpoint} is not reachable: {e}")),
        Err(_) => Err(format!(
            "{endpoint} did not accept a connection within {}s",
            TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(f: impl FnOnce(&mut ConnInputs)) -> ConnInputs {
        let mut i = ConnInputs::new("default");
        f(&mut i);
        i
    }

    #[test]
    fn endpoints_per_service() {
        let mysql = inputs(|i| i.host = Some("db".into()));
        assert_eq!(
            endpoint(ServiceKind::Mysql, &mysql).as_deref(),
            Some("db:3306")
        );
        let sentinel = inputs(|i| {
            i.host = Some("r".into());
            i.sentinel_master = Some("m".into());
        });
        assert_eq!(
            endpoint(ServiceKind::Redis, &sentinel).as_deref(),
            Some("r:26379")
        );
        let kafka = inputs(|i| i.bootstrap_servers = Some("k1:9093, k2:9093".into()));
        assert_eq!(
            endpoint(ServiceKind::Kafka, &kafka).as_deref(),
            Some("k1:9093")
        );
        let s3 = inputs(|i| i.endpoint = Some("https://minio.local/x".into()));
        assert_eq!(
            endpoint(ServiceKind::ObjectStore, &s3).as_deref(),
            Some("minio.local:443")
        );
        let aws = inputs(|i| i.bucket = Some("b".into()));
        assert_eq!(endpoint(ServiceKind::ObjectStore, &aws), None);
    }

    #[tokio::test]
    async fn checks_reachability() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        assert!(check(&addr).await.is_ok());
        drop(l);
        assert!(check(&addr).await.is_err());
        assert!(
            check("unresolvable.invalid:3306")
                .await
                .unwrap_err()
                .contains("unresolvable.invalid:3306")
        );
    }
}
