//! `rust-version` in Cargo.toml is true: no crate in Cargo.lock that is
//! built for the shipped target (x86_64-unknown-linux-gnu) needs a newer
//! Rust (their own `rust-version`, as `cargo metadata` reports it), and
//! `./dev test` checks the shipped crate with exactly that toolchain
//! (`cargo +MSRV check`), which also covers language features the code uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

#[test]
fn rust_version_covers_every_dependency_and_is_the_one_ci_checks() {
    let declared = env!("CARGO_PKG_RUST_VERSION");
    let meta = support::package::cargo_metadata();
    let mut needs: Vec<(Vec<u32>, String)> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let rv = p["rust_version"].as_str()?;
            Some((
                version(rv),
                format!("{} {} (rust-version {rv})", p["name"], p["version"]),
            ))
        })
        .collect();
    needs.sort();
    let (newest, who) = needs.last().unwrap();
    assert!(
        version(declared) >= *newest,
        "Cargo.toml says rust-version = {declared}, but {who} needs more"
    );
    // ./dev test builds with the declared toolchain.
    let dev = std::fs::read_to_string(support::package::manifest_dir().join("dev")).unwrap();
    let msrv = dev
        .lines()
        .find_map(|l| l.strip_prefix("MSRV=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("MSRV= in ./dev");
    assert!(
        msrv == declared || msrv.strip_suffix(".0") == Some(declared),
        "./dev checks with {msrv}, Cargo.toml says {declared}"
    );
}
