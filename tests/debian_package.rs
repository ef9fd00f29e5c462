//! The Debian package on this machine: `./dev package` builds it (cargo-deb,
//! lintian without errors or warnings), `dpkg -i` installs it, an upgrade to
//! a newer version keeps an edited configuration, and remove and purge leave
//! nothing behind.
//!
//! It installs system-wide, so it needs root, takes a lock file that every
//! checkout's run shares (runs wait for each other), refuses to start when
//! the package is already installed, and purges the package when it ends,
//! also when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use support::package::{
    INSTALL_LOCK, Lock, PACKAGE, PurgeOnDrop, architecture, assert_root, build, dpkg_status, sh,
    text,
};

/// The installed binary with a clean environment.
fn installed(args: &[&str]) -> Output {
    sh(Command::new("/usr/bin/metal-switchd")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(args))
}

const CONFFILE: &str = "/etc/metal-switchd/config.toml";
const UNIT: &str = "/usr/lib/systemd/system/metal-switchd.service";
const WANTS: &str = "/etc/systemd/system/sonic.target.wants/metal-switchd.service";
const MASK: &str = "/etc/systemd/system/metal-switchd.service";

#[test]
fn build_install_upgrade_remove_purge() {
    assert_root("the package test installs system-wide");
    let _lock = Lock::take(INSTALL_LOCK);
    let _purge = PurgeOnDrop::not_installed_yet();
    let dir = tempfile::tempdir().unwrap();
    let (deb1, lintian) = build(&dir.path().join("v1"), &[]);
    eprintln!("{lintian}");
    let name = deb1.file_name().unwrap().to_string_lossy().into_owned();
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    assert_eq!(name, format!("{PACKAGE}_{version}_{}.deb", architecture()));

    // what the package holds
    let listing = text(&sh(Command::new("dpkg-deb").arg("-c").arg(&deb1)));
    for path in [
        "./usr/bin/metal-switchd",
        "./usr/lib/systemd/system/metal-switchd.service",
        "./etc/metal-switchd/config.toml",
        "./usr/share/doc/metal-switchd/copyright",
        "./usr/share/doc/metal-switchd/changelog.Debian.gz",
        "./usr/share/doc/metal-switchd/README.md",
        "./usr/share/man/man1/metal-switchd.1.gz",
        "./usr/share/bash-completion/completions/metal-switchd",
        "./usr/share/zsh/vendor-completions/_metal-switchd",
        "./usr/share/fish/vendor_completions.d/metal-switchd.fish",
        "./usr/share/doc/metal-switchd/sbom.spdx.json",
        "./usr/share/doc/metal-switchd/monitoring/runbooks/MetalSwitchdDown.md",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in\n{listing}"
        );
    }
    // Crash points (src/crash.rs) exist only in the tests' build: the
    // packaged binary has neither the points nor their names.
    let x = dir.path().join("x");
    sh(Command::new("dpkg-deb").arg("-x").arg(&deb1).arg(&x));
    let packaged = std::fs::read(x.join("usr/bin/metal-switchd")).unwrap();
    for marker in support::process::CRASH_MARKERS {
        assert!(
            !support::process::contains(&packaged, marker),
            "the packaged metal-switchd contains {marker:?}: crash points must stay out of it"
        );
    }
    let conffiles = text(&sh(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb1)
        .arg("conffiles")));
    assert_eq!(conffiles, format!("{CONFFILE}\n"));

    // install: files in place, the unit enabled; not started (no systemd here)
    sh(Command::new("dpkg").arg("-i").arg(&deb1));
    assert_eq!(dpkg_status(), format!("install ok installed {version}"));
    let mode = std::fs::metadata("/usr/bin/metal-switchd")
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::read_to_string(UNIT).unwrap(),
        include_str!("../systemd/metal-switchd.service")
    );
    assert_eq!(
        std::fs::read_to_string(CONFFILE).unwrap(),
        include_str!("../debian/config.toml")
    );
    // (deb-systemd-helper links to /lib/systemd/system, the same directory
    // as /usr/lib/systemd/system on a merged-/usr system)
    assert_eq!(
        std::fs::canonicalize(WANTS).unwrap(),
        std::fs::canonicalize(UNIT).unwrap(),
        "enabled under sonic.target"
    );
    if !Path::new("/run/systemd/system").exists() {
        assert!(
            !Path::new("/run/metal-switchd").exists(),
            "started without systemd?"
        );
    }
    let v = text(&installed(&["--version"]));
    assert_eq!(
        v,
        format!(
            "metal-switchd {} ({})\n",
            env!("CARGO_PKG_VERSION"),
            metal_switchd::REVISION
        )
    );
    let checked = text(&installed(&["check-config"]));
    assert!(
        checked.starts_with("# configuration is valid\n"),
        "{checked}"
    );

    // an operator's edit survives an upgrade
    let mut edited = std::fs::read_to_string(CONFFILE).unwrap();
    edited.push_str("log_format = \"json\"\n");
    std::fs::write(CONFFILE, &edited).unwrap();
    let newer = format!("{}-2", env!("CARGO_PKG_VERSION"));
    let (deb2, _) = build(
        &dir.path().join("v2"),
        &["--no-build", "--deb-version", &newer],
    );
    sh(Command::new("dpkg").arg("-i").arg(&deb2));
    assert_eq!(dpkg_status(), format!("install ok installed {newer}"));
    assert_eq!(std::fs::read_to_string(CONFFILE).unwrap(), edited);
    let checked = text(&installed(&["check-config"]));
    assert!(checked.contains("log_format = \"json\""), "{checked}");
    assert!(std::fs::read_link(WANTS).is_ok(), "still enabled");

    // remove: program gone, configuration kept, unit masked until purge
    sh(Command::new("dpkg").args(["-r", PACKAGE]));
    assert!(
        dpkg_status().starts_with("deinstall ok config-files"),
        "{}",
        dpkg_status()
    );
    for gone in ["/usr/bin/metal-switchd", UNIT] {
        assert!(!Path::new(gone).exists(), "{gone} left after remove");
    }
    assert_eq!(std::fs::read_to_string(CONFFILE).unwrap(), edited);

    // purge: nothing left
    sh(Command::new("dpkg").args(["-P", PACKAGE]));
    let after = dpkg_status();
    assert!(
        after.is_empty() || after.contains("not-installed"),
        "{after}"
    );
    for gone in [
        "/etc/metal-switchd",
        WANTS,
        MASK,
        "/usr/share/doc/metal-switchd",
    ] {
        assert!(
            std::fs::symlink_metadata(gone).is_err(),
            "{gone} left after purge"
        );
    }
    let state = Path::new("/var/lib/systemd/deb-systemd-helper-enabled");
    if state.exists() {
        let left = Command::new("grep")
            .args(["-rl", "metal-switchd"])
            .arg(state)
            .output()
            .unwrap();
        assert!(left.stdout.is_empty(), "{}", text(&left));
    }
}

/// Every (sub)command of the CLI with its man page name and long options.
fn commands(cmd: &clap::Command, page: &str, out: &mut Vec<(String, Vec<String>, Vec<String>)>) {
    let longs = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .collect();
    out.push((page.to_owned(), longs, subs));
    for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        commands(s, &format!("{page}-{}", s.get_name()), out);
    }
}

/// The man pages and completions in the package are generated from the
/// command line (`metal-switchd-dist docs`, clap_mangen/clap_complete), so
/// they carry every command and option it has: checked against the CLI's
/// own definition, and against a fresh generation.
#[test]
fn man_pages_and_completions_follow_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (deb, _) = build(&dir.path().join("out"), &[]);
    let x = dir.path().join("x");
    sh(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x));
    let man1 = x.join("usr/share/man/man1");
    let mut all = Vec::new();
    let cli = metal_switchd::cli::Cli::command();
    commands(&cli, "metal-switchd", &mut all);
    assert!(all.len() >= 10, "{all:?}");
    let fresh = dir.path().join("fresh");
    sh(Command::new(env!("CARGO_BIN_EXE_metal-switchd-dist"))
        .arg("docs")
        .arg(&fresh));
    for (page, longs, subs) in &all {
        let gz = man1.join(format!("{page}.1.gz"));
        assert!(gz.is_file(), "{page}: no man page {}", gz.display());
        let roff = text(&sh(Command::new("zcat").arg(&gz)));
        assert_eq!(
            roff,
            std::fs::read_to_string(fresh.join(format!("man/{page}.1"))).unwrap(),
            "{page}: the packaged page is not what the CLI generates"
        );
        // man renders it without a warning (lintian's check, too)
        let rendered = Command::new("man")
            .args(["--warnings", "-P", "cat", "-l"])
            .arg(&gz)
            .env("MANWIDTH", "200")
            .output()
            .unwrap();
        let page_text = String::from_utf8_lossy(&rendered.stdout).into_owned();
        assert!(
            rendered.status.success() && rendered.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        for l in longs {
            assert!(
                page_text.contains(l.as_str()),
                "{page} does not document {l}:\n{page_text}"
            );
        }
        for s in subs {
            assert!(
                page_text.contains(&format!("{page}-{s}(1)")),
                "{page} does not list {s}:\n{page_text}"
            );
        }
    }
    let main = text(&sh(
        Command::new("zcat").arg(man1.join("metal-switchd.1.gz"))
    ));
    for section in ["EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"] {
        assert!(
            main.contains(&format!(".SH \"{section}\""))
                || main.contains(&format!(".SH {section}")),
            "{section}"
        );
    }
    let bash =
        std::fs::read_to_string(x.join("usr/share/bash-completion/completions/metal-switchd"))
            .unwrap();
    let zsh =
        std::fs::read_to_string(x.join("usr/share/zsh/vendor-completions/_metal-switchd")).unwrap();
    let fish =
        std::fs::read_to_string(x.join("usr/share/fish/vendor_completions.d/metal-switchd.fish"))
            .unwrap();
    for (shell, file, text) in [
        ("bash", "metal-switchd.bash", &bash),
        ("zsh", "_metal-switchd", &zsh),
        ("fish", "metal-switchd.fish", &fish),
    ] {
        assert_eq!(
            *text,
            std::fs::read_to_string(fresh.join("completions").join(file)).unwrap(),
            "{shell}"
        );
        for (_, longs, subs) in &all {
            for s in subs {
                assert!(text.contains(s.as_str()), "{shell} completion lacks {s}");
            }
            for l in longs {
                let name = l.trim_start_matches('-');
                assert!(text.contains(name), "{shell} completion lacks {l}");
            }
        }
    }
    // bash reads it: the completion function is defined.
    sh(Command::new("bash").arg("-c").arg(format!(
        "source {} && complete -p metal-switchd",
        x.join("usr/share/bash-completion/completions/metal-switchd")
            .display()
    )));
}
