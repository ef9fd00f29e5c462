//! Build script: the source revision for `--version` and the build-info metric.
//!
//! `METAL_SWITCHD_REVISION` (set at build time) wins; otherwise the short
//! commit id from `git rev-parse` when building inside a git checkout of this
//! project; otherwise `unknown` (a build from an unpacked source archive).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=METAL_SWITCHD_REVISION");
    let revision = match std::env::var("METAL_SWITCHD_REVISION") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_owned(),
        _ => from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    // Not under the METAL_SWITCHD_ prefix: cargo also sets this variable when it
    // runs tests, and the agent reads METAL_SWITCHD_* as configuration keys.
    println!("cargo:rustc-env=SWITCHD_SOURCE_REVISION={revision}");
}

fn from_git() -> Option<String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    // Only a checkout of this project counts, not a parent directory's repository.
    let top = git(&["-C", &manifest_dir, "rev-parse", "--show-toplevel"])?;
    if PathBuf::from(&top).canonicalize().ok()?
        != PathBuf::from(&manifest_dir).canonicalize().ok()?
    {
        return None;
    }
    let commit = git(&["-C", &manifest_dir, "rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD moves (a commit, a checkout, a branch update).
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watch.extend(git(&["-C", &manifest_dir, "symbolic-ref", "-q", "HEAD"]));
    for file in watch {
        if let Some(p) = git(&["-C", &manifest_dir, "rev-parse", "--git-path", &file]) {
            let p = PathBuf::from(&manifest_dir).join(p);
            // A missing file would make cargo run this script on every build.
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    Some(commit)
}
