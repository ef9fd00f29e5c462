//! The containerlab scripts (`lab/containerlab/`) against metal-stack's
//! mini-lab as published (`lab/containerlab/mini-lab/`: its topology and
//! SSH configurations, unchanged): the topology is valid against
//! containerlab's JSON schema and has the leaves the scripts target, the
//! scripts reach the leaves through mini-lab's own `files/ssh/config` (as
//! root, as `ssh -G` evaluates it), copy the package into the SONiC VM (not
//! into the launcher container), write nothing into the mini-lab checkout,
//! and switch over with `metal-switchd migrate` after carrying metal-core's
//! environment. containerlab, Docker and the SONiC VMs cannot run here:
//! `deploy.sh` runs against stand-in SSH targets (`ssh`/`scp` on PATH that
//! record what they are asked and check it with the real `ssh -G`), and
//! `install-metal-switchd.sh` with stand-ins of `docker`, `dpkg` and
//! `metal-switchd`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("containerlab")
}

fn minilab_topology() -> Value {
    let text = std::fs::read_to_string(dir().join("mini-lab/mini-lab.sonic.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// The nodes of the topology that run SONiC (mini-lab's `MINI_LAB_SONIC_IMAGE`).
fn leaves(topo: &Value) -> Vec<String> {
    topo["topology"]["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n["image"].as_str() == Some("${MINI_LAB_SONIC_IMAGE}"))
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn mini_labs_topology_is_valid_and_has_the_leaves_the_scripts_target() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("schema/clab.schema.json")).unwrap(),
    )
    .unwrap();
    let id = schema["$id"].as_str().unwrap().to_owned();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&id, schema).unwrap();
    let mut schemas = boon::Schemas::new();
    let index = compiler.compile(&id, &mut schemas).unwrap();
    let topo = minilab_topology();
    if let Err(e) = schemas.validate(&topo, index) {
        panic!("mini-lab.sonic.yaml does not match containerlab's schema: {e:#}");
    }
    let mut bad = topo.clone();
    bad["topology"]["nodes"]["exit"]["binds"] = Value::String("not-a-list".into());
    assert!(schemas.validate(&bad, index).is_err());

    let leaves = leaves(&topo);
    assert_eq!(leaves, ["leaf01", "leaf02"]);
    let deploy = std::fs::read_to_string(dir().join("deploy.sh")).unwrap();
    assert!(
        deploy.contains(&format!("set -- {}", leaves.join(" "))),
        "deploy.sh's default leaves are not mini-lab's {leaves:?}"
    );
    // The SSH key: mini-lab binds its own public key into each leaf; the
    // scripts never make or replace one.
    for leaf in &leaves {
        let binds: Vec<&str> = topo["topology"]["nodes"][leaf]["binds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap())
            .collect();
        assert!(
            binds.contains(&"files/ssh/id_ed25519.pub:/authorized_keys"),
            "{binds:?}"
        );
    }
    for script in ["deploy.sh", "prepare.sh", "install-metal-switchd.sh"] {
        let text = std::fs::read_to_string(dir().join(script)).unwrap();
        for wrong in ["ssh-keygen", "admin@", "cp -r", "id_ed25519"] {
            assert!(!text.contains(wrong), "{script} contains {wrong:?}");
        }
    }
}

/// A mini-lab checkout as `make up` leaves it (the files the scripts may
/// touch), with mini-lab's SSH configuration `config`.
fn fake_minilab(root: &Path, config: &str) -> PathBuf {
    let m = root.join("mini-lab");
    std::fs::create_dir_all(m.join("files/ssh")).unwrap();
    std::fs::copy(
        dir().join("mini-lab").join(config),
        m.join("files/ssh/config"),
    )
    .unwrap();
    std::fs::write(m.join("files/ssh/id_rsa"), "mini-lab's key\n").unwrap();
    std::fs::write(
        m.join("files/ssh/id_ed25519.pub"),
        "ssh-ed25519 AAAA mini-lab\n",
    )
    .unwrap();
    std::fs::copy(
        dir().join("mini-lab/mini-lab.sonic.yaml"),
        m.join("mini-lab.sonic.yaml"),
    )
    .unwrap();
    std::fs::write(m.join("README.md"), "mini-lab\n").unwrap();
    m
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Stand-in `ssh` and `scp`: each call is logged (working directory and
/// arguments); `-G` is answered by the real ssh; a `-F` file must exist
/// relative to the working directory and give the target a user.
fn ssh_standins(bin: &Path, log: &Path) {
    let real_ssh = "/usr/bin/ssh";
    assert!(
        Path::new(real_ssh).exists(),
        "ssh is missing: apt-get install -y openssh-client"
    );
    for tool in ["ssh", "scp"] {
        write_exe(
            &bin.join(tool),
            &format!(
                r#"#!/bin/sh
if [ "$1" = "-G" ]; then exec {real_ssh} "$@"; fi
echo "{tool} cwd=$(pwd) $*" >> {log}
if [ "$1" = "-F" ] && [ ! -f "$2" ]; then echo "{tool}: no config $2" >&2; exit 255; fi
exit 0
"#,
                log = log.display()
            ),
        );
    }
}

#[test]
fn deploy_reaches_the_leaves_as_mini_lab_does_and_leaves_the_checkout_alone() {
    for (config, leaf02_user) in [("ssh-config.leaf-glob", "root"), ("ssh-config", "metal")] {
        let tmp = tempfile::tempdir().unwrap();
        let minilab = fake_minilab(tmp.path(), config);
        let before = snapshot(&minilab);
        // our side: a copy of lab/containerlab with a package in place
        let ours = tmp.path().join("containerlab");
        std::fs::create_dir_all(ours.join("files")).unwrap();
        for f in ["deploy.sh", "install-metal-switchd.sh"] {
            std::fs::copy(dir().join(f), ours.join(f)).unwrap();
        }
        std::fs::write(ours.join("files/metal-switchd.deb"), "a package\n").unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = tmp.path().join("calls.log");
        ssh_standins(&bin, &log);

        let out = Command::new(ours.join("deploy.sh"))
            .arg(&minilab)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{config}: deploy.sh: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = std::fs::read_to_string(&log).unwrap();
        let cwd = format!("cwd={}", minilab.display());
        let deb = ours.join("files/metal-switchd.deb");
        let script = ours.join("install-metal-switchd.sh");
        let want = [
            format!(
                "scp {cwd} -F files/ssh/config {} {} leaf01:/tmp/",
                deb.display(),
                script.display()
            ),
            format!(
                "ssh {cwd} -F files/ssh/config leaf01 sh /tmp/install-metal-switchd.sh /tmp/metal-switchd.deb"
            ),
            format!(
                "scp {cwd} -F files/ssh/config {} {} leaf02:/tmp/",
                deb.display(),
                script.display()
            ),
            format!(
                "ssh {cwd} -F files/ssh/config leaf02 {}sh /tmp/install-metal-switchd.sh /tmp/metal-switchd.deb",
                if leaf02_user == "root" { "" } else { "sudo " }
            ),
        ];
        assert_eq!(calls.lines().collect::<Vec<_>>(), want, "{config}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("== leaf01 (as root)"), "{config}: {said}");
        assert!(
            said.contains(&format!("== leaf02 (as {leaf02_user})")),
            "{config}: {said}"
        );
        assert_eq!(
            snapshot(&minilab),
            before,
            "{config}: deploy.sh changed the mini-lab checkout"
        );
    }
}

#[test]
fn the_leaf_script_carries_metal_cores_environment_then_migrates() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = tmp.path().join("calls.log");
    // metal-core's container as metal-roles runs it: `docker inspect
    // metal-core.service` lists its environment.
    write_exe(
        &bin.join("docker"),
        &format!(
            "#!/bin/sh\necho \"docker $*\" >> {log}\n\
             printf 'PATH=/usr/bin\\nMETAL_CORE_ASN=4200000011\\nMETAL_CORE_HMAC_KEY=k\\nTZ=UTC\\n'\n",
            log = log.display()
        ),
    );
    for tool in ["dpkg", "metal-switchd"] {
        write_exe(
            &bin.join(tool),
            &format!("#!/bin/sh\necho \"{tool} $*\" >> {}\n", log.display()),
        );
    }
    let env_file = tmp.path().join("metal-core");
    let run = || {
        let out = Command::new("sh")
            .arg(dir().join("install-metal-switchd.sh"))
            .arg("/tmp/metal-switchd.deb")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("METAL_CORE_ENV_FILE", &env_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run();
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "METAL_CORE_ASN=4200000011\nMETAL_CORE_HMAC_KEY=k\n"
    );
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "it holds the HMAC key");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "docker inspect metal-core.service --format {{range .Config.Env}}{{println .}}{{end}}\n\
         dpkg -i /tmp/metal-switchd.deb\nmetal-switchd migrate\n"
    );
    // A second run keeps the carried environment (an operator may have
    // edited it) and does not ask docker again.
    std::fs::write(&env_file, "METAL_CORE_ASN=1\n").unwrap();
    std::fs::remove_file(&log).unwrap();
    run();
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "METAL_CORE_ASN=1\n"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "dpkg -i /tmp/metal-switchd.deb\nmetal-switchd migrate\n"
    );
}
