//! What the controller would write into the Secrets it composes, computed without writing: each
//! connection Secret (a managed service's from its generated credentials, an external one's from
//! the user's Secret keys, through the engine's URL functions), the license copy and the email
//! sink. `diff` compares these with the live Secrets (values never shown) and hashes them into the
//! pod templates' inputs hash exactly as the controller does, so a rotated password shows as the
//! connection Secret and the Deployments that would change.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::{external, managed, url};
use wandb_engine::inputs_hash::{self, SecretDigests};
use wandb_engine::{Built, Mode, SecretSource};

use crate::user_secrets::SecretReader;

/// Secret name -> key -> value, for each declared Secret that could be composed now.
pub type Composed = BTreeMap<String, BTreeMap<String, String>>;

/// The data of every composed Secret of `built` whose inputs are all present.
pub async fn composed(
    client: &kube::Client,
    namespace: &str,
    cr: &WeightsAndBiases,
    built: &Built,
) -> Result<Composed, String> {
    let fail = |e: kube::Error| format!("reading Secrets: {e}");
    let mut reader = SecretReader::new(client, namespace);
    let mut out = Composed::new();
    for plan in &built.infra {
        let inputs = match plan.mode {
            Mode::Managed => {
                let creds = match &plan.credentials_secret {
                    None => BTreeMap::new(),
                    Some(name) => match reader.read(name).await.map_err(fail)? {
                        Some(c) => c,
                        None => continue, // generated first, composed after
                    },
                };
                managed::connection_inputs(&built.instance, plan.kind, &plan.instance, &creds)
            }
            Mode::External => {
                let mut inputs = external::inputs_template(cr, plan.kind, &plan.instance);
                let path = format!("spec.{}.{}", plan.kind.key(), plan.instance);
                let selectors = external::selectors(cr, plan.kind, &plan.instance);
                let missing = reader
                    .read_selectors(&path, &selectors, |field, v| {
                        inputs.set(field, v);
                    })
                    .await
                    .map_err(fail)?;
                if !missing.is_empty() {
                    continue;
                }
                inputs
            }
        };
        if let Ok(data) = url::connection_secret_data(plan.kind, &inputs) {
            out.insert(plan.connection_secret.clone(), data);
        }
    }
    for spec in &built.secrets {
        match &spec.source {
            SecretSource::FromSpec { field } if field == "spec.wandb.license" => {
                if let Some(license) = cr.spec.wandb.license.as_deref() {
                    let data = spec
                        .keys
                        .iter()
                        .map(|k| (k.clone(), license.to_string()))
                        .collect();
                    out.insert(spec.name.clone(), data);
                }
            }
            SecretSource::EmailSink => {
                let Some(smtp) = crate::email_sink::smtp(cr) else {
                    continue;
                };
                let key = spec.keys.first().map_or("sink", String::as_str);
                if let Ok(data) = crate::email_sink::compose(&mut reader, smtp, &spec.name, key)
                    .await
                    .map_err(fail)?
                {
                    out.insert(spec.name.clone(), data);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Stamps the pod templates' inputs hash as the controller would after writing `composed`: the
/// composed Secrets' data, plus the live data of the user's Secrets the templates read directly
/// (generated credentials are never hashed).
pub async fn stamp(
    client: &kube::Client,
    namespace: &str,
    built: &mut Built,
    composed: &Composed,
) -> Result<(), String> {
    let mut known = SecretDigests::default();
    for (name, data) in composed {
        known.insert(name, data.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    }
    let declared: Vec<&str> = built.secrets.iter().map(|s| s.name.as_str()).collect();
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in inputs_hash::secrets_read(&built.objects) {
        if declared.contains(&name.as_str()) {
            continue;
        }
        let live = api
            .get_opt(&name)
            .await
            .map_err(|e| format!("reading Secret {name}: {e}"))?;
        if let Some(s) = live {
            let values = crate::user_secrets::values(s);
            known.insert(
                &name,
                values.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
            );
        }
    }
    inputs_hash::stamp(&mut built.objects, &known);
    Ok(())
}
