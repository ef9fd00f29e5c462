//! metal-switchd-dist: what `./dev package` ships besides the binary
//! (feature `dist`; these generators are not part of the shipped binary).
//!
//! `metal-switchd-dist docs OUT_DIR` writes the man pages and shell
//! completions of `metal-switchd` from its command-line definition
//! (`cli::Cli`), so they cannot drift from it:
//! - `OUT_DIR/man/metal-switchd.1` (with the sections clap does not know:
//!   exit status, environment, files, see also) and one page per
//!   sub-command (`metal-switchd-plan.1`, `metal-switchd-render-frr.1`, …);
//! - `OUT_DIR/completions/metal-switchd.bash`, `_metal-switchd` (zsh) and
//!   `metal-switchd.fish`.
//!
//! `metal-switchd-dist sbom IN CRATES CARGO_LOCK OUT` puts cargo-sbom's
//! SPDX 2.3 document right where SPDX validators refuse it, keeps only the
//! crates listed in CRATES (`cargo tree --format '{p}'` lines) and the
//! shipped binary, and adds Cargo.lock's checksums: see `sbom`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use metal_switchd::cli::Cli;

const BIN: &str = "metal-switchd";

/// The sections of the main page that are not in the command's definition
/// (roff; what README.md and debian/README.md say).
const MAIN_EXTRA: &str = r#".SH "EXIT STATUS"
0 done; 1 runtime error (API, redis, SONiC, FRR); 2 invalid input
(configuration or desired state), nothing written.
.B status
exits 0 when the daemon runs and its status is current, 3 when it is not
running, 4 when its status is stale or unreadable.
.SH ENVIRONMENT
Every configuration key can be set as METAL_SWITCHD_\fIKEY\fR, metal-core's
settings also as METAL_CORE_\fIKEY\fR. Under systemd the unit reads
.I /etc/default/metal-core
and
.IR /etc/default/metal-switchd .
.SH FILES
.TP
.I /etc/metal-switchd/config.toml
The configuration (commented defaults).
.TP
.I /run/metal-switchd/status.json
The daemon's status (state_directory).
.TP
.I /etc/sonic/frr/frr.conf
The FRR configuration the agent installs (frr_config).
.TP
.I /usr/share/doc/metal-switchd/sbom.spdx.json
The software bill of materials of this package (SPDX 2.3).
.SH "SEE ALSO"
.BR systemctl (1),
.BR journalctl (1),
.I /usr/share/doc/metal-switchd/README.md
(install, upgrade from metal-core, operation, alerts),
.I /usr/share/doc/metal-switchd/configuration.md
(every key).
"#;

const USAGE: &str = "usage: metal-switchd-dist docs OUT_DIR | metal-switchd-dist sbom IN CRATES \
                     CARGO_LOCK OUT";

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
    let result = match args.as_slice() {
        [Some("docs"), Some(out)] => write_all(Path::new(out)).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
        }),
        [
            Some("sbom"),
            Some(input),
            Some(keep),
            Some(lock),
            Some(output),
        ] => sbom::fix_file(
            Path::new(input),
            Path::new(keep),
            Path::new(lock),
            Path::new(output),
        ),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metal-switchd-dist: {e}");
            ExitCode::from(1)
        }
    }
}

fn write_all(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man_dir = out.join("man");
    let completion_dir = out.join("completions");
    for d in [&man_dir, &completion_dir] {
        std::fs::create_dir_all(d)?;
    }
    // (The about line without the leading "metal-switchd:", which NAME
    // already says.)
    let mut cmd = Cli::command()
        .about("the metal-stack agent of a SONiC leaf switch")
        .disable_help_subcommand(true);
    cmd.build();
    let mut files = Vec::new();

    // The main page: clap's sections, then ours, then the version.
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(MAIN_EXTRA.as_bytes());
    man.render_version_section(&mut page)?;
    let main_page = man_dir.join(man.get_filename());
    std::fs::write(&main_page, page)?;
    files.push(main_page);
    // One page per sub-command, named by clap (`metal-switchd-render-frr`).
    sub_pages(&cmd, &man_dir, &mut files)?;

    for (shell, name) in [
        (Shell::Bash, format!("{BIN}.bash")),
        (Shell::Zsh, format!("_{BIN}")),
        (Shell::Fish, format!("{BIN}.fish")),
    ] {
        let path = completion_dir.join(name);
        let mut f = std::fs::File::create(&path)?;
        clap_complete::generate(shell, &mut cmd, BIN, &mut f);
        f.flush()?;
        files.push(path);
    }
    Ok(files)
}

fn sub_pages(cmd: &clap::Command, dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let path = clap_mangen::Man::new(sub.clone()).generate_to(dir)?;
        files.push(path);
        sub_pages(sub, dir, files)?;
    }
    Ok(())
}

/// cargo-sbom's SPDX 2.3 JSON for the shipped binary (cargo-sbom 0.10.0
/// describes the whole package for every platform, with what dev-only
/// features pull in):
/// - only the crates the binary is built from (the CRATES list, from
///   `cargo tree -e normal --target x86_64-unknown-linux-gnu`), and only the
///   `metal-switchd` binary among the described files;
/// - a crate's download location `registry+<index>` is no SPDX download
///   location: crates.io's download URL of that version instead;
/// - SPDX ids hold only letters, digits, `.` and `-`;
/// - each crates.io crate gets the SHA-256 of `Cargo.lock` (cargo-sbom
///   writes none).
mod sbom {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use serde_json::{Value, json};

    /// Where cargo-sbom says a crates.io crate comes from: the registry's
    /// index, which is not a download location.
    const CRATES_IO_INDEX: &str = "registry+https://github.com/rust-lang/crates.io-index";
    /// The binary the package ships (cargo-sbom's file of that target).
    const SHIPPED_FILE: &str = "SPDXRef-File-metal-switchd";

    fn err(msg: impl Into<String>) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
    }

    /// Read the inputs, fix the document, write `output`.
    pub fn fix_file(input: &Path, keep: &Path, lock: &Path, output: &Path) -> std::io::Result<()> {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(input)?)
            .map_err(|e| err(format!("{}: {e}", input.display())))?;
        let keep = parse_keep(&std::fs::read_to_string(keep)?);
        let checksums = parse_lock(&std::fs::read_to_string(lock)?)
            .map_err(|e| err(format!("{}: {e}", lock.display())))?;
        let dropped = fix(&mut doc, &keep, &checksums).map_err(err)?;
        eprintln!(
            "metal-switchd-dist sbom: {} packages; left out {} the binary is not built from",
            doc["packages"].as_array().map_or(0, Vec::len),
            dropped.len()
        );
        let text = serde_json::to_string_pretty(&doc).map_err(|e| err(e.to_string()))?;
        std::fs::write(output, format!("{text}\n"))
    }

    /// `name vX.Y.Z [(path)] [(*)]` lines → (name, version).
    pub fn parse_keep(text: &str) -> BTreeSet<(String, String)> {
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next()?;
                let version = w.next()?.strip_prefix('v')?;
                Some((name.to_owned(), version.to_owned()))
            })
            .collect()
    }

    /// Cargo.lock's checksums: (name, version) → SHA-256.
    pub fn parse_lock(text: &str) -> Result<BTreeMap<(String, String), String>, String> {
        let lock: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let packages = lock
            .get("package")
            .and_then(|p| p.as_array())
            .ok_or("no [[package]]")?;
        Ok(packages
            .iter()
            .filter_map(|p| {
                Some((
                    (
                        p.get("name")?.as_str()?.to_owned(),
                        p.get("version")?.as_str()?.to_owned(),
                    ),
                    p.get("checksum")?.as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    /// An SPDX id (`SPDXRef-` then letters, digits, `.`, `-`).
    fn valid_id(id: &str) -> String {
        id.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }

    /// Fix `doc` in place; returns the packages left out.
    pub fn fix(
        doc: &mut Value,
        keep: &BTreeSet<(String, String)>,
        checksums: &BTreeMap<(String, String), String>,
    ) -> Result<Vec<String>, String> {
        let mut dropped_ids = BTreeSet::new();
        // 1. Only the shipped binary among the files.
        if let Some(files) = doc.get_mut("files").and_then(Value::as_array_mut) {
            files.retain(|f| {
                let id = f["SPDXID"].as_str().unwrap_or("");
                if id == SHIPPED_FILE {
                    true
                } else {
                    dropped_ids.insert(id.to_owned());
                    false
                }
            });
            if files.is_empty() {
                return Err(format!("the SBOM has no file {SHIPPED_FILE}"));
            }
        }
        // 2. Only the crates the binary is built from.
        let packages = doc
            .get_mut("packages")
            .and_then(Value::as_array_mut)
            .ok_or("no packages in the SBOM")?;
        let mut dropped = Vec::new();
        let mut found = BTreeSet::new();
        packages.retain(|p| {
            let key = (
                p["name"].as_str().unwrap_or("").to_owned(),
                p["versionInfo"].as_str().unwrap_or("").to_owned(),
            );
            if keep.contains(&key) {
                found.insert(key);
                true
            } else {
                dropped_ids.insert(p["SPDXID"].as_str().unwrap_or("").to_owned());
                dropped.push(format!("{} {}", key.0, key.1));
                false
            }
        });
        let missing: Vec<String> = keep
            .difference(&found)
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        if !missing.is_empty() {
            return Err(format!("the SBOM lacks {}", missing.join(", ")));
        }
        // 3. Download locations, checksums, ids.
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        let mut taken = BTreeSet::new();
        for p in packages.iter_mut() {
            let name = p["name"].as_str().unwrap_or("").to_owned();
            let version = p["versionInfo"].as_str().unwrap_or("").to_owned();
            match p["downloadLocation"].as_str() {
                Some(CRATES_IO_INDEX) => {
                    p["downloadLocation"] = Value::String(format!(
                        "https://crates.io/api/v1/crates/{name}/{version}/download"
                    ));
                    let sum = checksums
                        .get(&(name.clone(), version.clone()))
                        .ok_or_else(|| format!("{name} {version} has no checksum in Cargo.lock"))?;
                    p["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sum}]);
                }
                Some(l) if l.starts_with("registry+") || l.starts_with("git+") => {
                    return Err(format!(
                        "{name} {version} does not come from crates.io: {l}"
                    ));
                }
                _ => {}
            }
            if let Some(id) = p["SPDXID"].as_str().map(str::to_owned) {
                let mut new = valid_id(&id);
                let base = new.clone();
                let mut n = 1;
                while !taken.insert(new.clone()) {
                    n += 1;
                    new = format!("{base}-{n}");
                }
                p["SPDXID"] = Value::String(new.clone());
                ids.insert(id, new);
            }
        }
        // 4. Relationships: none to what was left out, ids renamed.
        let rename = |v: &mut Value| {
            if let Some(new) = v.as_str().and_then(|s| ids.get(s)) {
                *v = Value::String(new.clone());
            }
        };
        if let Some(rels) = doc.get_mut("relationships").and_then(Value::as_array_mut) {
            rels.retain(|r| {
                !dropped_ids.contains(r["spdxElementId"].as_str().unwrap_or(""))
                    && !dropped_ids.contains(r["relatedSpdxElement"].as_str().unwrap_or(""))
            });
            for r in rels.iter_mut() {
                if let Some(o) = r.as_object_mut() {
                    for key in ["spdxElementId", "relatedSpdxElement"] {
                        if let Some(v) = o.get_mut(key) {
                            rename(v);
                        }
                    }
                }
            }
        }
        Ok(dropped)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn what_the_validator_refused_is_put_right() {
            let mut doc = json!({
                "spdxVersion": "SPDX-2.3",
                "files": [
                    {"SPDXID": "SPDXRef-File-metal_switchd"},
                    {"SPDXID": "SPDXRef-File-metal-switchd"},
                    {"SPDXID": "SPDXRef-File-metal-switchd-dist"}
                ],
                "packages": [
                    {"SPDXID": "SPDXRef-Package-a_b-1.0.0", "name": "a_b", "versionInfo": "1.0.0",
                     "downloadLocation": CRATES_IO_INDEX},
                    {"SPDXID": "SPDXRef-Package-top-0.1.0", "name": "top", "versionInfo": "0.1.0",
                     "downloadLocation": "NONE"},
                    {"SPDXID": "SPDXRef-Package-winapi-0.3.9", "name": "winapi", "versionInfo": "0.3.9",
                     "downloadLocation": CRATES_IO_INDEX}
                ],
                "relationships": [
                    {"spdxElementId": "SPDXRef-Package-top-0.1.0", "relationshipType": "DEPENDS_ON",
                     "relatedSpdxElement": "SPDXRef-Package-a_b-1.0.0"},
                    {"spdxElementId": "SPDXRef-Package-top-0.1.0", "relationshipType": "DEPENDS_ON",
                     "relatedSpdxElement": "SPDXRef-Package-winapi-0.3.9"},
                    {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                     "relatedSpdxElement": "SPDXRef-File-metal_switchd"}
                ]
            });
            let keep = parse_keep("a_b v1.0.0\ntop v0.1.0 (/src)\na_b v1.0.0 (*)\n");
            let sums = [(("a_b".to_owned(), "1.0.0".to_owned()), "ab12".to_owned())].into();
            let dropped = fix(&mut doc, &keep, &sums).unwrap();
            assert_eq!(dropped, ["winapi 0.3.9"]);
            let p = &doc["packages"][0];
            assert_eq!(p["SPDXID"], "SPDXRef-Package-a-b-1.0.0");
            assert_eq!(
                p["downloadLocation"],
                "https://crates.io/api/v1/crates/a_b/1.0.0/download"
            );
            assert_eq!(p["checksums"][0]["checksumValue"], "ab12");
            assert_eq!(doc["packages"][1]["downloadLocation"], "NONE");
            assert_eq!(doc["files"].as_array().unwrap().len(), 1);
            assert_eq!(
                doc["relationships"],
                json!([{"spdxElementId": "SPDXRef-Package-top-0.1.0",
                        "relationshipType": "DEPENDS_ON",
                        "relatedSpdxElement": "SPDXRef-Package-a-b-1.0.0"}])
            );
            // a crate the SBOM lacks, or one from elsewhere, is an error
            let mut lacking = json!({"packages": []});
            assert!(
                fix(&mut lacking, &keep, &sums)
                    .unwrap_err()
                    .contains("lacks a_b 1.0.0")
            );
            let mut git = json!({"packages": [{"SPDXID": "x", "name": "a_b", "versionInfo": "1.0.0",
                                               "downloadLocation": "git+https://example.org/a"}]});
            let one = parse_keep("a_b v1.0.0\n");
            assert!(
                fix(&mut git, &one, &sums)
                    .unwrap_err()
                    .contains("crates.io")
            );
        }
    }
}
