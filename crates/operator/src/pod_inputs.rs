//! What the pods of an instance read from Secrets, for the inputs hash on their templates
//! ([`wandb_engine::inputs_hash`]) and for the watch that acts on a changed Secret within seconds.

use std::collections::BTreeSet;

use wandb_api::WeightsAndBiases;
use wandb_engine::Built;
use wandb_engine::inputs_hash::{self, SecretDigests};

use crate::user_secrets::SecretReader;

/// The user's Secrets the instance reads: those its spec names and, once planned, those its pod
/// templates read that the operator does not declare (e.g. from an application's env override).
pub fn watched(cr: &WeightsAndBiases, built: Option<&Built>) -> BTreeSet<String> {
    let mut out = wandb_engine::references::user_secrets(cr);
    if let Some(built) = built {
        out.extend(user_secrets_read(built));
    }
    out
}

/// Secrets the pod templates read that are not declared by the plan (so not the operator's).
fn user_secrets_read(built: &Built) -> BTreeSet<String> {
    let declared: BTreeSet<&str> = built.secrets.iter().map(|s| s.name.as_str()).collect();
    inputs_hash::secrets_read(&built.objects)
        .into_iter()
        .filter(|s| !declared.contains(s.as_str()))
        .collect()
}

/// Stamps the pod templates of `built` with the hash of what they read: `known` holds the
/// digests of the Secrets this pass wrote (connection Secrets, the license copy, the email sink);
/// the user's Secrets the templates read directly are read here (once per pass, shared with the
/// other readers). Generated credentials are not hashed: they are created once and never change.
pub async fn stamp(
    reader: &mut SecretReader,
    built: &mut Built,
    mut known: SecretDigests,
) -> Result<(), kube::Error> {
    for name in user_secrets_read(built) {
        if known.contains(&name) {
            continue;
        }
        if let Some(values) = reader.read(&name).await? {
            known.insert(
                &name,
                values.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
            );
        }
    }
    inputs_hash::stamp(&mut built.objects, &known);
    Ok(())
}
