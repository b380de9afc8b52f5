//! The CRD as shipped (`wandb-operator crd`, deploy/crds/, the Helm chart).
//!
//! The schema embeds Kubernetes' own types (affinity, tolerations, resources, probes) in every
//! managed service. With their upstream descriptions the CRD is over 300 KiB as JSON, past the
//! 256 KiB annotation limit that a client-side `kubectl apply` needs for its
//! last-applied-configuration. Those descriptions are the Kubernetes API reference's, so the
//! shipped CRD keeps the description of the field itself and drops the ones inside it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
    JSONSchemaPropsOrBool, ServiceReference, WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;

use crate::WeightsAndBiases;

/// Path the operator serves ConversionReviews on.
pub const CONVERSION_PATH: &str = "/convert";
/// Service the shipped CRD points its conversion webhook at, in namespace
/// [`WEBHOOK_SERVICE_NAMESPACE`] (the quick start's). The operator rewrites the whole
/// `clientConfig` (service or URL, and the CA bundle) at startup, so the Helm chart's
/// namespace and release name need no templating here.
pub const WEBHOOK_SERVICE_NAME: &str = "wandb-operator-webhook";
/// Namespace of the shipped CRD's conversion Service.
pub const WEBHOOK_SERVICE_NAMESPACE: &str = "wandb-operator";

/// Fields whose type is a Kubernetes API type, documented upstream: the CRD and
/// docs/crd-reference.md describe the field, not its inner fields.
pub const UPSTREAM_TYPED_FIELDS: [&str; 7] = [
    "affinity",
    "env",
    "tolerations",
    "resources",
    "startupProbe",
    "livenessProbe",
    "readinessProbe",
];

/// The CRD as shipped: the generated schema, without descriptions inside upstream types.
///
/// Two versions are served: `v1` (the official v1 operator's chart-values form, converted by the
/// operator's webhook) and `v2` (storage). Conversion is `Webhook`: with `None` the API server
/// would store a v1 object's `spec.values` verbatim as a broken v2 object, whereas an unreachable
/// webhook only refuses v1 requests until the operator runs.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = kube::core::crd::merge_crds(
        vec![crate::v1::WeightsAndBiases::crd(), WeightsAndBiases::crd()],
        "v2",
    )
    .expect("the v1 and v2 CRDs share group, kind and scope");
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            conversion_review_versions: vec!["v1".into()],
            client_config: Some(WebhookClientConfig {
                service: Some(ServiceReference {
                    name: WEBHOOK_SERVICE_NAME.into(),
                    namespace: WEBHOOK_SERVICE_NAMESPACE.into(),
                    path: Some(CONVERSION_PATH.into()),
                    port: Some(443),
                }),
                ..Default::default()
            }),
        }),
    });
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
