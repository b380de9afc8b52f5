//! Multi-document YAML of a plan, for `wandb-operator render`: objects in apply order, then the
//! declared Secrets with their keys and source but never a value.

use serde_json::json;

use crate::build::Built;
use crate::names;

pub fn to_yaml(built: &Built, namespace: &str) -> String {
    let mut docs = Vec::with_capacity(built.objects.len() + built.secrets.len());
    for o in &built.objects {
        docs.push(serde_saphyr::to_string(&o.object).expect("objects serialize"));
    }
    for s in &built.secrets {
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": s.name,
                "namespace": namespace,
                "annotations": {
                    names::SECRET_SOURCE_ANNOTATION: serde_json::to_string(&s.source).expect("serializes"),
                    names::RETAIN_ANNOTATION: s.retain.to_string(),
                },
            },
            "type": "Opaque",
            "keys": s.keys,
        });
        docs.push(serde_saphyr::to_string(&secret).expect("serializes"));
    }
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&d);
        if !d.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
