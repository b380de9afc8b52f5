//! The output of build: every object an instance should have, in apply order.

use serde::Serialize;
use serde_json::Value;

/// Apply phases, in order. The controller applies a phase only when its gate is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Phase {
    Rbac,
    Config,
    Infra,
    /// Backups of the managed databases before an upgrade's migrations.
    Backups,
    Migrations,
    Applications,
    Networking,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Rbac => "rbac",
            Phase::Config => "config",
            Phase::Infra => "infra",
            Phase::Backups => "backups",
            Phase::Migrations => "migrations",
            Phase::Applications => "applications",
            Phase::Networking => "networking",
        }
    }
}

/// One object to server-side apply. Owner references are added by the apply engine (it knows
/// the CR's uid); `retain` marks data the retention policy keeps on `detach`.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub phase: Phase,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub object: Value,
    pub retain: bool,
}

impl DesiredObject {
    pub fn new<K>(phase: Phase, obj: &K) -> Self
    where
        K: k8s_openapi::Resource
            + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
            + Serialize,
    {
        DesiredObject {
            phase,
            api_version: K::API_VERSION.to_string(),
            kind: K::KIND.to_string(),
            name: obj.metadata().name.clone().unwrap_or_default(),
            object: serde_json::to_value(obj).expect("k8s objects serialize"),
            retain: false,
        }
    }

    /// An object of a kind k8s-openapi has no type for (e.g. Gateway API), as JSON carrying
    /// `apiVersion`, `kind` and `metadata` (with the labels of [`crate::names::labels`], like
    /// every other object, so that pruning finds it).
    pub fn from_value(phase: Phase, object: Value) -> Self {
        let field = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("a desired object needs {p}"))
                .to_string()
        };
        DesiredObject {
            phase,
            api_version: field("/apiVersion"),
            kind: field("/kind"),
            name: field("/metadata/name"),
            object,
            retain: false,
        }
    }

    pub fn retained(mut self) -> Self {
        self.retain = true;
        self
    }

    /// Stable order: phase, then kind, then name.
    pub fn sort_key(&self) -> (Phase, &str, &str) {
        (self.phase, &self.kind, &self.name)
    }
}

/// A Secret whose values the controller creates (never the engine): generated credentials, a
/// copy of a literal license, a composed connection URL. `render` shows only this declaration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    pub name: String,
    pub keys: Vec<String>,
    pub source: SecretSource,
    /// Generated credentials are data: kept on `detach`, never regenerated.
    pub retain: bool,
    /// Named exactly as the manifest says (`useExactName`), so every instance in the namespace
    /// uses the same Secret: deleting one instance must not take it from the others.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// The server manifest's name of a generated secret (`status.generatedSecrets` is keyed by
    /// it); `None` for the operator's own credentials.
    #[serde(skip)]
    pub manifest_name: Option<String>,
    /// What happens to retained data when the resource is deleted, decided when the plan is
    /// built (the managed service's `retentionPolicy`, else `spec.retentionPolicy`): the owner
    /// reference it is written with follows from it, without re-deriving it from names.
    #[serde(skip)]
    pub on_delete: wandb_api::RetentionPolicy,
}

/// How the controller fills a declared Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum SecretSource {
    /// Random printable characters, created once and never overwritten.
    Generated { length: u32 },
    /// Copied from a CR field (e.g. `spec.wandb.license`).
    FromSpec { field: String },
    /// Composed from an external service's Secret keys (URL with encoded credentials).
    ExternalConnection { service: String, instance: String },
    /// Credentials and URL of a managed service, generated once.
    ManagedConnection { service: String, instance: String },
    /// `smtp://user:pass@host:port` from `spec.wandb.notifications.email.smtp`.
    EmailSink,
}
