//! Crash points exist only in the tests' build (`src/crash.rs`): the release
//! binary and the Debian package have neither the points nor their names,
//! and the binary the tests run has them.
//!
//! Builds the release binary (`cargo build --release`, what `./dev package`
//! packages; shared with `tests/debian_package.rs`) and packages it with
//! cargo-deb (`./dev test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// Texts only a build with crash points contains.
const MARKERS: &[&str] = &[
    "METAL_SWITCHD_CRASH_AT",
    "METAL_SWITCHD_CRASH_TRACE",
    "configdb.phase.",
    "frr.backed-up",
    "reconcile.kernel-check",
    "crash point",
];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_tests_binary_has_crash_points() {
    let bin = std::fs::read(env!("CARGO_BIN_EXE_metal-switchd")).unwrap();
    for m in MARKERS {
        assert!(
            contains(&bin, m),
            "the tests' metal-switchd lacks {m:?}: is the dev-dependency with feature \
             crash-points gone from Cargo.toml?"
        );
    }
}

#[test]
fn the_release_binary_and_the_debian_package_have_no_crash_points() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "metal-switchd",
            "--bin",
            "metal-switchd",
        ])
        .current_dir(root));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let release = std::fs::read(target.join("release/metal-switchd")).unwrap();
    for m in MARKERS {
        assert!(
            !contains(&release, m),
            "the release binary contains {m:?}: crash points must stay out of it"
        );
    }

    // The package of that binary (what `./dev package` builds from it).
    let out = tempfile::tempdir().unwrap();
    let deb = run(Command::new(&cargo)
        .args([
            "deb",
            "--locked",
            "--no-build",
            "-p",
            "metal-switchd",
            "--output",
        ])
        .arg(out.path())
        .current_dir(root))
    .lines()
    .last()
    .unwrap_or_default()
    .trim()
    .to_owned();
    assert!(
        Path::new(&deb).is_file(),
        "cargo deb gave no package ({deb:?}); install it with `cargo install cargo-deb` (./dev test does)"
    );
    let x = out.path().join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x));
    let packaged = std::fs::read(x.join("usr/bin/metal-switchd")).unwrap();
    for m in MARKERS {
        assert!(
            !contains(&packaged, m),
            "the Debian package's binary contains {m:?}"
        );
    }
}
