//! The Secrets the engine declares but never fills: generated credentials (created once, never
//! overwritten), the license copied from the spec, the email sink composed from the SMTP
//! settings, and the connection Secrets that backing services publish (only their existence is
//! checked here). Values are never logged.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use rand::Rng as _;
use wandb_api::WeightsAndBiases;
use wandb_engine::crview::EMAIL_SINK_KEY;
use wandb_engine::inputs_hash::SecretDigests;
use wandb_engine::{SecretSource, SecretSpec, names, takeover};

use crate::apply::Applier;
use crate::email_sink;
use crate::user_secrets::SecretReader;

/// What the secret step observed.
#[derive(Debug, Default)]
pub struct SecretFacts {
    /// Connection Secrets that do not exist.
    pub missing: Vec<String>,
    /// Generated Secrets: (manifest name, or the Secret's own for the operator's credentials;
    /// Secret name; key).
    pub generated: Vec<(String, String, String)>,
    /// Secrets created from scratch in this pass (names only).
    pub created: Vec<String>,
    /// Each composed Secret whose inputs are incomplete (the email sink), and why.
    pub problems: Vec<wandb_engine::decide::MissingSecret>,
    /// Digests of the data of the Secrets written from the spec (license copy, email sink).
    pub digests: SecretDigests,
    /// Generated Secrets whose value was adopted from a predecessor's installation (names).
    pub adopted: Vec<String>,
}

/// A random alphanumeric string of `length` characters.
pub fn random_value(length: u32) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..length.max(1))
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn meta(cr: &WeightsAndBiases, spec: &SecretSpec, owner: Option<&OwnerReference>) -> ObjectMeta {
    let cr_name = cr.metadata.name.clone().unwrap_or_default();
    let source = serde_json::to_string(&spec.source).expect("serializes");
    ObjectMeta {
        name: Some(spec.name.clone()),
        namespace: cr.metadata.namespace.clone(),
        labels: Some(BTreeMap::from([
            (
                names::INSTANCE_LABEL.to_string(),
                names::label_value(&cr_name),
            ),
            (
                names::MANAGED_BY_LABEL.to_string(),
                names::MANAGED_BY.to_string(),
            ),
            (
                "app.kubernetes.io/part-of".to_string(),
                names::PART_OF.to_string(),
            ),
        ])),
        annotations: Some({
            let mut a = BTreeMap::from([
                (names::SECRET_SOURCE_ANNOTATION.to_string(), source),
                (
                    names::RETAIN_ANNOTATION.to_string(),
                    spec.retain.to_string(),
                ),
            ]);
            if spec.shared {
                a.insert(names::SHARED_ANNOTATION.to_string(), "true".to_string());
            }
            a
        }),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..Default::default()
    }
}

/// The value a predecessor's installation kept for generated secret `manifest_name`, with the
/// `<secret>/<key>` it came from (see [`wandb_engine::takeover::credential_seeds`]).
async fn seed(
    reader: &mut SecretReader,
    cr: &str,
    manifest_name: &str,
) -> Result<Option<(String, String)>, kube::Error> {
    for (secret, key) in takeover::credential_seeds(cr, manifest_name) {
        if let Some(value) = reader
            .read(&secret)
            .await?
            .and_then(|v| v.get(&key).cloned())
            .filter(|v| !v.is_empty())
        {
            return Ok(Some((value, format!("{secret}/{key}"))));
        }
    }
    Ok(None)
}

/// Fills or checks every declared Secret. `owner` is the controller reference to the CR;
/// Retained data (generated credentials) is owned only when its retention policy is `purge`.
/// `adopt`: a predecessor's installation is being taken over, so a generated Secret that does
/// not exist yet takes the predecessor's value where it kept one (never replacing ours).
pub async fn ensure(
    applier: &Applier,
    cr: &WeightsAndBiases,
    specs: &[SecretSpec],
    owner: &OwnerReference,
    reader: &mut SecretReader,
    adopt: bool,
) -> Result<SecretFacts, kube::Error> {
    let mut facts = SecretFacts::default();
    for spec in specs {
        // A Secret every instance of the namespace uses is owned by none of them.
        let owner_for = if spec.shared {
            None
        } else {
            crate::controller::owner_for(spec.retain, spec.on_delete, owner)
        };
        match &spec.source {
            SecretSource::Generated { length } => {
                let key = spec.keys.first().cloned().unwrap_or_else(|| "value".into());
                let manifest_name = spec.manifest_name.as_ref().unwrap_or(&spec.name);
                facts
                    .generated
                    .push((manifest_name.clone(), spec.name.clone(), key));
                if let Some(live) = applier.live("v1", "Secret", &spec.name).await? {
                    if live
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(takeover::ADOPTED_FROM_ANNOTATION))
                        .is_some()
                    {
                        facts.adopted.push(spec.name.clone());
                    }
                    continue; // never overwritten (and no value generated for nothing)
                }
                let cr_name = cr.metadata.name.as_deref().unwrap_or_default();
                let seeded = if adopt {
                    seed(reader, cr_name, manifest_name).await?
                } else {
                    None
                };
                let mut metadata = meta(cr, spec, owner_for);
                if let Some((_, from)) = &seeded {
                    metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(takeover::ADOPTED_FROM_ANNOTATION.into(), from.clone());
                }
                let secret = Secret {
                    metadata,
                    data: Some(
                        spec.keys
                            .iter()
                            .map(|k| {
                                let value = match &seeded {
                                    Some((v, _)) => v.clone(),
                                    None => random_value(*length),
                                };
                                (k.clone(), ByteString(value.into_bytes()))
                            })
                            .collect(),
                    ),
                    type_: Some("Opaque".into()),
                    ..Default::default()
                };
                let mut object = serde_json::to_value(&secret).expect("Secrets serialize");
                object["apiVersion"] = "v1".into();
                object["kind"] = "Secret".into();
                if applier.create_once(&object).await? {
                    facts.created.push(spec.name.clone());
                    match &seeded {
                        Some((_, from)) => {
                            facts.adopted.push(spec.name.clone());
                            tracing::info!(secret = %spec.name, %from, "generated secret adopted from the predecessor");
                        }
                        None => tracing::info!(secret = %spec.name, "generated secret created"),
                    }
                }
            }
            SecretSource::FromSpec { field } if field == "spec.wandb.license" => {
                let Some(license) = cr.spec.wandb.license.as_deref() else {
                    continue;
                };
                let data = spec
                    .keys
                    .iter()
                    .map(|k| (k.clone(), license.to_string()))
                    .collect();
                write(applier, cr, spec, owner_for, data, &mut facts.digests).await?;
            }
            SecretSource::FromSpec { field } => {
                tracing::warn!(secret = %spec.name, %field, "unknown spec field for a secret");
            }
            SecretSource::ManagedConnection { .. } | SecretSource::ExternalConnection { .. } => {
                // Published by the backing service's backend; its existence is the readiness fact.
                if applier.live("v1", "Secret", &spec.name).await?.is_none() {
                    facts.missing.push(spec.name.clone());
                }
            }
            SecretSource::EmailSink => {
                let Some(smtp) = email_sink::smtp(cr) else {
                    continue;
                };
                let key = spec.keys.first().map_or(EMAIL_SINK_KEY, String::as_str);
                match email_sink::compose(reader, smtp, &spec.name, key).await? {
                    Ok(data) => {
                        write(applier, cr, spec, owner_for, data, &mut facts.digests).await?;
                    }
                    Err(problem) => facts.problems.push(problem),
                }
            }
        }
    }
    Ok(facts)
}

/// Applies Secret `spec` holding `data` (server-side, skipped when current) and records the
/// digests of its values.
async fn write(
    applier: &Applier,
    cr: &WeightsAndBiases,
    spec: &SecretSpec,
    owner: Option<&OwnerReference>,
    data: BTreeMap<String, String>,
    digests: &mut SecretDigests,
) -> Result<(), kube::Error> {
    digests.insert(
        &spec.name,
        data.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
    );
    // The owner is already in the metadata.
    applier
        .apply_secret(meta(cr, spec, owner), data, None)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_are_alphanumeric_of_the_length() {
        let v = random_value(32);
        assert_eq!(v.len(), 32);
        assert!(v.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(v, random_value(32));
    }
}
