//! Issue 22, item 2: frr.conf is installed in a directory FRR's user can
//! write. Whatever that user does to the directory's entries while the
//! agent (root) installs, no other file is read into `.bak`, chmod'ed or
//! chown'ed (src/frr/install.rs, `crate::files::Dir`).
//!
//! - A link planted as `frr.conf` (to a root-only file) is refused; the
//!   file it points to is neither copied into `.bak` nor changed.
//! - An attacker that replaces every new temporary file with a symbolic
//!   link to a root-only file the moment it appears (inotify) changes
//!   nothing of that file: owner and mode are set on the descriptor, and a
//!   replaced temporary file is not installed.
//!
//! Prerequisite: root (files are given to a stand-in for FRR's user).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metal_switchd::frr::install::{InstallError, Installed, Installer};
use metal_switchd::frr::reload::Reloader;
use metal_switchd::frr::validate::Validator;
use notify::{EventKind, RecursiveMode, Watcher};

/// A stand-in for FRR's user (owner of the installed file).
const FRR_UID: u32 = 4242;
const SECRET: &str = "root:$6$secret-hash:19000:0:99999:7:::\n";

fn require_root() {
    assert_eq!(
        nix_uid(),
        0,
        "these tests give files to another user: run them as root (./dev test does)"
    );
}

fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn installer(dest: PathBuf) -> Installer {
    Installer {
        dest,
        // Every configuration is valid: the test is about files, not FRR.
        validator: Validator::Vtysh {
            vtysh: "/bin/true".into(),
            timeout: Duration::from_secs(30),
        },
        reloader: Reloader::None,
    }
}

/// A root-only file outside the FRR directory.
fn victim(dir: &Path) -> PathBuf {
    let v = dir.join("shadow");
    std::fs::write(&v, SECRET).unwrap();
    std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&v, Some(0), Some(0)).unwrap();
    v
}

fn assert_untouched(v: &Path) {
    let m = std::fs::symlink_metadata(v).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (0, 0, 0o600),
        "the root-only file {} was given away or its mode changed",
        v.display()
    );
    assert_eq!(std::fs::read_to_string(v).unwrap(), SECRET);
}

/// `frr.conf` is a symbolic link to a root-only file: the install is
/// refused, the file is not copied into `.bak` (where FRR's user could read
/// it through a later swap) and keeps its owner and mode.
#[tokio::test]
async fn an_installed_file_that_is_a_link_is_refused_and_never_read() {
    require_root();
    let outside = tempfile::tempdir().unwrap();
    let v = victim(outside.path());
    let frr = tempfile::tempdir().unwrap();
    let dest = frr.path().join("frr.conf");
    std::os::unix::fs::symlink(&v, &dest).unwrap();

    let r = installer(dest.clone())
        .install("frr version 10.0\n!\nend\n")
        .await;
    let e = match r {
        Err(e) => e,
        Ok(i) => panic!("installed over a symbolic link: {i:?}"),
    };
    assert!(matches!(e, InstallError::Previous(_)), "{e}");
    assert!(e.to_string().contains("a symbolic link"), "{e}");
    let bak = frr.path().join("frr.conf.bak");
    assert!(
        !bak.exists(),
        "backup written: {:?}",
        std::fs::read_to_string(&bak)
    );
    assert_untouched(&v);
    assert!(
        std::fs::symlink_metadata(&dest)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let left: Vec<_> = std::fs::read_dir(frr.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["frr.conf"], "{left:?}");
}

/// FRR's user replaces each temporary file of an install, as soon as it
/// appears, with a symbolic link to a root-only file. Before the fix, the
/// agent then chmod'ed and chown'ed that file by path (to FRR's user and
/// the installed file's mode 0644). Now nothing but the directory's entries
/// change, and a replaced temporary file is not installed.
#[tokio::test]
async fn a_temporary_file_swapped_for_a_link_changes_no_other_file() {
    require_root();
    let outside = tempfile::tempdir().unwrap();
    let v = victim(outside.path());
    let frr = tempfile::tempdir().unwrap();
    let dest = frr.path().join("frr.conf");
    let reset_dest = || {
        let _ = std::fs::remove_file(&dest);
        std::fs::write(&dest, "frr version 10.0\n!\n").unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&dest, Some(FRR_UID), Some(FRR_UID)).unwrap();
    };
    reset_dest();

    let swaps = Arc::new(AtomicU64::new(0));
    let dir = frr.path().to_owned();
    let target = v.clone();
    let counter = swaps.clone();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        if !matches!(ev.kind, EventKind::Create(_)) {
            return;
        }
        for p in ev.paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !(name.starts_with("frr.conf.") && name.ends_with(".new")) {
                continue;
            }
            // Replace the entry atomically with a link to the root-only file.
            let link = dir.join(format!(".attack.{name}"));
            if std::os::unix::fs::symlink(&target, &link).is_ok()
                && std::fs::rename(&link, &p).is_ok()
            {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
    .unwrap();
    watcher
        .watch(frr.path(), RecursiveMode::NonRecursive)
        .unwrap();

    // A large configuration keeps the window between creating a temporary
    // file and setting its mode open long enough for the watcher.
    let filler: String = (0..200_000).map(|i| format!("! line {i}\n")).collect();
    let inst = installer(dest.clone());
    for round in 0..20 {
        let text = format!("frr version 10.0\n! round {round}\n{filler}end\n");
        match inst.install(&text).await {
            // The attacker lost the race this time.
            Ok(Installed::Replaced { .. }) | Ok(Installed::Unchanged) => {}
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("was replaced by something else")
                        || msg.contains("a symbolic link"),
                    "round {round}: {msg}"
                );
            }
        }
        assert_untouched(&v);
        if std::fs::symlink_metadata(&dest)
            .map(|m| !m.file_type().is_file() || m.uid() != FRR_UID)
            .unwrap_or(true)
        {
            reset_dest();
        }
        if swaps.load(Ordering::SeqCst) >= 5 {
            break;
        }
    }
    drop(watcher);
    assert!(
        swaps.load(Ordering::SeqCst) >= 1,
        "the attacker never managed to swap a temporary file; the test proves nothing"
    );
    assert_untouched(&v);
}
