//! Where an upgrade's dumps go: the instance's managed object store when it has one, else the
//! backups PVC ([`super::backup`]).
//!
//! With a managed object store, a backup pod dumps into an `emptyDir` (an init container with
//! the database's image), then a second container uploads the dump and its `.sha256` through
//! the store's S3 API to `s3://<bucket>/backups/<cr>/<service>/<from>-<to>-<time>.<ext>` and
//! deletes that service's dumps beyond the newest `keep`. A restore pod does the reverse:
//! an init container downloads both files, then the database's image checks and loads them.
//! Both dump and upload run in one pod, so nothing needs a shared volume across nodes.
//!
//! The client is the AWS CLI image (pinned, [`uploader_image`]), rewritten like every image by
//! `spec.global.imageRegistry` for air-gapped mirrors. External object stores are not used:
//! their provider and credentials live in the user's Secrets, unknown when the plan is made,
//! and may be GCS, Azure or workload identity, which this client does not cover; their
//! instances keep their dumps in the PVC.

use k8s_openapi::api::core::v1::{Container, EnvVar, VolumeMount};
use wandb_manifest::ImageRef;

use super::workload::{lit, secret_env};
use super::{BUCKET, KEY_ACCESS_KEY, KEY_SECRET_KEY, S3_PORT, credentials_secret};
use crate::build::pod::container_security;
use crate::connection::ServiceKind;
use crate::instance::{Instance, Mode};

/// Key prefix of the dumps in the bucket.
pub const PREFIX: &str = "backups";

/// The S3 client image (pinned).
pub fn uploader_image() -> ImageRef {
    super::image("docker.io", "amazon/aws-cli", "2.27.9")
}

/// The managed object store a backup goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// `http://<service>:8333`.
    pub endpoint: String,
    pub bucket: String,
    /// The store's generated credentials Secret (`access-key`, `secret-key`).
    pub credentials: String,
}

/// The instance's managed object store (`default` first), if it has one.
pub fn store(inst: &Instance) -> Option<Store> {
    let mut managed: Vec<&String> = inst
        .services
        .iter()
        .filter(|((kind, _), mode)| *kind == ServiceKind::ObjectStore && **mode == Mode::Managed)
        .map(|((_, i), _)| i)
        .collect();
    managed.sort_by_key(|i| (i.as_str() != "default", i.as_str()));
    let instance = managed.first()?;
    let kind = ServiceKind::ObjectStore;
    Some(Store {
        endpoint: format!("http://{}:{S3_PORT}", inst.service_name(kind, instance)),
        bucket: BUCKET.to_string(),
        credentials: credentials_secret(inst, kind, instance),
    })
}

/// The location recorded for a dump at `rel` (`<cr>/<service>/<file>`).
pub fn location(store: &Store, rel: &str) -> String {
    format!("s3://{}/{PREFIX}/{rel}", store.bucket)
}

/// The dump's path under the backups mount for an object-store `location`, if it is one.
pub fn relative<'a>(store: &Store, location: &'a str) -> Option<&'a str> {
    location.strip_prefix(&format!("s3://{}/{PREFIX}/", store.bucket))
}

/// Shared start of the client scripts: path-style requests (the CLI would otherwise address
/// `<bucket>.<service>`, which no in-cluster DNS name answers), from a config file in `/tmp`.
const CLIENT_PRELUDE: &str = "set -euo pipefail\n\
     printf '[default]\\ns3 =\\n  addressing_style = path\\n' > /tmp/aws.config\n\
     export AWS_CONFIG_FILE=/tmp/aws.config\n";

/// The upload step: the dump written by the init container at `<mount>/<dir>/$BACKUP_FILE` and
/// its checksum (the checksum last: a dump without one is incomplete, and a restore refuses
/// it), then the service's dumps beyond the newest `keep` are deleted, oldest first.
pub fn upload_script(mount: &str, dir: &str, keep: usize) -> String {
    format!(
        "{CLIENT_PRELUDE}\
         src={mount}/{dir}\n\
         dest=\"s3://$BUCKET/{PREFIX}/{dir}\"\n\
         aws --endpoint-url \"$S3_ENDPOINT\" s3 cp --only-show-errors \"$src/$BACKUP_FILE\" \"$dest/$BACKUP_FILE\"\n\
         aws --endpoint-url \"$S3_ENDPOINT\" s3 cp --only-show-errors \"$src/$BACKUP_FILE.sha256\" \"$dest/$BACKUP_FILE.sha256\"\n\
         # keep the newest {keep} dumps of this service (the listing is `date time size name`)\n\
         aws --endpoint-url \"$S3_ENDPOINT\" s3 ls \"$dest/\" | {{ grep -v '\\.sha256$' || true; }} \
         | sort -r -k1,2 | tail -n +{next} | while read -r _ _ _ f; do\n\
         \x20 aws --endpoint-url \"$S3_ENDPOINT\" s3 rm --only-show-errors \"$dest/$f\"\n\
         \x20 aws --endpoint-url \"$S3_ENDPOINT\" s3 rm --only-show-errors \"$dest/$f.sha256\"\n\
         done\n\
         echo \"backup uploaded: $dest/$BACKUP_FILE\"\n",
        next = keep + 1,
    )
}

/// The download step of a restore: the dump at `rel` and its checksum into `<mount>/<rel>`.
pub fn download_script(mount: &str, rel: &str) -> String {
    format!(
        "{CLIENT_PRELUDE}\
         file={mount}/{rel}\n\
         mkdir -p \"$(dirname \"$file\")\"\n\
         src=\"s3://$BUCKET/{PREFIX}/{rel}\"\n\
         aws --endpoint-url \"$S3_ENDPOINT\" s3 cp --only-show-errors \"$src\" \"$file\"\n\
         aws --endpoint-url \"$S3_ENDPOINT\" s3 cp --only-show-errors \"$src.sha256\" \"$file.sha256\"\n"
    )
}

/// The client container: the store's endpoint, bucket and credentials (by secretKeyRef).
pub fn client_container(
    name: &str,
    image: String,
    store: &Store,
    script: String,
    mut env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
) -> Container {
    env.extend([
        lit("S3_ENDPOINT", &store.endpoint),
        lit("BUCKET", &store.bucket),
        secret_env("AWS_ACCESS_KEY_ID", &store.credentials, KEY_ACCESS_KEY),
        secret_env("AWS_SECRET_ACCESS_KEY", &store.credentials, KEY_SECRET_KEY),
        // Any region signs for the built-in store; the CLI needs one.
        lit("AWS_DEFAULT_REGION", "us-east-1"),
        // Checksums only where S3 requires them: S3-compatible stores may not accept the
        // CLI's default trailing checksums (the dump has its own sha256 anyway).
        lit("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required"),
        lit("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required"),
        // The CLI writes its cache under $HOME; the root filesystem is not for writing.
        lit("HOME", "/tmp"),
    ]);
    Container {
        name: name.into(),
        image: Some(image),
        command: Some(vec!["bash".into(), "-c".into(), script]),
        env: Some(env),
        volume_mounts: Some(mounts),
        security_context: Some(container_security()),
        ..Default::default()
    }
}
