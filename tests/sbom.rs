//! The package's SBOM (issue "Release artifacts carry an SPDX SBOM"):
//! `./dev package` writes it next to the package and into it; an
//! independent validator (`pyspdxtools` from spdx-tools 0.8.5, installed by
//! `./dev test`) accepts it as SPDX 2.3; its packages are exactly the crates
//! `cargo tree -e normal --target x86_64-unknown-linux-gnu` reports for the
//! shipped binary, with `Cargo.lock`'s versions and checksums, each with a
//! licence, a real download location and a relationship to the top package.
//!
//! `./dev package` cuts cargo-sbom's document down with that same `cargo
//! tree` list, so the comparison with it checks the cut, not the list. Two
//! bounds that do not come from `cargo tree` check the list: every crate
//! whose code is in the shipped binary (the source paths the compiler
//! recorded in it) is listed, and every listed crate is reachable from
//! metal-switchd over normal dependencies in `cargo metadata`'s resolve for
//! the target (no dev-dependency, no lab, no other platform's crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::package::{build, manifest_dir, sh, text};

/// `(name, version)` of every crate `cargo tree` says the binary is built from.
fn cargo_tree() -> BTreeSet<(String, String)> {
    let out = text(&sh(Command::new("cargo")
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--target",
            support::package::TARGET,
            "-p",
            "metal-switchd",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(manifest_dir())));
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap().to_owned();
            let version = w.next().unwrap().trim_start_matches('v').to_owned();
            (name, version)
        })
        .collect()
}

/// `(name, version)` → checksum (None for path packages) from Cargo.lock.
fn cargo_lock() -> BTreeMap<(String, String), Option<String>> {
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(manifest_dir().join("Cargo.lock")).unwrap())
            .unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["version"].as_str().unwrap().to_owned(),
                ),
                p.get("checksum")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned),
            )
        })
        .collect()
}

/// `(name, version)` of the crates whose code the linker kept in `binary`:
/// its line tables and panic locations name each source file as
/// `…/index.crates.io-<hash>/<name>-<version>/src/…`. Each such directory
/// is matched against Cargo.lock's packages (names and versions may both
/// hold `-`); one that matches none is an error.
fn linked_crates(
    binary: &Path,
    lock: &BTreeMap<(String, String), Option<String>>,
) -> BTreeSet<(String, String)> {
    const MARK: &[u8] = b"index.crates.io-";
    let bytes = std::fs::read(binary)
        .unwrap_or_else(|e| panic!("{}: {e} (./dev package builds it)", binary.display()));
    let by_dir: BTreeMap<String, (String, String)> = lock
        .keys()
        .map(|(n, v)| (format!("{n}-{v}"), (n.clone(), v.clone())))
        .collect();
    let part = |b: u8| b.is_ascii_alphanumeric() || b"_.+-".contains(&b);
    let mut linked = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(MARK.len()).position(|w| w == MARK) {
        let start = i + at + MARK.len();
        i = start;
        // the registry's hash, `/`, the crate's directory
        let hash = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let dir_start = start + hash + 1;
        if bytes.get(start + hash) != Some(&b'/') {
            continue;
        }
        let len = bytes[dir_start..].iter().take_while(|b| part(**b)).count();
        let dir = String::from_utf8_lossy(&bytes[dir_start..dir_start + len]).into_owned();
        match by_dir.get(&dir) {
            Some(key) => {
                linked.insert(key.clone());
            }
            None => {
                unknown.insert(dir);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "{} holds code of crates that are not in Cargo.lock: {unknown:?}",
        binary.display()
    );
    linked
}

/// `(name, version)` of every package reachable from metal-switchd over
/// normal dependencies (not dev, not build) in `cargo metadata`'s resolve
/// for x86_64-unknown-linux-gnu.
fn resolved_for_target() -> BTreeSet<(String, String)> {
    let meta = support::package::cargo_metadata();
    let packages: BTreeMap<&str, (String, String)> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap(),
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["version"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let top = packages
        .iter()
        .find(|(_, (n, _))| n == "metal-switchd")
        .map(|(id, _)| *id)
        .unwrap();
    let mut seen = BTreeSet::from([top]);
    let mut todo = vec![top];
    while let Some(id) = todo.pop() {
        for d in nodes[id]["deps"].as_array().unwrap() {
            let normal = d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let pkg = d["pkg"].as_str().unwrap();
            if normal && seen.insert(pkg) {
                todo.push(pkg);
            }
        }
    }
    seen.into_iter().map(|id| packages[id].clone()).collect()
}

/// The `.text` section of an ELF file (`objcopy`): the code, the same
/// before and after stripping.
fn text_section(elf: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!(
        "{}.text",
        elf.file_name().unwrap().to_string_lossy()
    ));
    sh(Command::new("objcopy")
        .args(["-O", "binary", "--only-section=.text"])
        .arg(elf)
        .arg(&out));
    std::fs::read(out).unwrap()
}

#[test]
fn the_sbom_is_valid_spdx_and_lists_exactly_what_the_binary_is_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let (deb, _) = build(&dir.path().join("out"), &[]);
    let beside = deb.with_extension("spdx.json");
    assert_eq!(
        beside.file_name().unwrap().to_string_lossy(),
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".deb", ".spdx.json")
    );
    let x = dir.path().join("x");
    sh(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x));
    let inside = std::fs::read(x.join("usr/share/doc/metal-switchd/sbom.spdx.json")).unwrap();
    assert_eq!(
        std::fs::read(&beside).unwrap(),
        inside,
        "the SBOM next to the package differs from the one inside it"
    );

    // The independent validator.
    let validator = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&beside)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "pyspdxtools cannot run ({e}): ./dev test installs spdx-tools into \
                 /var/cache/metal-switchd/py and puts it on PATH"
            )
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&validator.stdout),
        String::from_utf8_lossy(&validator.stderr)
    );
    eprintln!("pyspdxtools -i {}:\n{said}", beside.display());
    assert!(validator.status.success(), "{said}");
    assert!(!said.to_lowercase().contains("invalid"), "{said}");

    let doc: Value = serde_json::from_slice(&inside).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert!(doc["creationInfo"]["created"].as_str().is_some());
    let creators: Vec<&str> = doc["creationInfo"]["creators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        creators.iter().any(|c| c.starts_with("Tool: cargo-sbom")),
        "{creators:?}"
    );

    let packages = doc["packages"].as_array().unwrap();
    let listed: BTreeSet<(String, String)> = packages
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["versionInfo"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed.len(), packages.len(), "a package is listed twice");
    let tree = cargo_tree();
    let missing: Vec<_> = tree.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&tree).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the SBOM lacks {missing:?} and lists {extra:?} that the binary is not built from"
    );
    eprintln!("the SBOM lists {} packages", packages.len());

    // Independent of cargo tree: what the linker kept is listed...
    let lock = cargo_lock();
    let unstripped = manifest_dir().join("target/x86_64-unknown-linux-gnu/release/metal-switchd");
    assert_eq!(
        text_section(&unstripped, dir.path()),
        text_section(&x.join("usr/bin/metal-switchd"), dir.path()),
        "{} is not the build of the packaged binary",
        unstripped.display()
    );
    let linked = linked_crates(&unstripped, &lock);
    for sure in ["tokio", "redis", "zbus", "rustls"] {
        assert!(
            linked.iter().any(|(n, _)| n == sure),
            "no code of {sure} found in {}: the source paths are not where this test reads \
             them ({linked:?})",
            unstripped.display()
        );
    }
    let unlisted: Vec<_> = linked.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "the binary holds code of {unlisted:?}, which the SBOM does not list"
    );
    // ...and nothing is listed that metal-switchd does not depend on.
    let resolved = resolved_for_target();
    let foreign: Vec<_> = listed.difference(&resolved).collect();
    assert!(
        foreign.is_empty(),
        "the SBOM lists {foreign:?}, which metal-switchd does not depend on for \
         x86_64-unknown-linux-gnu (cargo metadata)"
    );
    eprintln!(
        "{} of them have code in the binary; the other {} are proc macros and crates \
         whose code was all inlined or compiled away",
        linked.len(),
        listed.len() - linked.len()
    );

    let mut ids = BTreeSet::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let version = p["versionInfo"].as_str().unwrap();
        let key = (name.to_owned(), version.to_owned());
        let checksum = lock
            .get(&key)
            .unwrap_or_else(|| panic!("{name} {version} is not in Cargo.lock"));
        ids.insert(p["SPDXID"].as_str().unwrap().to_owned());
        let declared = p["licenseDeclared"].as_str().unwrap_or("");
        assert!(
            !declared.is_empty() && declared != "NOASSERTION" && declared != "NONE",
            "{name}: no licence"
        );
        match checksum {
            Some(sum) => {
                assert_eq!(
                    p["downloadLocation"],
                    format!("https://crates.io/api/v1/crates/{name}/{version}/download"),
                    "{name}"
                );
                let sha = p["checksums"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["algorithm"] == "SHA256")
                    .unwrap_or_else(|| panic!("{name}: no SHA256 checksum"));
                assert_eq!(sha["checksumValue"].as_str(), Some(sum.as_str()), "{name}");
            }
            None => assert_eq!(
                name, "metal-switchd",
                "only the agent itself is not from crates.io"
            ),
        }
    }
    // Every package is related to the top package: the document describes
    // metal-switchd, and each crate is reachable through DEPENDS_ON (or
    // DEPENDENCY_OF) relationships from it.
    let top = packages
        .iter()
        .find(|p| p["name"] == "metal-switchd")
        .unwrap()["SPDXID"]
        .as_str()
        .unwrap()
        .to_owned();
    let relationships = doc["relationships"].as_array().unwrap();
    let rel = |a: &str, kind: &str, b: &str| {
        relationships.iter().any(|r| {
            r["spdxElementId"] == a && r["relationshipType"] == kind && r["relatedSpdxElement"] == b
        })
    };
    // The document describes the shipped binary (a file generated from the
    // top package) or the top package itself.
    let files: Vec<String> = doc["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["SPDXID"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        rel("SPDXRef-DOCUMENT", "DESCRIBES", &top)
            || files
                .iter()
                .any(|f| rel("SPDXRef-DOCUMENT", "DESCRIBES", f) && rel(f, "GENERATED_FROM", &top)),
        "the document does not describe {top} or a file generated from it: {relationships:?}"
    );
    ids.extend(files.iter().cloned());
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in relationships {
        let (a, b) = (
            r["spdxElementId"].as_str().unwrap(),
            r["relatedSpdxElement"].as_str().unwrap(),
        );
        match r["relationshipType"].as_str().unwrap() {
            "DEPENDS_ON" => edges.entry(a).or_default().push(b),
            "DEPENDENCY_OF" => edges.entry(b).or_default().push(a),
            _ => {}
        }
        for id in [a, b] {
            assert!(
                id == "SPDXRef-DOCUMENT" || ids.contains(id),
                "relationship to an unknown element {id}"
            );
        }
    }
    let mut seen = BTreeSet::from([top.as_str()]);
    let mut todo = vec![top.as_str()];
    while let Some(n) = todo.pop() {
        for m in edges.get(n).into_iter().flatten() {
            if seen.insert(m) {
                todo.push(m);
            }
        }
    }
    let unrelated: Vec<_> = ids
        .iter()
        .filter(|i| !seen.contains(i.as_str()) && !files.contains(i))
        .collect();
    assert!(unrelated.is_empty(), "not related to {top}: {unrelated:?}");
}
