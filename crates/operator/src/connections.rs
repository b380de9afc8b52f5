//! Publishes each backing service's connection Secret (`<service>-connection`), the only thing
//! env wiring reads: a managed service's from its generated credentials, an external one's from
//! the user's Secret keys. URLs are composed by the engine's pure functions (credentials
//! percent-encoded). A missing Secret or key is reported by name and nothing is written for that
//! service, so no app ever starts with half a configuration.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Api, ResourceExt};
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::{InfraPlan, external, managed, url};
use wandb_engine::{Instance, Mode, names};

use crate::apply::Applier;

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
}

pub async fn publish(
    applier: &Applier,
    cr: &WeightsAndBiases,
    infra: &[InfraPlan],
    owner: &OwnerReference,
    ctx: &crate::controller::Context,
) -> Result<Published, kube::Error> {
    let mut out = Published::default();
    let Ok(inst) = Instance::from_cr(cr) else {
        return Ok(out);
    };
    let api: Api<Secret> = Api::namespaced(applier.client().clone(), applier.namespace());
    let mut cache: BTreeMap<String, Option<BTreeMap<String, String>>> = BTreeMap::new();
    for plan in infra {
        let inputs = match plan.mode {
            Mode::Managed => {
                let creds = match &plan.credentials_secret {
                    // Kafka declares none: plaintext inside the cluster.
                    None => BTreeMap::new(),
                    Some(name) => match read(&api, &mut cache, name).await? {
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
                let mut missing = Vec::new();
                for (field, sel) in external::selectors(cr, plan.kind, &plan.instance) {
                    let path = format!("spec.{}.{}", plan.kind.key(), plan.instance);
                    match read(&api, &mut cache, &sel.name).await? {
                        None if sel.optional == Some(true) => {}
                        None => missing.push(format!(
                            "Secret {} not found (for {path} {field})",
                            sel.name
                        )),
                        Some(data) => match data.get(&sel.key) {
                            Some(v) => {
                                inputs.set(field, v);
                                certs.capture(field, v);
                            }
                            None if sel.optional == Some(true) => {}
                            None => missing.push(format!(
                                "Secret {} has no key {} (for {path} {field})",
                                sel.name, sel.key
                            )),
                        },
                    }
                }
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
        write(applier, cr, plan, data, owner).await?;
        out.ready.push(plan.connection_secret.clone());
    }
    Ok(out)
}

async fn read(
    api: &Api<Secret>,
    cache: &mut BTreeMap<String, Option<BTreeMap<String, String>>>,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, kube::Error> {
    if let Some(hit) = cache.get(name) {
        return Ok(hit.clone());
    }
    let value = api.get_opt(name).await?.map(|s| {
        let mut m: BTreeMap<String, String> = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        m.extend(s.string_data.unwrap_or_default());
        m
    });
    cache.insert(name.to_string(), value.clone());
    Ok(value)
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
