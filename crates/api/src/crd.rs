//! The CRD as shipped (`wandb-operator crd`, deploy/crds/, the Helm chart).
//!
//! The schema embeds Kubernetes' own types (affinity, tolerations, resources, probes) in every
//! managed service. With their upstream descriptions the CRD is over 300 KiB as JSON, past the
//! 256 KiB annotation limit that a client-side `kubectl apply` needs for its
//! last-applied-configuration. Those descriptions are the Kubernetes API reference's, so the
//! shipped CRD keeps the description of the field itself and drops the ones inside it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::WeightsAndBiases;

/// Fields whose type is a Kubernetes API type, documented upstream: the CRD and
/// docs/crd-reference.md describe the field, not its inner fields.
pub const UPSTREAM_TYPED_FIELDS: [&str; 6] = [
    "affinity",
    "tolerations",
    "resources",
    "startupProbe",
    "livenessProbe",
    "readinessProbe",
];

/// The CRD as shipped: the generated schema, without descriptions inside upstream types.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = WeightsAndBiases::crd();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            trim_upstream_descriptions(schema);
        }
    }
    crd
}

/// The CRD as YAML, exactly as `wandb-operator crd` prints it and the Helm chart ships it.
pub fn crd_yaml() -> String {
    serde_saphyr::to_string(&crd()).expect("the CRD serializes to YAML")
}

fn trim_upstream_descriptions(node: &mut JSONSchemaProps) {
    for_each_child(node, &mut |name, child| {
        if name.is_some_and(|n| UPSTREAM_TYPED_FIELDS.contains(&n)) {
            for_each_child(child, &mut |_, inner| drop_descriptions(inner));
        } else {
            trim_upstream_descriptions(child);
        }
    });
}

fn drop_descriptions(node: &mut JSONSchemaProps) {
    node.description = None;
    for_each_child(node, &mut |_, child| drop_descriptions(child));
}

/// Calls `f` on every direct subschema, with the property name for `properties` entries.
fn for_each_child(
    node: &mut JSONSchemaProps,
    f: &mut dyn FnMut(Option<&str>, &mut JSONSchemaProps),
) {
    for (name, child) in node.properties.iter_mut().flatten() {
        f(Some(name), child);
    }
    match &mut node.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => f(None, s),
        Some(JSONSchemaPropsOrArray::Schemas(v)) => v.iter_mut().for_each(|s| f(None, s)),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = &mut node.additional_properties {
        f(None, s);
    }
    for list in [&mut node.all_of, &mut node.any_of, &mut node.one_of] {
        list.iter_mut().flatten().for_each(|s| f(None, s));
    }
}
