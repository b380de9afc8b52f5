//! The email sink Secret (`<name>-email-sink`, key `sink`) composed from
//! `spec.wandb.notifications.email.smtp`: `smtp://user:pass@host:port`, every part read from
//! the user's Secret keys. A missing Secret or key, or a value that makes no URL, is named (never
//! the value) and nothing is written, like a connection Secret.

use std::collections::BTreeMap;

use wandb_api::{SecretKeySelector, SmtpSpec, WeightsAndBiases};
use wandb_engine::backends::url::{ConnInputs, smtp_url};
use wandb_engine::decide::MissingSecret;
use wandb_engine::{Built, SecretSource};

use crate::user_secrets::SecretReader;

/// Where the SMTP settings live, for messages.
const SMTP_PATH: &str = "spec.wandb.notifications.email.smtp";

/// The SMTP settings of `cr`, if any.
pub fn smtp(cr: &WeightsAndBiases) -> Option<&SmtpSpec> {
    cr.spec
        .wandb
        .notifications
        .as_ref()
        .and_then(|n| n.email.as_ref())
        .and_then(|e| e.smtp.as_ref())
}

/// The data of Secret `secret` (`{key: url}`), or why it cannot be written.
pub async fn compose(
    reader: &mut SecretReader,
    smtp: &SmtpSpec,
    secret: &str,
    key: &str,
) -> Result<Result<BTreeMap<String, String>, MissingSecret>, kube::Error> {
    let selectors = [
        ("host", smtp.host.clone()),
        ("port", smtp.port.clone()),
        ("username", smtp.username.clone()),
        ("password", smtp.password.clone()),
    ];
    let mut inputs = ConnInputs::new("default");
    let missing = reader
        .read_selectors(SMTP_PATH, &selectors, |field, v| {
            inputs.set(field, v);
        })
        .await?;
    if !missing.is_empty() {
        return Ok(Err(MissingSecret {
            name: secret.to_string(),
            why: Some(missing.join("; ")),
        }));
    }
    Ok(match smtp_url(&inputs) {
        Ok(url) => Ok(BTreeMap::from([(key.to_string(), url)])),
        Err(e) => Err(MissingSecret {
            name: secret.to_string(),
            why: Some(format!("{SMTP_PATH} {e}")),
        }),
    })
}

/// The email sink the apps read (`status.emailSink`), as the plan decided it: the composed
/// Secret only once it could be written (`composed`), else the user's `email.sink` key, if any.
pub fn effective(built: &Built, composed: bool) -> Option<SecretKeySelector> {
    let uses_smtp = built
        .secrets
        .iter()
        .any(|s| s.source == SecretSource::EmailSink);
    let (name, key) = built.email_sink.clone()?;
    (composed || !uses_smtp).then_some(SecretKeySelector {
        name,
        key,
        optional: None,
    })
}
