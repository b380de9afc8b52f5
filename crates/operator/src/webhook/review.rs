//! ConversionReview handling: each object converted with [`crate::convert`]; v1 -> v2 reads the
//! v1 operator's `<name>-spec-active` Secret (the values it last applied, mapped instead of
//! `spec.values` as the official operator does) and writes the conversion Secret (the literals
//! the v2 spec points at), v2 -> v1 reads that back. None of these reads and writes may fail a
//! conversion (objects the API server cannot convert cannot be listed at all): a failure is
//! logged (or reported as a finding) and the object converted without it.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use serde_json::Value;

use crate::convert;

const V1: &str = "apps.wandb.com/v1";
const V2: &str = "apps.wandb.com/v2";
/// Field manager of the conversion Secret.
pub const MANAGER: &str = "wandb-operator-conversion";
/// Per API call; the API server gives a conversion 30 s in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds the webhook waits for a converted resource to be stored before it deletes the
/// Secret written for it.
const ADOPT_TRIES: u32 = 30;

/// What every request reads.
#[derive(Clone)]
pub struct Shared {
    pub client: kube::Client,
    pub reviews: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

pub async fn handle(State(shared): State<Shared>, body: Bytes) -> impl IntoResponse {
    let review = convert_review(&shared.client, &body).await;
    shared
        .reviews
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (
        [(CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&review).unwrap_or_default(),
    )
}

async fn convert_review(client: &kube::Client, body: &[u8]) -> ConversionReview {
    let req = match serde_json::from_slice::<ConversionReview>(body)
        .ok()
        .and_then(|r| ConversionRequest::from_review(r).ok())
    {
        Some(r) => r,
        None => {
            return ConversionResponse::invalid(Status::failure(
                "not a ConversionReview with a request",
                "BadRequest",
            ))
            .into_review();
        }
    };
    let desired = req.desired_api_version.clone();
    let mut out = Vec::with_capacity(req.objects.len());
    let mut failed = None;
    for obj in &req.objects {
        match convert_one(client, obj, &desired).await {
            Ok(v) => out.push(v),
            Err(msg) => {
                failed = Some(msg);
                break;
            }
        }
    }
    let resp = ConversionResponse::for_request(req);
    match failed {
        Some(msg) => {
            tracing::error!(%msg, "conversion refused");
            resp.failure(Status::failure(&msg, "BadRequest"))
        }
        None => resp.success(out),
    }
    .into_review()
}

async fn convert_one(client: &kube::Client, obj: &Value, desired: &str) -> Result<Value, String> {
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let converted = match (from, desired) {
        (f, d) if f == d => return Ok(obj.clone()),
        (V1, V2) => {
            let active = read_spec_active(client, obj).await;
            let c = convert::to_v2_with(obj, active);
            if !c.secret_data.is_empty() {
                write_secret(client, &c).await;
            }
            let mut v = serde_json::to_value(&c.v2).map_err(|e| e.to_string())?;
            v["apiVersion"] = Value::String(V2.into());
            v
        }
        (V2, V1) => {
            let data = read_secret(client, obj).await;
            let (v, missing) = convert::to_v1(obj, data.as_ref());
            if !missing.is_empty() {
                tracing::warn!(
                    name = obj
                        .pointer("/metadata/name")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or(""),
                    ?missing,
                    "v1 view without these literals (the conversion Secret lacks them); they read as valueFrom references"
                );
            }
            v
        }
        (f, d) => return Err(format!("cannot convert {f} to {d}")),
    };
    Ok(keep_metadata(obj, converted))
}

/// The API server keeps the original metadata except labels and annotations: send exactly that.
fn keep_metadata(original: &Value, mut converted: Value) -> Value {
    let mut meta = original
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let annotations = converted.pointer("/metadata/annotations").cloned();
    if let Some(m) = meta.as_object_mut() {
        match annotations {
            Some(a) => {
                m.insert("annotations".into(), a);
            }
            None => {
                m.remove("annotations");
            }
        }
    }
    converted["metadata"] = meta;
    converted
}

async fn write_secret(client: &kube::Client, c: &convert::Converted) {
    let Some(ns) = c.v2.metadata.namespace.clone() else {
        tracing::warn!(name = ?c.v2.metadata.name, "a converted object without a namespace; no conversion Secret written");
        return;
    };
    tracing::debug!(namespace = %ns, name = ?c.v2.metadata.name, keys = c.secret_data.len(), "writing the conversion Secret");
    let name = convert::secret_name(c.v2.metadata.name.as_deref().unwrap_or_default());
    let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), &ns);
    let live = tokio::time::timeout(CALL_TIMEOUT, api.get_opt(&name)).await;
    let owned = matches!(&live, Ok(Ok(Some(s))) if s.owner_references().iter().any(|o| Some(&o.uid) == c.v2.metadata.uid.as_ref()));
    let secret = convert::conversion_secret(&c.v2, &c.secret_data, owned);
    let params = PatchParams::apply(MANAGER).force();
    let patch = Patch::Apply(&secret);
    match tokio::time::timeout(CALL_TIMEOUT, api.patch(&name, &params, &patch)).await {
        Ok(Ok(_)) if owned => {}
        Ok(Ok(_)) => {
            tokio::spawn(adopt(client.clone(), c.clone()));
        }
        // Never the values: only which Secret.
        Ok(Err(e)) => {
            tracing::error!(namespace = %ns, secret = %name, error = %e, "writing the conversion Secret failed; the v2 resource points at it")
        }
        Err(_) => {
            tracing::error!(namespace = %ns, secret = %name, "writing the conversion Secret timed out")
        }
    }
}

/// Gives the conversion Secret its owner once the resource is stored with the uid it was
/// converted with; deletes it if that never happens (a dry-run or refused create).
async fn adopt(client: kube::Client, c: convert::Converted) {
    let (Some(ns), Some(name), Some(uid)) = (
        c.v2.metadata.namespace.clone(),
        c.v2.metadata.name.clone(),
        c.v2.metadata.uid.clone(),
    ) else {
        return;
    };
    let crs: kube::Api<wandb_api::WeightsAndBiases> = kube::Api::namespaced(client.clone(), &ns);
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client, &ns);
    let secret_name = convert::secret_name(&name);
    for _ in 0..ADOPT_TRIES {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Read as metadata only: the stored object may not decode yet.
        match crs.get_metadata_opt(&name).await {
            Ok(Some(m)) if m.metadata.uid.as_deref() == Some(uid.as_str()) => {
                let secret = convert::conversion_secret(&c.v2, &c.secret_data, true);
                let params = PatchParams::apply(MANAGER).force();
                if let Err(e) = secrets
                    .patch(&secret_name, &params, &Patch::Apply(&secret))
                    .await
                {
                    tracing::warn!(namespace = %ns, secret = %secret_name, error = %e, "could not give the conversion Secret its owner");
                }
                return;
            }
            // Another object of that name (this conversion's create was refused or dry-run).
            Ok(Some(_)) => break,
            Ok(None) | Err(_) => {}
        }
    }
    // Never stored: remove the Secret if it is still ownerless (a later conversion may own it).
    if let Ok(Some(s)) = secrets.get_opt(&secret_name).await
        && s.owner_references().is_empty()
        && let Err(e) = secrets.delete(&secret_name, &Default::default()).await
    {
        tracing::debug!(namespace = %ns, secret = %secret_name, error = %e, "removing an unused conversion Secret");
    }
}

/// The v1 operator's applied values for a v1 object: its `<name>-spec-active` Secret, key
/// `values` (JSON), read within [`CALL_TIMEOUT`]. A Secret owned by another object of that name
/// (a deleted predecessor's, orphaned) is not used.
async fn read_spec_active(client: &kube::Client, obj: &Value) -> convert::ActiveValues {
    use convert::ActiveValues::{Absent, Unreadable};
    let (Some(ns), Some(name)) = (
        obj.pointer("/metadata/namespace").and_then(Value::as_str),
        obj.pointer("/metadata/name").and_then(Value::as_str),
    ) else {
        return Absent;
    };
    let uid = obj.pointer("/metadata/uid").and_then(Value::as_str);
    let secret = convert::spec_active_name(name);
    let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), ns);
    match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(&secret)).await {
        Ok(Ok(None)) => Absent,
        Ok(Ok(Some(s))) => spec_active_values(&s, uid),
        Ok(Err(e)) => {
            tracing::warn!(namespace = %ns, secret = %secret, error = %e, "reading the v1 operator's spec-active Secret failed");
            Unreadable(format!("reading it failed: {e}"))
        }
        Err(_) => Unreadable(format!(
            "reading it did not complete within {}s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

/// The `values` of a spec-active Secret, if it belongs to the object of `uid`.
pub(crate) fn spec_active_values(s: &Secret, uid: Option<&str>) -> convert::ActiveValues {
    use convert::ActiveValues::{Found, Unreadable};
    let owners = s.owner_references();
    if let Some(uid) = uid
        && !owners.is_empty()
        && !owners.iter().any(|o| o.uid == uid)
    {
        return Unreadable(
            "it belongs to another resource of this name (owner uid differs)".into(),
        );
    }
    let Some(raw) = s.data.as_ref().and_then(|d| d.get("values")) else {
        return Unreadable("it has no key values".into());
    };
    match serde_json::from_slice::<Value>(&raw.0) {
        Ok(v) if v.is_object() => Found(v),
        Ok(_) => Unreadable("its key values is not a JSON object".into()),
        Err(_) => Unreadable("its key values is not JSON".into()),
    }
}

async fn read_secret(client: &kube::Client, obj: &Value) -> Option<BTreeMap<String, String>> {
    // Only resources converted from v1 with literals have one.
    obj.pointer(&format!(
        "/metadata/annotations/{}",
        convert::ANNOTATION_REDACTED.replace('/', "~1")
    ))?;
    let ns = obj.pointer("/metadata/namespace")?.as_str()?;
    let name = convert::secret_name(obj.pointer("/metadata/name")?.as_str()?);
    let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), ns);
    match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(&name)).await {
        Ok(Ok(Some(s))) => Some(
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
        ),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::warn!(namespace = %ns, secret = %name, error = %e, "reading the conversion Secret failed");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;
    use crate::convert::ActiveValues;

    fn secret(owner_uid: Option<&str>, values: Option<&[u8]>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                owner_references: owner_uid.map(|uid| {
                    vec![OwnerReference {
                        api_version: "apps.wandb.com/v1".into(),
                        kind: "WeightsAndBiases".into(),
                        name: "wandb".into(),
                        uid: uid.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            data: values.map(|v| BTreeMap::from([("values".into(), ByteString(v.to_vec()))])),
            ..Default::default()
        }
    }

    #[test]
    fn spec_active_values_are_used_only_when_they_are_this_resources_json_object() {
        let json = br#"{"app":{"image":{"tag":"0.74.1"}}}"#.as_slice();
        let found = |a: ActiveValues| matches!(a, ActiveValues::Found(_));
        assert!(found(spec_active_values(
            &secret(Some("u-1"), Some(json)),
            Some("u-1")
        )));
        // Without owner references (copied by hand) it is used too.
        assert!(found(spec_active_values(
            &secret(None, Some(json)),
            Some("u-1")
        )));
        for (s, why) in [
            (secret(Some("u-0"), Some(json)), "owner uid differs"),
            (secret(Some("u-1"), None), "no key values"),
            (secret(Some("u-1"), Some(b"chart: x")), "not JSON"),
            (secret(Some("u-1"), Some(b"[1]")), "not a JSON object"),
        ] {
            match spec_active_values(&s, Some("u-1")) {
                ActiveValues::Unreadable(reason) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{why}: {other:?}"),
            }
        }
    }
}
