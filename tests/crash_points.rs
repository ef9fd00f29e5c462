//! Crash points exist only in the tests' build (`src/crash.rs`): the binary
//! the tests run has them. That the Debian package's binary has neither the
//! points nor their names is checked by `tests/debian_package.rs` on the
//! package it builds anyway (one release build in CI, not two).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::process::{CRASH_MARKERS as MARKERS, contains};

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
