//! The user's Secrets an instance reads, by name: what the controller watches so that a rotated
//! password or a moved endpoint is acted on within seconds rather than at the periodic pass.

use std::collections::BTreeSet;

use wandb_api::{SecretKeySelector, WeightsAndBiases};

use crate::backends::external;
use crate::instance::Instance;

/// Every Secret named in the spec: external services' keys, the license, OIDC, Slack, the
/// email sink or SMTP keys, proxy URLs and image pull secrets (also used to pull the manifest).
/// Operator-owned Secrets (generated credentials, connection Secrets) are not listed: the
/// controller watches those as owned objects.
pub fn user_secrets(cr: &WeightsAndBiases) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |s: Option<&SecretKeySelector>| {
        if let Some(s) = s {
            out.insert(s.name.clone());
        }
    };
    let wandb = &cr.spec.wandb;
    add(wandb.license_secret.as_ref());
    if let Some(o) = &wandb.oidc {
        for s in [
            &o.client_id,
            &o.client_secret,
            &o.issuer_url,
            &o.auth_method,
        ] {
            add(s.as_ref());
        }
    }
    if let Some(n) = &wandb.notifications {
        if let Some(e) = &n.email {
            add(e.sink.as_ref());
            if let Some(smtp) = &e.smtp {
                for s in [&smtp.host, &smtp.port, &smtp.username, &smtp.password] {
                    add(Some(s));
                }
            }
        }
        if let Some(slack) = &n.slack {
            add(Some(&slack.client_id));
            add(Some(&slack.client_secret));
        }
    }
    if let Some(g) = &cr.spec.global {
        if let Some(p) = &g.proxy {
            for v in [&p.http_proxy, &p.https_proxy].into_iter().flatten() {
                add(v.value_from.as_ref().map(|f| &f.secret_key_ref));
            }
        }
        for r in g.image_pull_secrets.iter().flatten() {
            out.insert(r.name.clone());
        }
    }
    if let Ok(inst) = Instance::from_cr(cr) {
        for (kind, instance) in inst.services.keys() {
            for (_, s) in external::selectors(cr, *kind, instance) {
                out.insert(s.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(yaml: &str) -> WeightsAndBiases {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn every_secret_the_spec_names_is_listed_once() {
        let cr = cr(r#"
apiVersion: apps.wandb.com/v2
kind: WeightsAndBiases
metadata: {name: w, namespace: ns}
spec:
  global:
    imagePullSecrets: [{name: pull}]
    proxy: {httpsProxy: {valueFrom: {secretKeyRef: {name: proxy, key: url}}}}
  wandb:
    hostname: http://w.local
    version: "0.84.0"
    licenseSecret: {name: license, key: l}
    oidc: {clientId: {name: oidc, key: id}, clientSecret: {name: oidc, key: secret}}
    notifications:
      email:
        smtp:
          host: {name: smtp, key: host}
          port: {name: smtp, key: port}
          username: {name: smtp, key: user}
          password: {name: smtp-password, key: password}
  mysql:
    default:
      externalMysql:
        host: {name: db, key: host}
        database: {name: db, key: database}
        username: {name: db, key: user}
        password: {name: db-password, key: password}
"#);
        assert_eq!(
            user_secrets(&cr).into_iter().collect::<Vec<_>>(),
            [
                "db",
                "db-password",
                "license",
                "oidc",
                "proxy",
                "pull",
                "smtp",
                "smtp-password"
            ]
        );
    }

    #[test]
    fn a_managed_instance_reads_no_user_secret() {
        let cr = cr(r#"
apiVersion: apps.wandb.com/v2
kind: WeightsAndBiases
metadata: {name: w, namespace: ns}
spec:
  wandb: {hostname: http://w.local, version: "0.84.0", license: literal}
"#);
        assert!(user_secrets(&cr).is_empty());
    }
}
