use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, Probe, ResourceRequirements, SecretKeySelector};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The W&B application.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.license) && has(self.licenseSecret))").message("spec.wandb takes license or licenseSecret, not both"))]
pub struct WandbAppSpec {
    /// Public URL including the scheme, e.g. `https://wandb.example.com`.
    #[schemars(length(max = 268))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?/?$')").message("spec.wandb.hostname must be a URL such as https://wandb.example.com (scheme and host, optional port, no path)"))]
    pub hostname: String,

    /// Extra public hostnames (Ingress rules and TLS hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new("self.all(h, h.matches('^[A-Za-z0-9*]([-A-Za-z0-9.]*[A-Za-z0-9])?$'))").message("spec.wandb.additionalHostnames entries are host names without a scheme, e.g. wandb.internal.example.com"))]
    pub additional_hostnames: Option<Vec<String>>,

    /// The W&B Server version; selects the server manifest. Must be pinned: not empty, not `latest`.
    #[schemars(length(max = 128))]
    #[x_kube(
        validation = Rule::new("self != 'latest'").message("spec.wandb.version must be pinned to a release such as \"0.84.0\", not \"latest\""),
        validation = Rule::new("self != ''").message("spec.wandb.version must be pinned to a release such as \"0.84.0\"; it is empty"),
        validation = Rule::new("self == '' || self.matches('^[A-Za-z0-9][A-Za-z0-9._+-]*$')").message("spec.wandb.version must be a release tag such as \"0.84.0\": letters, digits, '.', '_', '+' and '-' only, no spaces"),
    )]
    pub version: String,

    /// Where server manifests are read: `oci://registry/repo`, `file:///dir` or `builtin://`.
    /// Unset: the operator's `--default-manifest-repository` if given, else (as the official
    /// operator) `oci://<spec.global.imageRegistry or us-docker.pkg.dev/wandb-production/public>/wandb/server-manifest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('oci://') || self.startsWith('file://') || self.startsWith('builtin://') || !self.contains('://')").message("spec.wandb.manifestRepository must start with oci://, file:// or builtin:// (http(s) is not supported)"))]
    pub manifest_repository: Option<String>,

    /// W&B license as a literal. Prefer `licenseSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,

    /// Secret key holding the W&B license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_secret: Option<SecretKeySelector>,

    /// Feature flags; override the server manifest's `features` (gate apps and Kafka topics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<BTreeMap<String, bool>>,

    /// Serve bucket traffic through W&B (`BUCKET_PROXY`). Forced on for a managed default object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_proxy: Option<bool>,

    /// Service-to-service auth with Kubernetes service-account tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_service_auth: Option<InternalServiceAuthSpec>,

    /// The workload ServiceAccount shared by app pods and migration Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSpec>,

    /// Probe settings that fill in what the manifest's probes leave unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<ProbesSpec>,

    /// Single sign-on (OIDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcSpec>,

    /// Email and Slack notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationsSpec>,

    /// Security switches surfaced to W&B as GORILLA_* settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,

    /// Per-application overrides keyed by manifest application name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub applications: Option<BTreeMap<String, ApplicationOverride>>,

    /// Environment and resource overrides carried over from v1 (Helm) values, keyed by manifest
    /// application name or the application's legacy (chart) name, plus `global` (env only, for
    /// every application and migration). Applied last: `global` env replaces same-named
    /// variables of every app, an app's own env replaces those; resources overlay the manifest
    /// sizing per resource name (limits still dropped unless `requireLimits`). Keys naming no
    /// application are reported by the `LegacyOverrides` warning of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new("!('global' in self) || !has(self['global'].resources)").message("spec.wandb.legacyOverrides.global takes env only; put resources under an application's key"))]
    pub legacy_overrides: Option<BTreeMap<String, LegacyOverride>>,

    /// How upgrades are made recoverable (backups before migrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeSpec>,
}

/// Upgrade safety. W&B's database migrations are forward-only, so the way back from an upgrade
/// is a backup taken before its migrations ran.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSpec {
    /// Backups taken when `spec.wandb.version` changes, before the new version's migrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
}

/// Backups before migrations.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// `managedOnly` (default): before an upgrade's migrations, a Job dumps every managed MySQL
    /// and ClickHouse into the managed object store (else the PVC `<name>-backups`);
    /// migrations wait for it and a failed dump
    /// stops the upgrade. `required`: the same, and when a MySQL or ClickHouse is external the
    /// upgrade also waits for the annotation `apps.wandb.com/backup-taken: "<version>:<snapshot
    /// id>"` saying a backup of it was taken (e.g. a cloud snapshot). `none`: no backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<BackupMode>,
    /// How many backups to keep per service (dumps in the object store or PVC, their Jobs, and
    /// the records in `status.wandb.backups`); default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("spec.wandb.upgrade.backup.keep must be between 1 and 100"))]
    pub keep: Option<i32>,
    /// What deleting the instance does to the backups (the PVC, and the managed object store's
    /// volume once it holds one): `detach` (default, whatever `spec.retentionPolicy` says) keeps
    /// them; only `purge` deletes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<crate::RetentionSpec>,
}

/// Which backups an upgrade takes or waits for.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum BackupMode {
    /// Dump the managed databases; external ones are the user's concern.
    #[default]
    ManagedOnly,
    /// Dump the managed databases and wait for an acknowledged backup of external ones.
    Required,
    /// Take no backup (not recommended: an upgrade cannot be rolled back).
    None,
}

impl BackupSpec {
    /// Backups kept per service when `keep` is unset.
    pub const DEFAULT_KEEP: i32 = 5;

    pub fn keep(&self) -> usize {
        usize::try_from(self.keep.unwrap_or(Self::DEFAULT_KEEP).clamp(1, 100)).unwrap_or(5)
    }
}

/// Env and resources for one application (or `global`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LegacyOverride {
    /// Environment variables; replace same-named ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub env: Option<Vec<EnvVar>>,
    /// Requests and limits, per resource name over the manifest sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Internal service auth.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InternalServiceAuthSpec {
    /// Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Token issuer; defaults to `https://kubernetes.default.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
}

/// Workload ServiceAccount.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSpec {
    /// Create the ServiceAccount, Role and RoleBinding (default true). When false it must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// Name; defaults to `<name>-app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')").message("spec.wandb.serviceAccount.serviceAccountName must be a DNS subdomain name"))]
    pub service_account_name: Option<String>,
    /// Annotations, e.g. for IRSA or Workload Identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Probe defaults.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbesSpec {
    /// Startup probe fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    /// Liveness probe fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Readiness probe fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
}

/// OIDC single sign-on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OidcSpec {
    /// Client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<SecretKeySelector>,
    /// Client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretKeySelector>,
    /// Issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<SecretKeySelector>,
    /// Auth method (e.g. `implicit`, `pkce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<SecretKeySelector>,
    /// Session length, e.g. `720h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')").message("spec.wandb.oidc.sessionLength must be a duration such as 720h"))]
    pub session_length: Option<String>,
}

/// Notifications.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsSpec {
    /// Email, through a sink URL or SMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSpec>,
    /// Slack app credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackSpec>,
}

/// Email notifications: exactly one of `sink` or `smtp`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.sink) || has(self.smtp)").message("spec.wandb.notifications.email needs sink or smtp"),
    validation = Rule::new("!(has(self.sink) && has(self.smtp))").message("spec.wandb.notifications.email takes sink or smtp, not both"),
)]
pub struct EmailSpec {
    /// Secret key holding an email sink URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<SecretKeySelector>,
    /// SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSpec>,
}

/// SMTP server; the operator builds `smtp://user:pass@host:port` into Secret `<name>-email-sink`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmtpSpec {
    /// Host.
    pub host: SecretKeySelector,
    /// Port.
    pub port: SecretKeySelector,
    /// User name.
    pub username: SecretKeySelector,
    /// Password.
    pub password: SecretKeySelector,
}

/// Slack app credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlackSpec {
    /// Client id.
    pub client_id: SecretKeySelector,
    /// Client secret.
    pub client_secret: SecretKeySelector,
}

/// Security switches.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecuritySpec {
    /// Let users create teams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_user_team_creation: Option<bool>,
    /// Disable code saving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_code_saving: Option<bool>,
    /// Allow anonymous public projects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_anonymous_public_projects: Option<bool>,
    /// Disable SSO user provisioning.
    #[serde(
        default,
        rename = "disableSSOProvisioning",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_sso_provisioning: Option<bool>,
    /// Allow admin access with API keys (insecure).
    #[serde(
        default,
        rename = "insecureAllowAPIKeyAdminAccess",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_allow_api_key_admin_access: Option<bool>,
    /// Hide the upgrade banner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_upgrade_banner: Option<bool>,
}

/// Overrides for one manifest application.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOverride {
    /// Horizontal autoscaling bounds (creates or replaces the app's HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingOverride>,
}

/// HPA bounds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not exceed maxReplicas"))]
pub struct AutoscalingOverride {
    /// Minimum replicas (>= 1); unset keeps the manifest sizing's (else 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("autoscaling.minReplicas must be at least 1"))]
    pub min_replicas: Option<i32>,
    /// Maximum replicas (>= 1); unset keeps the manifest sizing's (else at least minReplicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("autoscaling.maxReplicas must be at least 1"))]
    pub max_replicas: Option<i32>,
}
