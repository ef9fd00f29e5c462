//! The containerlab topology (`lab/containerlab/mini-lab.sonic.yaml`): valid
//! against containerlab's JSON schema (`lab/containerlab/schema/`, copied
//! from srl-labs/containerlab), with the nodes and links of metal-stack's
//! mini-lab, every link endpoint a node, and every bind path present (or
//! made by `prepare.sh`). containerlab itself cannot run here (no Docker).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("containerlab")
}

fn topology() -> Value {
    let text = std::fs::read_to_string(dir().join("mini-lab.sonic.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// Files the topology binds that `prepare.sh` makes (not in the repository).
const PREPARED: [&str; 2] = ["files/ssh/id_ed25519.pub", "files/metal-switchd.deb"];

#[test]
fn the_topology_is_valid_against_containerlabs_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("schema/clab.schema.json")).unwrap(),
    )
    .unwrap();
    let id = schema["$id"].as_str().unwrap().to_owned();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&id, schema).unwrap();
    let mut schemas = boon::Schemas::new();
    let index = compiler.compile(&id, &mut schemas).unwrap();
    let topo = topology();
    if let Err(e) = schemas.validate(&topo, index) {
        panic!("mini-lab.sonic.yaml does not match containerlab's schema: {e:#}");
    }
    // The check can fail: a misspelt key is refused.
    let mut bad = topo.clone();
    bad["topology"]["nodes"]["exit"]["binds"] = Value::String("not-a-list".into());
    assert!(schemas.validate(&bad, index).is_err());
}

#[test]
fn nodes_links_and_binds_are_mini_labs_and_exist() {
    let topo = topology();
    let nodes: BTreeSet<String> = topo["topology"]["nodes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for n in ["exit", "leaf01", "leaf02", "machine01", "machine02"] {
        assert!(nodes.contains(n), "node {n} missing: {nodes:?}");
    }
    // mini-lab's links (metal-stack/mini-lab, mini-lab.sonic.yaml).
    let want: BTreeSet<(String, String)> = [
        ("exit:mini_lab_ext", "mini_lab_ext:exit"),
        (
            "external_service:mini_lab_ext",
            "mini_lab_ext:external_service",
        ),
        ("leaf01:Ethernet0", "machine01:lan0"),
        ("leaf02:Ethernet0", "machine01:lan1"),
        ("leaf01:Ethernet1", "machine02:lan0"),
        ("leaf02:Ethernet1", "machine02:lan1"),
        ("leaf01:Ethernet120", "exit:eth1"),
        ("leaf02:Ethernet120", "exit:eth2"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    let mut got = BTreeSet::new();
    for l in topo["topology"]["links"].as_array().unwrap() {
        let e: Vec<&str> = l["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(e.len(), 2, "{l}");
        for end in &e {
            let (node, iface) = end.split_once(':').unwrap();
            assert!(nodes.contains(node), "link endpoint {end}: no node {node}");
            assert!(!iface.is_empty(), "link endpoint {end} has no interface");
        }
        got.insert((e[0].to_owned(), e[1].to_owned()));
    }
    assert_eq!(got, want);

    let prepare = std::fs::read_to_string(dir().join("prepare.sh")).unwrap();
    let ignore = std::fs::read_to_string(dir().join(".gitignore")).unwrap();
    let mut binds = 0;
    for (name, node) in topo["topology"]["nodes"].as_object().unwrap() {
        for b in node["binds"].as_array().into_iter().flatten() {
            binds += 1;
            let src = b.as_str().unwrap().split(':').next().unwrap();
            if PREPARED.contains(&src) {
                let file = Path::new(src).file_name().unwrap().to_str().unwrap();
                let stem = file.trim_end_matches(".pub");
                assert!(prepare.contains(stem), "prepare.sh does not make {src}");
                assert!(
                    ignore
                        .lines()
                        .any(|l| src.starts_with(l.trim_end_matches('/')) && !l.starts_with('#')),
                    "{src} is not ignored by git"
                );
                continue;
            }
            assert!(
                dir().join(src).is_file(),
                "{name}: bind source {src} does not exist in lab/containerlab/"
            );
        }
    }
    assert!(binds >= 8, "{binds} binds");
    // The exit router's files are mini-lab's.
    let frr = std::fs::read_to_string(dir().join("files/exit/frr.conf")).unwrap();
    assert!(frr.contains("neighbor eth1 interface peer-group FABRIC"));
}
