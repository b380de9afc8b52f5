use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::desired::{DesiredObject, Phase};
use crate::instance::Instance;
use crate::names;

/// The workload ServiceAccount with a Role limited to Secrets in the namespace (W&B stores
/// customer secrets and the internal signer key there).
pub fn build(
    inst: &Instance,
    annotations: Option<std::collections::BTreeMap<String, String>>,
) -> Vec<DesiredObject> {
    if !inst.create_service_account {
        return Vec::new();
    }
    let name = inst.service_account.clone();
    let meta = |n: &str| ObjectMeta {
        name: Some(n.to_string()),
        namespace: Some(inst.namespace.clone()),
        labels: Some(names::labels(&inst.name, "app", "rbac", &inst.version)),
        ..Default::default()
    };
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            annotations,
            ..meta(&name)
        },
        ..Default::default()
    };
    let role = Role {
        metadata: meta(&name),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: [
                "get", "list", "watch", "create", "update", "patch", "delete",
            ]
            .map(String::from)
            .to_vec(),
            ..Default::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: meta(&name),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.clone(),
            namespace: Some(inst.namespace.clone()),
            ..Default::default()
        }]),
    };
    vec![
        DesiredObject::new(Phase::Rbac, &sa),
        DesiredObject::new(Phase::Rbac, &role),
        DesiredObject::new(Phase::Rbac, &binding),
    ]
}
