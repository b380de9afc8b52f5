//! The committed CRD (`deploy/crds/apps.wandb.com_weightsandbiases.yaml`) must equal what the
//! types generate, so the Helm chart, `kubectl apply -f deploy/crds` and the operator's own
//! `crd` subcommand never disagree.
//!
//! Regenerate after changing the API types:
//!
//! ```text
//! UPDATE_CRD=1 cargo test -p wandb-api --test crd_drift
//! ```

use std::path::PathBuf;

const REGENERATE: &str = "UPDATE_CRD=1 cargo test -p wandb-api --test crd_drift";

fn committed_path() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| manifest_dir.join("../.."));
    workspace.join("deploy/crds/apps.wandb.com_weightsandbiases.yaml")
}

fn update_requested() -> bool {
    std::env::var("UPDATE_CRD").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

#[test]
fn committed_crd_matches_generated() {
    let generated = wandb_api::crd_yaml();
    let path = committed_path();

    if update_requested() {
        std::fs::create_dir_all(path.parent().expect("the CRD path has a parent"))
            .expect("create deploy/crds");
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }

    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the committed CRD {}: {e}\nGenerate it with:\n    {REGENERATE}",
            path.display()
        )
    });

    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  committed: {a}\n  generated: {b}", i + 1))
            .unwrap_or_else(|| {
                format!(
                    "one file is a prefix of the other ({} vs {} lines)",
                    committed.lines().count(),
                    generated.lines().count()
                )
            });
        panic!(
            "{} is out of date with the API types in crates/api/src.\n\
             First difference at {first_difference}\n\
             Regenerate it with:\n    {REGENERATE}\nand commit the result.",
            path.display()
        );
    }
}

#[test]
fn generated_crd_is_one_crd_document() {
    // What gets committed: one YAML document describing this CRD.
    let generated = wandb_api::crd_yaml();
    assert!(generated.contains("kind: CustomResourceDefinition"));
    assert!(generated.contains("name: weightsandbiases.apps.wandb.com"));
    assert!(
        !generated.contains("\n---"),
        "the CRD file must hold exactly one document"
    );
}

#[test]
fn shipped_crd_fits_kubectl_client_side_apply() {
    // `kubectl apply` (client-side) stores the object as compact JSON in the
    // kubectl.kubernetes.io/last-applied-configuration annotation; all annotations together must
    // stay under 256 KiB. Keep a margin for the chart's labels and annotations.
    const ANNOTATION_LIMIT: usize = 262_144;
    let json = serde_json::to_vec(&wandb_api::crd()).expect("the CRD serializes");
    assert!(
        json.len() < ANNOTATION_LIMIT * 3 / 4,
        "the shipped CRD is {} bytes as JSON; `kubectl apply` allows {ANNOTATION_LIMIT} bytes of \
         annotations: trim descriptions (crates/api/src/crd.rs)",
        json.len()
    );
}
