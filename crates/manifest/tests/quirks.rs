//! Parsing quirks, merge semantics, validation messages, on small synthetic manifests.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wandb_manifest::{
    EnvSourceType, ManifestError, ServerManifest, Severity, VolumeSourceType, resolve_sizing,
};

fn docs(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

fn parse(yaml: &str) -> ServerManifest {
    ServerManifest::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn empty_keys_are_empty_values() {
    let m = parse(
        r#"
features:
generatedSecrets:
  - name: s
    length:
commonEnvvars:
  g:
applications:
  a:
    image: {repository: r}
    args:
    command:
    commonEnvs:
    env:
    containers:
      - name: c
        args:
        ports:
    sizing:
      small:
    jwtTokens:
      - name: t
        mountPath: /t
        source:
          kubernetesServiceAccount: {audience: x}
      - name: u
        mountPath: /u
        source:
          secretRef: {name: tok, key:}
migrations:
"#,
    );
    assert!(m.features.is_empty() && m.migrations.is_empty());
    assert_eq!(m.generated_secrets[0].length, 32);
    assert!(m.common_envvars["g"].is_empty());
    let a = &m.applications["a"];
    assert!(a.args.is_empty() && a.command.is_empty() && a.env.is_empty());
    // A null container `args:` inherits the app's, like an absent one.
    assert_eq!(a.containers[0].args, None);
    assert_eq!(a.sizing["small"], Default::default());
    let sa = a.jwt_tokens[0]
        .source
        .kubernetes_service_account
        .as_ref()
        .unwrap();
    assert_eq!(sa.expiration_seconds, 3607);
    assert_eq!(
        a.jwt_tokens[1].source.secret_ref.as_ref().unwrap().key,
        "token"
    );
}

#[test]
fn unknown_keys_are_ignored_at_every_level() {
    let m = parse(
        r#"
brandNewTopLevel: {x: 1}
kafka: {newKafkaKey: true, topics: [{name: t, topic: t, retention: 7d}]}
mysql: {default: {newInfraKey: 1, sizing: {small: {replicas: 2, pools: 3}}}}
applications:
  a:
    newAppKey: [1, 2]
    image: {repository: r, pullPolicy: Always}
    containers:
      - name: c
        securityContext: {runAsUser: 1}
        livenessProbe: {httpGet: {path: /h, newProbeKey: 1}, newTiming: 2}
    env:
      - {name: E, value: v, newEnvKey: 1, sources: [{type: mysql, newSourceKey: 1}]}
"#,
    );
    assert_eq!(m.mysql["default"].sizing["small"].replicas, Some(2));
    assert_eq!(
        m.applications["a"].env[0].sources[0].kind,
        EnvSourceType::Mysql
    );
}

#[test]
fn scalars_keep_their_text() {
    let m = parse(
        r#"
applications:
  a:
    image: {repository: r, tag: 0.79.0}
    args: [--port, 8080, true]
    env:
      - {name: N, value: 0}
      - {name: B, value: true}
      - {name: Y, value: on}
      - {name: Q, value: "007"}
    sizing:
      small:
        resources:
          requests: {cpu: 2, memory: 2Gi}
          limits: {cpu: 0.5, memory: 1e3}
"#,
    );
    let a = &m.applications["a"];
    assert_eq!(a.image.as_ref().unwrap().tag.as_deref(), Some("0.79.0"));
    assert_eq!(a.args, ["--port", "8080", "true"]);
    let values: Vec<_> = a.env.iter().map(|e| e.value.as_deref().unwrap()).collect();
    // YAML 1.2 booleans only: `on` stays a string.
    assert_eq!(values, ["0", "true", "on", "007"]);
    let r = a.sizing["small"].resources.as_ref().unwrap();
    assert_eq!(r.requests["cpu"], "2");
    assert_eq!(r.limits["cpu"], "0.5");
    assert_eq!(r.limits["memory"], "1000");
}

#[test]
fn source_is_an_alias_of_sources() {
    let m = parse(
        "commonEnvvars:\n  g:\n    - name: REACT_APP_HOST\n      source:\n        - {type: custom-resource, field: status.wandb.hostname}\n",
    );
    assert_eq!(m.common_envvars["g"][0].sources.len(), 1);
    // Both spellings on one var is ambiguous and refused.
    let both = "commonEnvvars:\n  g:\n    - name: X\n      source: [{type: mysql}]\n      sources: [{type: redis}]\n";
    assert!(ServerManifest::from_yaml(both).is_err());
}

#[test]
fn new_source_and_volume_types_parse_and_are_reported() {
    let m = parse(
        r#"
applications:
  a:
    image: {repository: r}
    env:
      - name: V
        sources: [{type: vault, name: x}]
        defaultValue: d
    volumeMounts:
      - {name: h, mountPath: /h, source: {type: hostPath, name: h}}
"#,
    );
    let a = &m.applications["a"];
    assert_eq!(
        a.env[0].sources[0].kind,
        EnvSourceType::Unknown("vault".into())
    );
    assert_eq!(
        a.volume_mounts[0].source.kind,
        VolumeSourceType::Unknown("hostPath".into())
    );
    let problems = m.validate();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(problems[0].path, "applications.a.env[0].sources[0].type");
    assert_eq!(problems[1].severity, Severity::Error);
    assert_eq!(
        problems[1].path,
        "applications.a.volumeMounts[0].source.type"
    );
    assert!(
        problems[1]
            .message
            .contains("\"hostPath\" is not supported")
    );
}

#[test]
fn validation_reports_every_problem_with_its_place() {
    let m = parse(
        r#"
generatedSecrets: [{name: s}, {name: s}]
applications:
  api:
    image: {repository: r}
    commonEnvs: [missing]
    env:
      - {name: K, sources: [{type: generatedSecret, name: nope}]}
      - {name: U, sources: [{type: service, name: web, port: admin}]}
    containers:
      - name: c
        ports: [{containerPort: 70000}]
        readinessProbe: {periodSeconds: 5}
    service: {ports: [{name: http, port: 8080}]}
    ingress: {paths: [/api], servicePort: grpc}
    files: [{name: f, mountPath: /f}]
    jwtTokens: [{name: t, mountPath: /t, source: {}}]
  web:
    service: {ports: [{name: http, port: 80}]}
migrations:
  m: {args: [x]}
"#,
    );
    let err = m.ensure_valid().unwrap_err();
    let ManifestError::Invalid(problems) = &err else {
        panic!("{err}")
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "generatedSecrets[1]",
            "applications.api.commonEnvs[0]",
            "applications.api.env[0].sources[0].name",
            "applications.api.env[1].sources[0].port",
            "applications.api.containers[0].ports[0].containerPort",
            "applications.api.containers[0].readinessProbe",
            "applications.api.ingress.servicePort",
            "applications.api.files[0]",
            "applications.api.jwtTokens[0].source",
            "applications.web.image",
            "migrations.m.image",
        ]
    );
    // `web` has neither containers nor an image, so its app-level image is required.
    let text = err.to_string();
    assert!(text.contains("error: applications.api.ingress.servicePort: \"grpc\" names no port of the app's service (ports: http/8080)"), "{text}");
    assert!(
        text.contains("group \"missing\" is not defined in commonEnvvars"),
        "{text}"
    );
}

#[test]
fn parse_errors_name_file_line_and_field() {
    let err = ServerManifest::from_documents(&docs(&[
        ("a.yaml", "applications:\n  x:\n    image: {repository: r}\n"),
        (
            "b.yaml",
            "applications:\n  x:\n    containers:\n      - name: c\n        ports:\n          - containerPort: abc\n",
        ),
    ]))
    .unwrap_err();
    let ManifestError::Parse {
        file, line, column, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (file.as_str(), *line, *column),
        ("b.yaml", Some(6), Some(28))
    );
    assert!(
        err.to_string()
            .contains("applications.x.containers[0].ports[0].containerPort"),
        "{err}"
    );

    let syntax = ServerManifest::from_yaml("applications: [\n").unwrap_err();
    assert!(
        matches!(syntax, ManifestError::Parse { line: Some(1), .. }),
        "{syntax}"
    );
    let list = ServerManifest::from_yaml("- a\n- b\n").unwrap_err();
    assert!(matches!(list, ManifestError::Parse { .. }), "{list}");
    assert!(matches!(
        ServerManifest::from_documents(&[]),
        Err(ManifestError::Empty)
    ));
    assert!(matches!(
        ServerManifest::from_yaml("# nothing\n"),
        Err(ManifestError::Empty)
    ));
}

#[test]
fn files_merge_deeply_in_name_order() {
    // Given out of order on purpose: `10-` sorts before `20-`.
    let m = ServerManifest::from_documents(&docs(&[
        (
            "20-override.yaml",
            r#"
features: {b: true}
generatedSecrets: [{name: only-this}]
applications:
  api:
    image: {tag: "2.0"}
    args: [second]
    sizing: {small: {resources: {requests: {cpu: "4"}}}}
    env:
"#,
        ),
        (
            "10-base.yaml",
            r#"
requiredOperatorVersion: ^2.0.0
features: {a: true, b: false}
generatedSecrets: [{name: s1}, {name: s2}]
applications:
  api:
    image: {repository: wandb/megabinary, tag: "1.0"}
    args: [first, list]
    env: [{name: E, value: v}]
    sizing: {small: {resources: {requests: {cpu: "1", memory: 1Gi}}}}
"#,
        ),
    ]))
    .unwrap();
    assert_eq!(m.required_operator_version.as_deref(), Some("^2.0.0"));
    assert_eq!(m.features.len(), 2);
    assert!(m.features["a"] && m.features["b"]);
    // Lists are replaced by the later file (generatedSecrets too, unlike the official merge).
    let names: Vec<_> = m
        .generated_secrets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["only-this"]);
    let api = &m.applications["api"];
    let image = api.image.as_ref().unwrap();
    assert_eq!(
        (image.repository.as_str(), image.tag.as_deref()),
        ("wandb/megabinary", Some("2.0"))
    );
    assert_eq!(api.args, ["second"]);
    // `env:` with no value in the later file does not erase the earlier list.
    assert_eq!(api.env.len(), 1);
    let r = api.sizing["small"].resources.as_ref().unwrap();
    assert_eq!(
        (r.requests["cpu"].as_str(), r.requests["memory"].as_str()),
        ("4", "1Gi")
    );
}

#[test]
fn multi_document_files_merge_in_order() {
    let m = parse(
        "applications:\n  a: {args: [one]}\n---\napplications:\n  a: {image: {repository: r}}\n",
    );
    let a = &m.applications["a"];
    assert_eq!(a.args, ["one"]);
    assert_eq!(a.image.as_ref().unwrap().repository, "r");
}

#[test]
fn app_env_replaces_common_entries_in_place() {
    let m = parse(
        r#"
commonEnvvars:
  kafka:
    - {name: TOPIC, value: common}
    - {name: ADDR, value: "$(URL)/$(TOPIC)"}
  more:
    - {name: ADDR, value: from-more}
    - {name: EXTRA, value: x}
applications:
  a:
    image: {repository: r}
    commonEnvs: [kafka, more]
    env:
      - {name: TOPIC, value: app}
      - {name: OWN, value: y}
"#,
    );
    let env = m.app_env("a").unwrap();
    let pairs: Vec<_> = env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_deref().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("TOPIC", "app"),
            ("ADDR", "from-more"),
            ("EXTRA", "x"),
            ("OWN", "y")
        ]
    );
    let unknown = parse("applications:\n  a: {commonEnvs: [nope]}\n");
    let err = unknown.app_env("a").unwrap_err();
    assert_eq!(
        err.to_string(),
        "applications.a: commonEnvs names group \"nope\", which is not defined in the manifest's commonEnvvars"
    );
}

#[test]
fn sizing_overlays_default_field_by_field() {
    let m = parse(
        r#"
applications:
  a:
    sizing:
      default:
        replicas: 1
        resources: {requests: {cpu: 100m, memory: 1Gi}, limits: {memory: 2Gi}}
        autoscaling: {horizontal: {minReplicas: 2, maxReplicas: 4, metrics: [{type: Resource}]}}
      small:
        resources: {requests: {cpu: "1"}}
        autoscaling: {horizontal: {maxReplicas: 1}}
      large:
        autoscaling: {horizontal: {enabled: false, maxReplicas: 9}}
"#,
    );
    let a = &m.applications["a"];
    let small = a.sizing_for("small", true);
    assert_eq!(small.replicas, Some(1));
    let r = small.resources.as_ref().unwrap();
    assert_eq!(
        (r.requests["cpu"].as_str(), r.requests["memory"].as_str()),
        ("1", "1Gi")
    );
    assert_eq!(r.limits["memory"], "2Gi");
    // max below min is raised to min; metrics survive the overlay.
    let hpa = small.hpa().unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), Some(2)));
    assert!(hpa.metrics.is_some());
    assert_eq!(a.sizing_for("large", true).hpa(), None);
    // A size with no entry gets `default`; an empty table gets nothing.
    assert_eq!(a.sizing_for("medium", true), a.sizing["default"]);
    assert_eq!(
        resolve_sizing(&Default::default(), "small", false),
        Default::default()
    );
    assert_eq!(
        a.sizing_for("medium", true).hpa().unwrap().max_replicas,
        Some(4)
    );
}

#[test]
fn service_ports_resolve_through_container_port_names() {
    let m = parse(
        r#"
applications:
  a:
    image: {repository: r}
    containers:
      - name: c
        ports: [{name: web, containerPort: 9000}]
    service:
      ports: [{name: http, port: 80, targetPort: 9000}, {port: 81}]
    ingress: {paths: [/], servicePort: web}
"#,
    );
    let a = &m.applications["a"];
    assert_eq!(a.ingress_port().unwrap().port, 80);
    assert_eq!(
        a.find_service_port(Some(&IntOrString::Int(81)))
            .unwrap()
            .port,
        81
    );
    assert_eq!(
        a.find_service_port(Some(&IntOrString::String(" 81 ".into())))
            .unwrap()
            .port,
        81
    );
    assert!(m.validate().is_empty());
}
