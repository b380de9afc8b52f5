//! `convert`: a v1 resource file -> the v2 resource and its conversion Secret, offline, exactly
//! as the conversion webhook stores it. Secret values are printed only with `--show-secrets`;
//! what could not be mapped goes to stderr as warnings naming the v1 value path.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use k8s_openapi::ByteString;
use serde_json::Value;
use wandb_operator::convert::{self, Converted};

#[derive(Args)]
pub struct ConvertArgs {
    /// The apps.wandb.com/v1 WeightsAndBiases resource (YAML).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Print the conversion Secret's values (otherwise each value is `<redacted>`).
    #[arg(long)]
    pub show_secrets: bool,
    /// Namespace for a resource that names none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

const BAD_INPUT: u8 = 2;

pub fn run(args: &ConvertArgs) -> ExitCode {
    let file = args.file.display();
    let result = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("{file}: {e}"))
        .and_then(|t| {
            if !is_v1(&t).map_err(|e| format!("{file}: {e}"))? {
                return Err(format!(
                    "{file}: not an apps.wandb.com/v1 WeightsAndBiases (v2 resources need no conversion)"
                ));
            }
            convert_text(&t).map_err(|e| format!("{file}: {e}"))
        });
    match result {
        Ok(mut c) => {
            if c.v2.metadata.namespace.is_none() {
                c.v2.metadata.namespace = Some(args.namespace.clone());
            }
            for f in &c.findings {
                eprintln!("warning: {f}");
            }
            print!("{}", to_yaml(&c, args.show_secrets));
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// Whether a YAML document is an `apps.wandb.com/v1` resource.
pub fn is_v1(text: &str) -> Result<bool, String> {
    let v: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    Ok(v.get("apiVersion").and_then(Value::as_str) == Some("apps.wandb.com/v1"))
}

/// v1 YAML -> the conversion result.
pub fn convert_text(text: &str) -> Result<Converted, String> {
    let v: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("metadata.name: is required".into());
    }
    Ok(convert::to_v2(&v))
}

fn to_yaml(c: &Converted, show_secrets: bool) -> String {
    let mut out = serde_saphyr::to_string(&c.v2).expect("the v2 resource serializes");
    if !c.secret_data.is_empty() {
        let mut secret = convert::conversion_secret(&c.v2, &c.secret_data, true);
        if !show_secrets {
            for v in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
                *v = ByteString(b"<redacted>".to_vec());
            }
        }
        let mut value = serde_json::to_value(&secret).expect("a Secret serializes");
        // stringData reads better than base64 and applies the same.
        if let Some(obj) = value.as_object_mut()
            && let Some(Value::Object(data)) = obj.remove("data")
        {
            let plain: serde_json::Map<String, Value> = secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Value::String(String::from_utf8_lossy(&v.0).into()),
                    )
                })
                .collect();
            let _ = data;
            obj.insert("stringData".into(), Value::Object(plain));
        }
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&value).expect("a Secret serializes"));
    }
    out
}
