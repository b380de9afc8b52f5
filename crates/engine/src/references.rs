//! The user's Secrets an instance reads, by name: what the controller watches so that a rotated
//! password or a moved endpoint is acted on within seconds rather than at the periodic pass.

use std::collections::{BTreeMap, BTreeSet};

use wandb_api::{SecretKeySelector, WeightsAndBiases};

use crate::backends::external;
use crate::instance::Instance;

/// Every Secret named in the spec: external services' keys, the license, OIDC, Slack, the
/// email sink or SMTP keys, proxy URLs and image pull secrets (also used to pull the manifest).
/// Operator-owned Secrets (generated credentials, connection Secrets) are not listed: the
/// controller watches those as owned objects.
pub fn user_secrets(cr: &WeightsAndBiases) -> BTreeSet<String> {
    user_secret_fields(cr).into_keys().collect()
}

/// [`user_secrets`] with the first field of the resource that names each, e.g.
/// `spec.wandb.licenseSecret`: what a status message points the user at.
pub fn user_secret_fields(cr: &WeightsAndBiases) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |s: Option<&SecretKeySelector>, field: &str| {
        if let Some(s) = s {
            out.entry(s.name.clone())
                .or_insert_with(|| field.to_string());
        }
    };
    let wandb = &cr.spec.wandb;
    add(wandb.license_secret.as_ref(), "spec.wandb.licenseSecret");
    if let Some(o) = &wandb.oidc {
        add(o.client_id.as_ref(), "spec.wandb.oidc.clientId");
        add(o.client_secret.as_ref(), "spec.wandb.oidc.clientSecret");
        add(o.issuer_url.as_ref(), "spec.wandb.oidc.issuerUrl");
        add(o.auth_method.as_ref(), "spec.wandb.oidc.authMethod");
    }
    if let Some(n) = &wandb.notifications {
        if let Some(e) = &n.email {
            add(e.sink.as_ref(), "spec.wandb.notifications.email.sink");
            if let Some(smtp) = &e.smtp {
                let f = "spec.wandb.notifications.email.smtp";
                add(Some(&smtp.host), &format!("{f}.host"));
                add(Some(&smtp.port), &format!("{f}.port"));
                add(Some(&smtp.username), &format!("{f}.username"));
                add(Some(&smtp.password), &format!("{f}.password"));
            }
        }
        if let Some(slack) = &n.slack {
            add(
                Some(&slack.client_id),
                "spec.wandb.notifications.slack.clientId",
            );
            add(
                Some(&slack.client_secret),
                "spec.wandb.notifications.slack.clientSecret",
            );
        }
    }
    if let Some(g) = &cr.spec.global {
        if let Some(p) = &g.proxy {
            add(
                p.http_proxy
                    .as_ref()
                    .and_then(|v| v.value_from.as_ref())
                    .map(|f| &f.secret_key_ref),
                "spec.global.proxy.httpProxy",
            );
            add(
                p.https_proxy
                    .as_ref()
                    .and_then(|v| v.value_from.as_ref())
                    .map(|f| &f.secret_key_ref),
                "spec.global.proxy.httpsProxy",
            );
        }
        for r in g.image_pull_secrets.iter().flatten() {
            out.entry(r.name.clone())
                .or_insert_with(|| "spec.global.imagePullSecrets".to_string());
        }
    }
    if let Ok(inst) = Instance::from_cr(cr) {
        for (kind, instance) in inst.services.keys() {
            for (field, s) in external::selectors(cr, *kind, instance) {
                out.entry(s.name)
                    .or_insert_with(|| format!("spec.{}.{instance} ({field})", kind.key()));
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
