//! One binary for every SONiC's Debian: the packaged `metal-switchd` is
//! linked against glibc 2.31 at most (Debian 11 "bullseye": SONiC 202311 and
//! Dell Enterprise SONiC 4.x; Debian 12 "bookworm": SONiC 202411 and later),
//! the package's `Depends` says so, and the package installs and runs in a
//! Debian 11 and a Debian 12 root made by `debootstrap`: `--version`,
//! `check-config` and an offline `plan`, each inside the root with `chroot`.
//!
//! The roots are cached under /var/cache/metal-switchd/roots/ and made when
//! missing (Debian's registry; a few minutes once). Each run installs into a
//! throwaway overlay of the cached root, in a private mount namespace, so
//! the cache stays clean and nothing stays mounted when a run fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::package::{Lock, assert_root, build, manifest_dir, sh, text};

/// glibc of Debian 11, the oldest Debian a supported SONiC runs on.
const GLIBC_FLOOR: (u32, u32) = (2, 31);
/// The suites and the glibc each ships (Debian's `libc6` package).
const SUITES: [(&str, &str); 2] = [("bullseye", "2.31"), ("bookworm", "2.36")];
const ROOTS: &str = "/var/cache/metal-switchd/roots";
const ROOTS_LOCK: &str = "/run/lock/metal-switchd-roots.lock";
const MIRROR: &str = "http://deb.debian.org/debian";

/// `2.31` → (2, 31).
fn version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The newest `GLIBC_x.y` symbol version the binary needs (`objdump -T`).
fn newest_glibc_symbol(binary: &Path) -> ((u32, u32), String) {
    let dump = text(&sh(Command::new("objdump").arg("-T").arg(binary)));
    let mut newest = ((0, 0), String::new());
    for line in dump.lines() {
        for word in line.split_whitespace() {
            let word = word.trim_matches(|c| c == '(' || c == ')');
            if let Some(v) = word.strip_prefix("GLIBC_").and_then(version)
                && v > newest.0
            {
                newest = (v, line.trim().to_owned());
            }
        }
    }
    assert!(newest.0 > (0, 0), "no GLIBC_ symbol in objdump -T:\n{dump}");
    newest
}

/// A debootstrap root of `suite`, cached; made when missing.
fn cached_root(suite: &str) -> PathBuf {
    let _lock = Lock::take(ROOTS_LOCK);
    let root = Path::new(ROOTS).join(suite);
    if root.join(".complete").exists() {
        return root;
    }
    std::fs::create_dir_all(ROOTS).unwrap();
    let tmp = Path::new(ROOTS).join(format!("{suite}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&root);
    let mut debootstrap = support::process::tool("debootstrap", "debootstrap");
    eprintln!(
        "making the {suite} root in {} (debootstrap)",
        root.display()
    );
    sh(debootstrap
        .args(["--variant=minbase", suite])
        .arg(&tmp)
        .arg(MIRROR));
    std::fs::write(tmp.join(".complete"), "").unwrap();
    std::fs::rename(&tmp, &root).unwrap();
    root
}

/// The files of an offline `plan`: leaf01's CONFIG_DB snapshot with its
/// PORT table, the lab's agent configuration and leaf01's desired state
/// (the same inputs as tests/cli.rs, whose expectations come from the
/// reference).
fn plan_inputs(dir: &Path) {
    use metal_switchd_lab::fixtures;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config_db.json"),
        fixtures::leaf01_with_ports().unwrap(),
    )
    .unwrap();
    support::config::TestConfig::leaf01().write(&dir.join("agent.toml"));
    std::fs::copy(
        manifest_dir().join("lab/switches/leaf01.v1.json"),
        dir.join("leaf01.v1.json"),
    )
    .unwrap();
}

/// Install `deb` into an overlay of `root` and run the binary there; all in
/// a private mount namespace. Returns the script's output, one section per
/// command (`== NAME` lines).
fn install_and_run(root: &Path, deb: &Path, inputs: &Path, work: &Path) -> String {
    let script = format!(
        r#"set -eu
W={work}
mount -t tmpfs tmpfs "$W"
mkdir "$W/upper" "$W/work" "$W/root"
mount -t overlay overlay -o "lowerdir={root},upperdir=$W/upper,workdir=$W/work" "$W/root"
R="$W/root"
mount -t proc proc "$R/proc"
mkdir -p "$R/tmp/plan"
cp {deb} "$R/tmp/metal-switchd.deb"
cp {inputs}/* "$R/tmp/plan/"
echo "== dpkg"
chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg -i /tmp/metal-switchd.deb 2>&1
echo "== libc6"
chroot "$R" dpkg-query -W -f='${{Version}}\n' libc6
echo "== version"
chroot "$R" env -i /usr/bin/metal-switchd --version
echo "== check-config"
chroot "$R" env -i /usr/bin/metal-switchd --config /tmp/plan/agent.toml check-config
echo "== plan"
cd "$R/tmp/plan"
chroot "$R" env -i sh -c 'cd /tmp/plan && /usr/bin/metal-switchd --config agent.toml plan --switch leaf01.v1.json --configdb config_db.json'
echo "== end"
"#,
        work = work.display(),
        root = root.display(),
        deb = deb.display(),
        inputs = inputs.display(),
    );
    std::fs::create_dir_all(work).unwrap();
    text(&sh(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(script)))
}

/// The text of section `name` of [`install_and_run`]'s output.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = out
        .find(&format!("== {name}\n"))
        .unwrap_or_else(|| panic!("no section {name} in:\n{out}"));
    let rest = &out[start + name.len() + 4..];
    &rest[..rest.find("\n== ").map(|i| i + 1).unwrap_or(rest.len())]
}

#[test]
fn the_package_installs_and_runs_on_bullseye_and_bookworm() {
    assert_root("the package test installs into chroots");
    let dir = tempfile::tempdir().unwrap();
    let (deb, _) = build(&dir.path().join("out"), &[]);

    // The binary asks for nothing newer than the floor...
    let x = dir.path().join("x");
    sh(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x));
    let (newest, line) = newest_glibc_symbol(&x.join("usr/bin/metal-switchd"));
    eprintln!("newest glibc symbol version: {newest:?} ({line})");
    assert!(
        newest <= GLIBC_FLOOR,
        "the packaged binary needs glibc {newest:?} > {GLIBC_FLOOR:?}: {line}"
    );
    // ...and the package's Depends says what it needs, within the floor.
    let depends = text(&sh(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .arg("Depends")));
    eprintln!("Depends: {}", depends.trim());
    let libc = depends
        .split(',')
        .map(str::trim)
        .find(|d| d.starts_with("libc6 "))
        .unwrap_or_else(|| panic!("no libc6 in Depends: {depends}"));
    let wanted = libc
        .strip_prefix("libc6 (>= ")
        .and_then(|v| v.strip_suffix(')'))
        .and_then(version)
        .unwrap_or_else(|| panic!("unexpected libc6 dependency: {libc}"));
    assert!(
        wanted <= GLIBC_FLOOR && wanted >= newest,
        "Depends {libc} does not match the binary's newest symbol {newest:?} and the floor {GLIBC_FLOOR:?}"
    );

    let inputs = dir.path().join("plan");
    plan_inputs(&inputs);
    for (suite, glibc) in SUITES {
        let root = cached_root(suite);
        let out = install_and_run(&root, &deb, &inputs, &dir.path().join(format!("w-{suite}")));
        eprintln!("--- {suite}\n{out}");
        assert!(
            section(&out, "libc6").starts_with(glibc),
            "{suite} ships glibc {glibc}: {}",
            section(&out, "libc6")
        );
        assert!(
            section(&out, "dpkg").contains("Setting up metal-switchd"),
            "{suite}: {}",
            section(&out, "dpkg")
        );
        assert_eq!(
            section(&out, "version"),
            format!(
                "metal-switchd {} ({})\n",
                env!("CARGO_PKG_VERSION"),
                metal_switchd::REVISION
            ),
            "{suite}"
        );
        assert!(
            section(&out, "check-config").starts_with("# configuration is valid\n"),
            "{suite}: {}",
            section(&out, "check-config")
        );
        // tests/cli.rs: the same inputs plan to 254 changes in 3 phases
        assert!(
            section(&out, "plan").starts_with("254 change(s) in 3 phase(s), 254 redis command(s):"),
            "{suite}: {}",
            section(&out, "plan")
        );
    }
}
