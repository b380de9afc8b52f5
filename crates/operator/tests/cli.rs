//! The `crd`, `render` and `convert` subcommands as a user runs them: output, exit codes and messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wandb-operator"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> String {
    let dir = repo()
        .join("../shared/fixtures/server-manifest")
        .canonicalize()
        .expect("shared/ beside the repo");
    format!("file://{}", dir.display())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `wandb-operator render -f CR --manifest LOCATION`.
fn render(cr: &Path, manifest: &str) -> Output {
    bin()
        .args(["render", "-f"])
        .arg(cr)
        .args(["--manifest", manifest])
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wandb-cli-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

const GOOD: &str = "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: wandb, namespace: wandb}\nspec:\n  wandb:\n    hostname: https://wandb.example.com\n    version: \"0.84.0\"\n    license: super-secret-license-text\n";

#[test]
fn crd_prints_the_committed_crd() {
    let out = bin().arg("crd").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(repo().join("deploy/crds/apps.wandb.com_weightsandbiases.yaml"))
            .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

#[test]
fn render_prints_objects_without_secret_values() {
    let d = tmp();
    let cr = write(&d, "wandb.yaml", GOOD);
    let out = render(&cr, &fixtures());
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(yaml.contains("kind: Deployment") && yaml.contains("kind: Job"));
    assert!(
        !yaml.contains("super-secret-license-text"),
        "the license must never appear in render output"
    );
    assert!(
        !yaml.contains("\ndata:") && !yaml.contains("stringData"),
        "declared Secrets carry no values"
    );
}

#[test]
fn render_reads_the_manifest_where_the_operator_would() {
    let d = tmp();
    // The resource's own manifestRepository.
    let cr = write(
        &d,
        "own.yaml",
        &GOOD.replace(
            "    version: \"0.84.0\"\n",
            "    version: \"0.84.0\"\n    manifestRepository: builtin://\n",
        ),
    );
    let out = bin().args(["render", "-f"]).arg(&cr).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("wandb/local:0.84.0")
    );
    // Unset: W&B's registry layout under spec.global.imageRegistry (a closed port here, so the
    // failure names the location without any network).
    let cr = write(
        &d,
        "mirror.yaml",
        &format!("{GOOD}  global: {{imageRegistry: \"127.0.0.1:9\"}}\n"),
    );
    let out = bin().args(["render", "-f"]).arg(&cr).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("oci://127.0.0.1:9/wandb/server-manifest"),
        "{}",
        stderr(&out)
    );
}

const V1: &str = "apiVersion: apps.wandb.com/v1
kind: WeightsAndBiases
metadata: {name: wandb, namespace: default}
spec:
  values:
    global:
      host: https://wandb.example.com
      license: v1-license-literal
      mysql: {host: db.example.com, user: wandb, password: v1-db-password, database: wandb_local}
      bucket: {provider: s3, name: my-bucket, region: us-east-1}
    redis: {install: false}
    app:
      image: {tag: \"0.84.0\"}
      extraEnv: {T: \"{{ .Values.x }}\"}
    yace: {install: true}
";

#[test]
fn convert_prints_v2_and_the_secret_with_values_only_on_request() {
    let d = tmp();
    let f = write(&d, "v1.yaml", V1);
    let out = bin().args(["convert", "-f"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(yaml.contains("apiVersion: apps.wandb.com/v2"), "{yaml}");
    assert!(
        yaml.contains("kind: Secret") && yaml.contains("name: wandb-v1-values"),
        "{yaml}"
    );
    assert!(yaml.contains("<redacted>"));
    for secret in ["v1-license-literal", "v1-db-password"] {
        assert!(
            !yaml.contains(secret),
            "{secret} printed without --show-secrets"
        );
    }
    let err = stderr(&out);
    assert!(
        err.contains("spec.values.yace") && err.contains("spec.values.app.extraEnv.T"),
        "{err}"
    );
    assert!(err.contains("spec.values.global.redis.host"), "{err}");

    let out = bin()
        .args(["convert", "--show-secrets", "-f"])
        .arg(&f)
        .output()
        .unwrap();
    let yaml = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(yaml.contains("v1-db-password") && yaml.contains("v1-license-literal"));

    // A v2 file is refused with a reason.
    let v2 = write(&d, "v2.yaml", GOOD);
    let out = bin().args(["convert", "-f"]).arg(&v2).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not an apps.wandb.com/v1"));
}

#[test]
fn render_accepts_v1_input() {
    let d = tmp();
    let f = write(&d, "v1.yaml", V1);
    let out = render(&f, "builtin://");
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(yaml.contains("wandb/local:0.84.0"));
    assert!(
        yaml.contains("wandb-v1-values"),
        "connections read the conversion Secret"
    );
    assert!(!yaml.contains("v1-db-password") && !yaml.contains("v1-license-literal"));
    assert!(stderr(&out).contains("spec.values.yace"));
}

#[test]
fn a_bad_cr_names_the_file_and_the_field_and_exits_2() {
    let d = tmp();
    let cases = [
        (
            "latest.yaml",
            GOOD.replace("\"0.84.0\"", "latest"),
            "spec.wandb.version",
        ),
        (
            "hostname.yaml",
            GOOD.replace("https://wandb.example.com", "wandb.example.com"),
            "spec.wandb.hostname",
        ),
        (
            "size.yaml",
            GOOD.replace("spec:\n", "spec:\n  size: huge\n"),
            "size",
        ),
        (
            "oldshape.yaml",
            GOOD.replace("spec:\n", "spec:\n  mysql: {managedMysql: {}}\n"),
            "default: {managedMysql",
        ),
        ("yaml.yaml", "apiVersion: [".to_string(), "yaml.yaml"),
    ];
    for (name, text, field) in cases {
        let cr = write(&d, name, &text);
        let out = render(&cr, &fixtures());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(
            err.contains(field),
            "{name}: the message names {field}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{name}: nothing is printed on stdout"
        );
    }
}

#[test]
fn a_bad_manifest_names_the_file_and_the_field_and_exits_2() {
    let d = tmp();
    let cr = write(&d, "wandb.yaml", GOOD);
    let mdir = d.join("manifests");
    std::fs::create_dir_all(&mdir).unwrap();
    write(
        &mdir,
        "0.84.0.yaml",
        "requiredOperatorVersion: ^2.0.0\napplications:\n  api:\n    containers:\n      - name: api\n        ports:\n          - containerPort: not-a-number\n",
    );
    let out = render(&cr, &format!("file://{}", mdir.display()));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("0.84.0.yaml") && err.contains("containerPort"),
        "{err}"
    );

    write(&mdir, "0.84.0.yaml", "requiredOperatorVersion: ^9.0.0\n");
    let out = render(&cr, &format!("file://{}", mdir.display()));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("^9.0.0"),
        "an incompatible manifest says what it requires: {err}"
    );

    let out = render(&cr, &format!("file://{}/missing", d.display()));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_refuses_a_bad_default_manifest_repository_before_connecting() {
    let out = bin()
        .args([
            "run",
            "--default-manifest-repository",
            "https://example.com/m",
        ])
        // No cluster is needed to refuse it: the check comes before the client.
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Logged (stdout), like every other reason `run` stops.
    let err = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert!(
        err.contains("--default-manifest-repository") && err.contains("http(s) is not supported"),
        "{err}"
    );
}

#[test]
fn render_refuses_what_the_api_server_or_a_kubelet_would_with_exit_2() {
    let dir = tmp();
    let clash = write(
        &dir,
        "clash.yaml",
        &format!("{GOOD}  redis: {{default: {{managedRedis: {{name: wandb-api}}}}}}\n"),
    );
    let out = render(&clash, &fixtures());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("spec.redis.default.managedRedis.name")
            && err.contains("two Services would be named \"wandb-api\""),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing rendered");
    let long = write(
        &dir,
        "long.yaml",
        &GOOD.replace("name: wandb,", &format!("name: {},", "a".repeat(40)))
            .replace("spec:\n", "spec:\n  mysql: {default: {managedMysql: {}}, analytics-primary-01: {managedMysql: {}}}\n"),
    );
    let out = render(&long, &fixtures());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("StatefulSet name"),
        "{}",
        stderr(&out)
    );
}
