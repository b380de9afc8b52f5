//! `images` as a user runs it (offline): every image `render` puts in a pod template, after
//! `spec.global.imageRegistry` retargeting, and a mirror script whose sources are the original
//! images and whose targets are where a retargeted instance pulls from.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wandb-operator"))
}

fn fixtures() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/server-manifest")
        .canonicalize()
        .expect("shared/ beside the repo");
    format!("file://{}", dir.display())
}

fn tmp() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("wandb-images-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(o: &Output) -> BTreeSet<String> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every `image` of every container list in `render`'s output, read from the parsed documents.
fn rendered_images(cr: &Path, manifest: &str) -> BTreeSet<String> {
    let out = run(&["render", "-f", cr.to_str().unwrap(), "--manifest", manifest]);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap())
        .expect("render prints YAML documents");
    let mut found = BTreeSet::new();
    fn walk(v: &Value, found: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    if matches!(k.as_str(), "containers" | "initContainers") {
                        for item in c.as_array().into_iter().flatten() {
                            found.insert(item["image"].as_str().unwrap().to_string());
                        }
                    }
                    walk(c, found);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, found)),
            _ => {}
        }
    }
    docs.iter().for_each(|d| walk(d, &mut found));
    found
}

/// A resource with every kind of image: applications and migrations (the fixture manifest),
/// managed services with their exporters, retargeted to a mirror.
fn cr(registry: Option<&str>) -> String {
    let global = registry
        .map(|r| format!("  global: {{imageRegistry: {r}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: n}}\nspec:\n{global}  \
         wandb: {{hostname: https://w.example.com, version: \"0.84.0\"}}\n  \
         mysql: {{default: {{managedMysql: {{telemetry: {{enabled: true}}}}}}}}\n  \
         redis: {{default: {{managedRedis: {{telemetry: {{enabled: true}}}}}}}}\n"
    )
}

#[test]
fn images_lists_every_image_render_produces_after_retargeting() {
    let d = tmp();
    let file = d.join("w.yaml");
    std::fs::write(&file, cr(Some("mirror.example.com/wandb"))).unwrap();
    for manifest in [fixtures(), "builtin://".to_string()] {
        let rendered = rendered_images(&file, &manifest);
        let listed = lines(&run(&[
            "images",
            "-f",
            file.to_str().unwrap(),
            "--manifest",
            &manifest,
        ]));
        // What render produces, plus what the first upgrade's backup Jobs add: the
        // object-store client (the database images are the services' own).
        let extra: Vec<&String> = listed.difference(&rendered).collect();
        assert_eq!(
            extra,
            ["mirror.example.com/wandb/docker.io/amazon/aws-cli:2.27.9"],
            "{manifest}"
        );
        assert!(rendered.is_subset(&listed), "{manifest}");
        assert!(
            listed
                .iter()
                .all(|i| i.starts_with("mirror.example.com/wandb/")),
            "{listed:#?}"
        );
        // Exporters of the managed services are in it.
        assert!(
            listed.iter().any(|i| i.contains("mysqld-exporter"))
                && listed.iter().any(|i| i.contains("redis_exporter")),
            "{listed:#?}"
        );
    }
    // The fixture manifest has migrations: their images are listed too.
    let fixtures_list = lines(&run(&[
        "images",
        "-f",
        file.to_str().unwrap(),
        "--manifest",
        &fixtures(),
    ]));
    assert!(fixtures_list.len() > 4, "{fixtures_list:#?}");
}

#[test]
fn a_version_lists_everything_that_version_can_run() {
    let d = tmp();
    let file = d.join("w.yaml");
    std::fs::write(&file, cr(None)).unwrap();
    let rendered = rendered_images(&file, &fixtures());
    let all = lines(&run(&[
        "images",
        "--version",
        "0.84.0",
        "--manifest",
        &fixtures(),
    ]));
    assert!(
        rendered.is_subset(&all),
        "missing: {:#?}",
        rendered.difference(&all).collect::<Vec<_>>()
    );
    let mirrored = lines(&run(&[
        "images",
        "--version",
        "0.84.0",
        "--manifest",
        &fixtures(),
        "--image-registry",
        "reg.local:5000",
    ]));
    assert!(all.contains("docker.io/amazon/aws-cli:2.27.9"), "{all:#?}");
    assert_eq!(mirrored.len(), all.len());
    assert!(mirrored.iter().all(|i| i.starts_with("reg.local:5000/")));
}

#[test]
fn the_mirror_script_copies_each_original_to_where_the_instance_pulls_it() {
    let d = tmp();
    let (plain, retargeted) = (d.join("plain.yaml"), d.join("mirrored.yaml"));
    std::fs::write(&plain, cr(None)).unwrap();
    std::fs::write(&retargeted, cr(Some("reg.local:5000/mirror"))).unwrap();
    let script = String::from_utf8(
        run(&[
            "images",
            "-f",
            plain.to_str().unwrap(),
            "--manifest",
            &fixtures(),
            "--mirror-script",
            "reg.local:5000/mirror",
        ])
        .stdout,
    )
    .unwrap();
    let mut sources = BTreeSet::new();
    let mut targets = BTreeSet::new();
    for line in script.lines().filter(|l| l.starts_with("skopeo copy")) {
        let parts: Vec<&str> = line.split(' ').collect();
        let strip = |s: &str| {
            s.trim_matches('\'')
                .strip_prefix("docker://")
                .unwrap()
                .to_string()
        };
        sources.insert(strip(parts[3]));
        targets.insert(strip(parts[4]));
    }
    // What render produces plus the backup Jobs' object-store client.
    let mut want = rendered_images(&plain, &fixtures());
    want.insert("docker.io/amazon/aws-cli:2.27.9".into());
    assert_eq!(sources, want);
    let mut want = rendered_images(&retargeted, &fixtures());
    want.insert("reg.local:5000/mirror/docker.io/amazon/aws-cli:2.27.9".into());
    assert_eq!(targets, want);
    assert!(script.starts_with("#!/bin/sh\n"));
}

#[test]
fn images_needs_a_source() {
    let out = bin().arg("images").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args([
            "images",
            "--version",
            "0.84.0",
            "--manifest",
            "file:///nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("manifest file:///nonexistent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Linked as `kubectl-wandb` (how kubectl finds plugins) the binary runs the same commands and
/// calls itself `kubectl wandb` in help and errors.
#[test]
fn as_a_kubectl_plugin_it_calls_itself_kubectl_wandb() {
    let d = tmp();
    let plugin = d.join("kubectl-wandb");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wandb-operator"), &plugin).unwrap();
    let help = Command::new(&plugin).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("Usage: kubectl wandb <COMMAND>"), "{help}");
    for cmd in ["status", "diff", "support-bundle", "images", "doctor"] {
        assert!(help.contains(cmd), "{cmd} missing from {help}");
    }
    let out = Command::new(&plugin)
        .args(["images", "--version", "0.84.0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("wandb/local:0.84.0")
    );
}
