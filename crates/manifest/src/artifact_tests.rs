use std::io::Write;

use super::*;

fn tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn layer(blob: Vec<u8>, title: Option<&str>) -> (Descriptor, Vec<u8>) {
    let mut annotations = BTreeMap::new();
    if let Some(t) = title {
        annotations.insert(TITLE_ANNOTATION.to_string(), t.to_string());
    }
    let d = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: sha256_digest(&blob),
        size: blob.len() as i64,
        annotations,
    };
    (d, blob)
}

fn names(docs: &[(String, String)]) -> Vec<&str> {
    docs.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn tar_layers_give_their_yaml_files_and_skip_the_rest() {
    let blob = tar(&[
        ("./b.yaml", "b: 1\n"),
        ("README.md", "# no"),
        ("dir/a.yml", "a: 1\n"),
        ("dir/._a.yml", "junk"),
    ]);
    let docs = layer_documents(&[layer(blob, None)]).unwrap();
    assert_eq!(names(&docs), ["b.yaml", "dir/a.yml"]);
    assert_eq!(docs[0].1, "b: 1\n");
}

#[test]
fn gzip_tar_and_raw_yaml_layers_merge_in_sorted_path_order() {
    let layers = [
        layer(gzip(&tar(&[("z.yaml", "z: 1\n")])), None),
        layer(b"m: 1\n".to_vec(), Some("m.yaml")),
        layer(gzip(b"g: 1\n"), Some("g.yaml.gz")),
        layer(tar(&[("a.yaml", "a: 1\n")]), Some("bundle.tar")),
    ];
    let docs = layer_documents(&layers).unwrap();
    assert_eq!(names(&docs), ["a.yaml", "g.yaml", "m.yaml", "z.yaml"]);
    assert_eq!(docs[1].1, "g: 1\n");
}

#[test]
fn a_file_repeated_in_a_later_layer_comes_after_the_earlier_one() {
    let layers = [
        layer(b"v: 1\n".to_vec(), Some("x.yaml")),
        layer(b"v: 2\n".to_vec(), Some("x.yaml")),
    ];
    let docs = layer_documents(&layers).unwrap();
    assert_eq!(docs[1].1, "v: 2\n", "the later layer wins the merge");
}

#[test]
fn non_yaml_layers_are_ignored_and_no_yaml_is_an_error() {
    let layers = [
        layer(b"{}".to_vec(), Some("config.json")),
        layer(b"just bytes".to_vec(), None),
        layer(tar(&[("notes.txt", "x")]), None),
    ];
    let err = layer_documents(&layers).unwrap_err();
    assert!(err.contains("no *.yaml"), "{err}");
    assert!(err.contains("3 layer(s)"), "{err}");
}

#[test]
fn an_image_manifest_lists_its_layers_and_an_index_gives_its_first_manifest() {
    let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44","size":2},
        "layers":[{"mediaType":"application/yaml","digest":"sha256:aa","size":3,
                   "annotations":{"org.opencontainers.image.title":"m.yaml"}}]}"#;
    let Artifact::Image(layers) = parse_manifest(image).unwrap() else {
        panic!("an image manifest")
    };
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].annotations[TITLE_ANNOTATION], "m.yaml");

    let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
        "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:11","size":1},
                     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:22","size":1}]}"#;
    let Artifact::Index(first) = parse_manifest(index).unwrap() else {
        panic!("an index")
    };
    assert_eq!(first.digest, "sha256:11");

    let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests":[{"digest":"sha256:33","size":1}]}"#;
    assert!(matches!(parse_manifest(list).unwrap(), Artifact::Index(d) if d.digest == "sha256:33"));

    let empty = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    assert!(parse_manifest(empty).unwrap_err().contains("no manifests"));
    assert!(parse_manifest(b"<html>").is_err());
}

#[test]
fn digests_are_verified() {
    let digest = sha256_digest(b"hello");
    assert_eq!(
        digest,
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    verify_digest(&digest, b"hello").unwrap();
    let err = verify_digest(&digest, b"hellO").unwrap_err();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(verify_digest("md5:abc", b"x").is_err());
    assert!(verify_digest("nocolon", b"x").is_err());
}
