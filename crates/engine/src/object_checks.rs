//! The API server's static validations that are cheap to run offline, applied to every desired
//! object before anything is written, so that `render` and the controller refuse the same inputs
//! with a message naming the field that caused them (instead of a write refused half-way through
//! a rollout, or pods a workload controller can never create):
//!
//! - names within the limits that apply to them: DNS labels (Services, volumes, containers),
//!   StatefulSets (their pods' hostnames and `controller-revision-hash` label), Jobs (the
//!   `job-name` label), DNS subdomains for everything else;
//! - label values (63 characters, alphanumeric ends);
//! - no two desired objects of one kind with one name (two writers would fight over it);
//! - absolute Ingress paths, environment variable names, and object sizes (etcd's limit, and
//!   1 MiB of data in a Secret or ConfigMap).

use std::collections::BTreeMap;

use serde_json::Value;
use wandb_api::WeightsAndBiases;

use crate::desired::{SecretSource, SecretSpec};
use crate::instance::Instance;
use crate::{DesiredObject, EngineError};

/// A DNS-1123 label (RFC 1123): pod hostnames, Service names, volume and container names.
const DNS_LABEL_MAX: usize = 63;
/// Every other object name (DNS-1123 subdomain).
const DNS_SUBDOMAIN_MAX: usize = 253;
/// A StatefulSet's pods carry `controller-revision-hash: <name>-<hash of up to 10 characters>`,
/// a label value: the name must leave room for it (the pod name `<name>-<ordinal>` then fits).
const STATEFULSET_NAME_MAX: usize = DNS_LABEL_MAX - 11;
/// A Secret's or ConfigMap's data (`MaxSecretSize`).
const DATA_MAX: usize = 1024 * 1024;
/// What etcd stores for one object by default (`--max-request-bytes`, 1.5 MiB).
const OBJECT_MAX: usize = 1024 * 1024 * 3 / 2;

/// Every problem of `objects` and the Secrets the controller will write for them.
pub fn check(
    cr: &WeightsAndBiases,
    inst: &Instance,
    objects: &[DesiredObject],
    secrets: &[SecretSpec],
) -> Vec<EngineError> {
    let mut errors = Vec::new();
    let name_field = NameOrigin { cr, inst };
    let mut seen: BTreeMap<(&str, &str), &DesiredObject> = BTreeMap::new();
    for o in objects {
        if let Some(first) = seen.insert((o.kind.as_str(), o.name.as_str()), o) {
            errors.push(EngineError::invalid(
                name_field.of(o),
                format!(
                    "two {}s would be named {:?}: one for {} and one for {}; the operator would \
                     rewrite one with the other in a loop. Give the service another name",
                    o.kind,
                    o.name,
                    component(first),
                    component(o)
                ),
            ));
        }
        errors.extend(check_name(o, &name_field));
        errors.extend(check_labels(o, &name_field));
        errors.extend(check_pod(o));
        errors.extend(check_ingress_paths(o));
        errors.extend(check_size(o));
    }
    for s in secrets {
        if let SecretSource::FromSpec { field } = &s.source
            && field == "spec.wandb.license"
            && let Some(license) = cr.spec.wandb.license.as_deref()
            && license.len() > DATA_MAX
        {
            errors.push(EngineError::invalid(
                field,
                format!(
                    "is {} bytes; a Secret holds at most {DATA_MAX} bytes (a W&B license is a few \
                     kilobytes: check what was pasted)",
                    license.len()
                ),
            ));
        }
    }
    errors
}

/// Which field of the resource made an object's name, for messages.
struct NameOrigin<'a> {
    cr: &'a WeightsAndBiases,
    inst: &'a Instance,
}

impl NameOrigin<'_> {
    fn of(&self, o: &DesiredObject) -> String {
        for ((kind, instance), name) in &self.inst.service_names {
            if o.name == *name || o.name.starts_with(&format!("{name}-")) {
                return match kind {
                    crate::ServiceKind::Kafka => {
                        format!("spec.kafka.{}.name", kind.managed_field())
                    }
                    _ => format!(
                        "spec.{}.{instance}.{}.name",
                        kind.key(),
                        kind.managed_field()
                    ),
                };
            }
        }
        let cr_name = self.cr.metadata.name.as_deref().unwrap_or_default();
        for (kind, instance) in self.inst.services.keys() {
            if instance != "default" && o.name.starts_with(&self.inst.service_name(*kind, instance))
            {
                return format!(
                    "metadata.name ({} characters) and the key {instance:?} of spec.{}",
                    cr_name.len(),
                    kind.key()
                );
            }
        }
        format!("metadata.name ({} characters)", cr_name.len())
    }
}

fn component(o: &DesiredObject) -> String {
    match o.object["metadata"]["labels"][crate::names::COMPONENT_LABEL].as_str() {
        Some(c) => format!("component {c:?}"),
        None => format!("{} {:?}", o.kind, o.name),
    }
}

fn check_name(o: &DesiredObject, origin: &NameOrigin) -> Option<EngineError> {
    let (max, what) = match o.kind.as_str() {
        "Service" => (DNS_LABEL_MAX, "a Service name is a DNS label"),
        "StatefulSet" => (
            STATEFULSET_NAME_MAX,
            "a StatefulSet's pods are named <name>-<ordinal> and labelled \
             controller-revision-hash=<name>-<hash>, both at most 63 characters",
        ),
        "Job" => (
            DNS_LABEL_MAX,
            "a Job's pods carry its name in the job-name label (at most 63 characters)",
        ),
        _ => (DNS_SUBDOMAIN_MAX, "an object name is a DNS subdomain"),
    };
    let label = max <= DNS_LABEL_MAX;
    let valid_chars = if label {
        is_dns_label(&o.name)
    } else {
        o.name.split('.').all(is_dns_label)
    };
    if o.name.len() <= max && valid_chars {
        return None;
    }
    Some(EngineError::invalid(
        origin.of(o),
        format!(
            "makes the {} name {:?} ({} characters), but {what} (at most {max} characters, \
             lowercase letters, digits and '-'); shorten it",
            o.kind,
            o.name,
            o.name.len()
        ),
    ))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= DNS_LABEL_MAX
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= DNS_LABEL_MAX
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric())
}

fn check_labels(o: &DesiredObject, origin: &NameOrigin) -> Vec<EngineError> {
    let mut out = Vec::new();
    for at in ["/metadata/labels", "/spec/template/metadata/labels"] {
        let Some(labels) = o.object.pointer(at).and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default();
            if !is_label_value(v) {
                out.push(EngineError::invalid(
                    origin.of(o),
                    format!(
                        "makes the label {k}={v:?} of {} {:?}, but a label value is at most 63 \
                         characters, alphanumeric at both ends",
                        o.kind, o.name
                    ),
                ));
            }
        }
    }
    out
}

/// Container and volume names (DNS labels) and environment variable names.
fn check_pod(o: &DesiredObject) -> Vec<EngineError> {
    let Some(spec) = o.object.pointer("/spec/template/spec") else {
        return vec![];
    };
    let mut out = Vec::new();
    let field = format!("manifest ({} {})", o.kind, o.name);
    for list in ["containers", "initContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let cname = c["name"].as_str().unwrap_or_default();
            if !is_dns_label(cname) {
                out.push(EngineError::invalid(
                    &field,
                    format!("container name {cname:?} is not a DNS label"),
                ));
            }
            for e in c["env"].as_array().into_iter().flatten() {
                let ename = e["name"].as_str().unwrap_or_default();
                if !is_env_name(ename) {
                    out.push(EngineError::invalid(
                        &field,
                        format!(
                            "container {cname:?} sets the environment variable {ename:?}, but a \
                             name must be printable ASCII without '=' (and not empty)"
                        ),
                    ));
                }
            }
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let vname = v["name"].as_str().unwrap_or_default();
        if !is_dns_label(vname) {
            out.push(EngineError::invalid(
                &field,
                format!("volume name {vname:?} is not a DNS label (at most 63 characters)"),
            ));
        }
    }
    out
}

/// The API server's rule (relaxed environment variable names, the default since 1.34).
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (32..=126).contains(&b) && b != b'=')
}

fn check_ingress_paths(o: &DesiredObject) -> Vec<EngineError> {
    if o.kind != "Ingress" {
        return vec![];
    }
    let mut out = Vec::new();
    for rule in o.object["spec"]["rules"].as_array().into_iter().flatten() {
        for p in rule["http"]["paths"].as_array().into_iter().flatten() {
            if let Some(path) = p["path"].as_str()
                && !path.starts_with('/')
            {
                out.push(EngineError::invalid(
                    format!("manifest (Ingress {})", o.name),
                    format!("the path {path:?} is not absolute: an Ingress path starts with '/'"),
                ));
            }
        }
    }
    out
}

fn check_size(o: &DesiredObject) -> Option<EngineError> {
    let size = serde_json::to_vec(&o.object).map(|v| v.len()).unwrap_or(0);
    let data: usize = ["data", "binaryData", "stringData"]
        .iter()
        .filter_map(|k| o.object[*k].as_object())
        .flat_map(|m| m.iter())
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    let (limit, what) = if matches!(o.kind.as_str(), "Secret" | "ConfigMap") && data > DATA_MAX {
        (DATA_MAX, format!("its data is {data} bytes"))
    } else if size > OBJECT_MAX {
        (OBJECT_MAX, format!("it is {size} bytes"))
    } else {
        return None;
    };
    Some(EngineError::invalid(
        format!("{} {}", o.kind, o.name),
        format!("{what}, over the API server's limit of {limit} bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert!(is_dns_label("w-api"));
        assert!(!is_dns_label("W-api") && !is_dns_label("-a") && !is_dns_label(""));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_label_value("") && is_label_value("0.84.0") && is_label_value("a_b"));
        assert!(!is_label_value("-a") && !is_label_value(&"a".repeat(64)));
        assert!(is_env_name("GORILLA_X") && is_env_name("1BAD"));
        assert!(!is_env_name("1BAD=NAME") && !is_env_name(""));
    }
}
