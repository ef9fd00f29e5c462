//! debian/config.toml, the commented default configuration the package
//! installs: its "# key = value" lines are the real defaults, its examples
//! are valid, every key is mentioned, and `check-config` accepts it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use metal_switchd::config::Config;

const FILE: &str = include_str!("../debian/config.toml");
const DOCS: &str = include_str!("../docs/configuration.md");

/// The file with the lines `# <prefix>key = value` uncommented.
fn uncomment(prefixes: &[&str]) -> String {
    let mut out = String::new();
    for line in FILE.lines() {
        let setting = prefixes.iter().find_map(|p| {
            let rest = line.strip_prefix("# ")?.strip_prefix(p)?;
            let (key, _) = rest.split_once(" = ")?;
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then_some(rest)
        });
        if let Some(s) = setting {
            out.push_str(s);
            out.push('\n');
        }
    }
    out
}

fn documented_keys() -> Vec<&'static str> {
    DOCS.lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(k, _)| k))
        .collect()
}

#[test]
fn commented_defaults_are_the_defaults() {
    let defaults = uncomment(&[""]);
    assert!(defaults.lines().count() > 40, "{defaults}");
    let cfg = Config::from_sources(Some(("config.toml", &defaults)), vec![])
        .unwrap_or_else(|e| panic!("{e}\n{defaults}"));
    let builtin = Config::from_sources(None, vec![]).unwrap();
    assert_eq!(cfg.to_toml(), builtin.to_toml());
}

#[test]
fn examples_are_valid_settings() {
    // a key with a default and an example: the example (the later line) wins
    let mut lines = std::collections::BTreeMap::new();
    for line in uncomment(&["e.g. ", ""]).lines() {
        lines.insert(
            line.split(" = ").next().unwrap().to_owned(),
            line.to_owned(),
        );
    }
    let text: String = lines.values().map(|l| format!("{l}\n")).collect();
    let cfg = Config::from_sources(Some(("config.toml", &text)), vec![])
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(cfg.partition_id.as_deref(), Some("fra-equ01"));
    assert_eq!(cfg.spine_uplinks, ["Ethernet120", "Ethernet124"]);
}

#[test]
fn every_key_is_mentioned() {
    let keys = documented_keys();
    assert!(keys.len() > 60, "{keys:?}");
    let missing: Vec<&&str> = keys
        .iter()
        .filter(|k| {
            !FILE.contains(&format!("# {k} = "))
                && !FILE.contains(&format!("# e.g. {k} = "))
                && !FILE
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == **k)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "debian/config.toml does not mention {missing:?}"
    );
}

#[test]
fn check_config_accepts_the_file_as_shipped() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/config.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_clear()
        .args(["--config"])
        .arg(&file)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# configuration is valid\n"));
}
