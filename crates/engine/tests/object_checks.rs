//! The plan refuses, with the field at fault, what the API server would refuse or what could
//! never start: clashing names, names over their limits, invalid env names and Ingress paths,
//! Secrets over the size limit. `render` and the controller share these checks.

mod common;
use common::manifest;

use wandb_api::WeightsAndBiases;
use wandb_engine::EngineError;
use wandb_manifest::ServerManifest;

fn cr(name: &str, extra: &str) -> WeightsAndBiases {
    let yaml = format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  networking: {{mode: ingress}}\n  wandb:\n    hostname: https://wandb.example.com\n    version: \"0.84.0\"\n    license: not-a-real-license\n{extra}"
    );
    serde_saphyr::from_str(&yaml).unwrap()
}

fn errors(cr: &WeightsAndBiases, m: &ServerManifest) -> Vec<EngineError> {
    match wandb_engine::plan(cr, m, None) {
        Ok(_) => panic!("the plan should be refused"),
        Err(e) => e,
    }
}

#[test]
fn the_fixtures_pass_every_check() {
    for version in ["0.79.0", "0.84.0"] {
        let m = manifest("fixture", version);
        let mut c = cr("wandb", "");
        c.spec.wandb.version = version.into();
        wandb_engine::plan(&c, &m, None).unwrap_or_else(|e| panic!("{version}: {e:?}"));
    }
}

#[test]
fn a_managed_service_named_like_an_application_is_a_clash_naming_both() {
    let m = manifest("fixture", "0.84.0");
    let c = cr(
        "w",
        "  redis:\n    default:\n      managedRedis: {name: w-api}\n",
    );
    let errs = errors(&c, &m);
    let clash = errs
        .iter()
        .find(|e| e.message.contains("two Services would be named \"w-api\""))
        .unwrap_or_else(|| panic!("{errs:?}"));
    assert_eq!(clash.field, "spec.redis.default.managedRedis.name");
    assert!(clash.message.contains("component \"api\""), "{clash}");
    assert!(clash.message.contains("component \"redis\""), "{clash}");
}

#[test]
fn a_long_name_with_an_instance_key_is_refused_at_the_statefulset() {
    let m = manifest("fixture", "0.84.0");
    // The documented maximum name (40) and a 20-character instance key.
    let name = "a".repeat(40);
    let c = cr(
        &name,
        "  mysql:\n    analytics-primary-01:\n      managedMysql: {}\n",
    );
    let errs = errors(&c, &m);
    let sts = errs
        .iter()
        .find(|e| e.message.contains("StatefulSet name"))
        .unwrap_or_else(|| panic!("{errs:?}"));
    assert!(
        sts.field.contains("metadata.name (40 characters)")
            && sts.field.contains("analytics-primary-01"),
        "{sts}"
    );
    assert!(sts.message.contains("at most 52 characters"), "{sts}");
    // The same name alone fits.
    wandb_engine::plan(&cr(&name, ""), &m, None).unwrap();
}

#[test]
fn a_license_over_the_secret_limit_is_refused() {
    let m = manifest("fixture", "0.84.0");
    let mut c = cr("w", "");
    c.spec.wandb.license = Some("x".repeat(1_100_000));
    let errs = errors(&c, &m);
    assert!(
        errs.iter()
            .any(|e| e.field == "spec.wandb.license" && e.message.contains("1100000 bytes")),
        "{errs:?}"
    );
}

#[test]
fn invalid_env_names_and_relative_ingress_paths_in_a_manifest_are_refused() {
    let mut m = manifest("fixture", "0.84.0");
    let api = m.applications.get_mut("api").expect("the fixture has api");
    let mut bad = api.env[0].clone();
    bad.name = "1BAD=NAME".into();
    bad.value = Some("x".into());
    bad.value_from = None;
    bad.sources = Default::default();
    api.env.push(bad);
    let ingress = api.ingress.as_mut().expect("api has ingress paths");
    ingress.paths = vec!["api".into()];
    let errs = errors(&cr("w", ""), &m);
    let text = format!("{errs:?}");
    assert!(text.contains("\\\"1BAD=NAME\\\""), "{text}");
    assert!(text.contains("\\\"api\\\" is not absolute"), "{text}");
}
