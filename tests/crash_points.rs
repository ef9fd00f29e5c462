//! Crash points exist only in the tests' build (`src/crash.rs`): the binary
//! the tests run has them. That the Debian package's binary has neither the
//! points nor their names is checked by `tests/debian_package.rs` on the
//! package it builds anyway (one release build in CI, not two).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Texts only a build with crash points contains (also in
/// `tests/debian_package.rs`).
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
