//! Publishes each backing service's connection Secret (`<service>-connection`), the only thing
//! env wiring reads: a managed service's from its generated credentials, an external one's from
//! the user's Secret keys. URLs are composed by the engine's pure functions (credentials
//! percent-encoded). A missing Secret or key is reported by name and nothing is written for that
//! service, so no app ever starts with half a configuration.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::{InfraPlan, external, managed, url};
use wandb_engine::inputs_hash::SecretDigests;
use wandb_engine::{Instance, Mode, names};

use crate::apply::Applier;
use crate::user_secrets::SecretReader;

/// What publishing found.
#[derive(Default, Debug)]
pub struct Published {
    /// Connection Secrets written or already current.
    pub ready: Vec<String>,
    /// `<connection secret> (<why>)` for each service whose inputs are incomplete.
    pub problems: Vec<String>,
    /// External services whose endpoint failed the preflight: (kind key, instance, problem).
    pub unreachable: Vec<(String, String, String)>,
    /// Whether any of `unreachable` was checked in this pass (not read from the cache): only
    /// a fresh failure is announced with an event.
    pub freshly_failed: bool,
    /// Digests of the data of every connection Secret written (for the pods' inputs hash).
    pub digests: SecretDigests,
}

pub async fn publish(
    applier: &Applier,
    cr: &WeightsAndBiases,
    infra: &[InfraPlan],
    owner: &OwnerReference,
    ctx: &crate::controller::Context,
    reader: &mut SecretReader,
) -> Result<Published, kube::Error> {
    let mut out = Published::default();
    let Ok(inst) = Instance::from_cr(cr) else {
        return Ok(out);
    };
    for plan in infra {
        let inputs = match plan.mode {
            Mode::Managed => {
                let creds = match &plan.credentials_secret {
                    // Kafka declares none: plaintext inside the cluster.
                    None => BTreeMap::new(),
                    Some(name) => match reader.read(name).await? {
                        Some(creds) => creds,
                        None => {
                            out.problems.push(format!(
                                "{} (credentials Secret {name} not created yet)",
                                plan.connection_secret
                            ));
                            continue;
                        }
                    },
                };
                managed::connection_inputs(&inst, plan.kind, &plan.instance, &creds)
            }
            Mode::External => {
                let mut inputs = external::inputs_template(cr, plan.kind, &plan.instance);
                let mut certs = crate::preflight::Certs::default();
                let path = format!("spec.{}.{}", plan.kind.key(), plan.instance);
                let selectors = external::selectors(cr, plan.kind, &plan.instance);
                let missing = reader
                    .read_selectors(&path, &selectors, |field, v| {
                        inputs.set(field, v);
                        certs.capture(field, v);
                    })
                    .await?;
                if !missing.is_empty() {
                    out.problems.push(format!(
                        "{} ({})",
                        plan.connection_secret,
                        missing.join("; ")
                    ));
                    continue;
                }
                if let Some(target) = crate::preflight::target(plan.kind, &inputs) {
                    let key = format!(
                        "{}/{}/{}/{}",
                        applier.namespace(),
                        cr.name_any(),
                        plan.kind.key(),
                        plan.instance
                    );
                    // A new CA or TLS mode is a new check, as a new host is.
                    let checked = target.cache_key(&certs);
                    let (problem, fresh) = match ctx.preflight_cached(&key, &checked) {
                        Some(cached) => (cached, false),
                        None => {
                            let problem = crate::preflight::check(&target, &certs).await.err();
                            ctx.record_preflight(&key, &checked, problem.clone());
                            (problem, true)
                        }
                    };
                    if let Some(p) = problem {
                        out.freshly_failed |= fresh;
                        out.unreachable.push((
                            plan.kind.key().to_string(),
                            plan.instance.clone(),
                            p,
                        ));
                    }
                }
                inputs
            }
        };
        let data = match url::connection_secret_data(plan.kind, &inputs) {
            Ok(d) => d,
            Err(e) => {
                out.problems
                    .push(format!("{} ({e})", plan.connection_secret));
                continue;
            }
        };
        out.digests.insert(
            &plan.connection_secret,
            data.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
        );
        write(applier, cr, plan, data, owner).await?;
        out.ready.push(plan.connection_secret.clone());
    }
    Ok(out)
}

async fn write(
    applier: &Applier,
    cr: &WeightsAndBiases,
    plan: &InfraPlan,
    data: BTreeMap<String, String>,
    owner: &OwnerReference,
) -> Result<(), kube::Error> {
    let mut labels = names::labels(
        &cr.name_any(),
        plan.kind.object_suffix(),
        plan.kind.object_suffix(),
        &cr.spec.wandb.version,
    );
    labels.insert("apps.wandb.com/connection".into(), "true".into());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(plan.connection_secret.clone()),
            namespace: Some(applier.namespace().to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&secret).expect("serializes");
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    // Derived data: regenerated from its inputs at any time, so it follows the instance's life.
    applier.apply(&value, Some(owner)).await?;
    Ok(())
}
