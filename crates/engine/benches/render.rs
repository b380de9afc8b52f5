//! Render throughput for the 0.84.0 fixture manifest: `cargo bench -p wandb-engine --bench render`.
//!
//! Measures plan (resolve + build) and plan + YAML serialization separately, each over a fixed
//! number of iterations after a warm-up, and prints renders per second (median of 5 rounds).

use std::path::PathBuf;
use std::time::Instant;

use wandb_api::WeightsAndBiases;
use wandb_manifest::ManifestLocation;

const ROUNDS: usize = 5;
const ITERS: usize = 200;

fn main() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/server-manifest");
    let manifest = ManifestLocation::parse(&format!("file://{}", dir.display()))
        .and_then(|l| l.load("0.84.0"))
        .expect("the 0.84.0 fixture loads (shared/ beside the repo)");
    let cr: WeightsAndBiases = serde_saphyr::from_str(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: wandb, namespace: wandb}\nspec:\n  size: small\n  networking: {mode: ingress}\n  wandb: {hostname: https://wandb.example.com, version: \"0.84.0\"}\n",
    )
    .unwrap();

    let load = median(|| {
        for _ in 0..20 {
            std::hint::black_box(
                ManifestLocation::parse(&format!("file://{}", dir.display()))
                    .and_then(|l| l.load("0.84.0"))
                    .unwrap(),
            );
        }
    }) / 20.0;
    let plan = median(|| {
        for _ in 0..ITERS {
            std::hint::black_box(wandb_engine::plan(&cr, &manifest, None).unwrap());
        }
    }) / ITERS as f64;
    let yaml = median(|| {
        for _ in 0..ITERS {
            let built = wandb_engine::plan(&cr, &manifest, None).unwrap();
            std::hint::black_box(wandb_engine::render::to_yaml(&built, "wandb"));
        }
    }) / ITERS as f64;
    println!(
        "manifest load+merge (0.84.0, 2 files): {:>8.1} us  ({:.0}/s)",
        load * 1e6,
        1.0 / load
    );
    println!(
        "plan (resolve+build):                 {:>8.1} us  ({:.0} renders/s)",
        plan * 1e6,
        1.0 / plan
    );
    println!(
        "plan + YAML output:                   {:>8.1} us  ({:.0} renders/s)",
        yaml * 1e6,
        1.0 / yaml
    );
}

/// Median wall time of `ROUNDS` runs of `f`, after one warm-up run, in seconds.
fn median(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}
