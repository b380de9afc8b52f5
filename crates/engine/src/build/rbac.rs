use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::desired::{DesiredObject, Phase};
use crate::instance::Instance;
use crate::names;

/// What W&B's in-cluster secret store (`k8s-secretmanager://`, the default customer secret
/// store, and the internal signer key) does with the apps' ServiceAccount, as both official
/// deployers grant it: read, create, update and delete Secrets of the namespace, and read the
/// namespace itself. A Role can grant `get` on its own namespace object only; listing namespaces
/// is cluster-wide and not granted.
pub fn app_rules() -> Vec<PolicyRule> {
    let rule = |resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.into()]),
        verbs: verbs.iter().map(|v| (*v).to_string()).collect(),
        ..Default::default()
    };
    vec![
        rule("secrets", &["get", "create", "update", "delete"]),
        rule("namespaces", &["get"]),
    ]
}

/// The workload ServiceAccount with a Role limited to what W&B's secret store needs in the
/// namespace ([`app_rules`]).
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
        rules: Some(app_rules()),
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
