//! The mini-lab with real SONiC: leaf01 runs SONiC's own daemons of one
//! release (syncd on the virtual SAI, orchagent, portsyncd, the config
//! managers, fpmsyncd) and the release's FRR, built by `./dev sonic build`;
//! leaf02 runs the stand-in. The agent runs unchanged on both
//! (`kernel_checks = true`). The whole scenario must converge with every
//! barrier met by the real daemons, machine01's tenant-VRF sessions must be
//! Established on both leaves, SONiC's daemons must log no error or warning
//! that is the agent's doing (`support::sonic_logs` lists the others, with why),
//! and after every step what
//! the real daemons confirmed (the entries the agent waits for) must match
//! what the stand-in confirmed, up to the known gaps
//! (`sonic_compare::KNOWN_GAPS`).
//!
//! Runs in the full-kernel VM (`./dev vm-test minilab_sonic`; `./dev test`
//! runs it for 202411, building first when the cache is cold); the
//! release comes from `DEV_SONIC_RELEASE` (default 202411).
//! Prints `SONIC-RESULT` lines that `./dev sonic matrix` collects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use metal_switchd_lab::minilab::topology::ApiVersion;
use metal_switchd_lab::minilab::{Lab, LabOptions, scenario};
use metal_switchd_lab::sonic_compare;
use metal_switchd_lab::sonic_real::{Release, SonicChoice};

#[test]
fn the_scenario_converges_on_real_sonic_and_the_standin_confirms_the_same() {
    metal_switchd_lab::frr_lab::require_full_kernel("minilab_sonic")
        .unwrap_or_else(|e| panic!("{e}"));
    let release =
        Release::parse(&std::env::var("DEV_SONIC_RELEASE").unwrap_or_else(|_| "202411".into()))
            .unwrap();
    let build =
        metal_switchd_lab::sonic_real::build_dir(release).unwrap_or_else(|e| panic!("{e:#}"));
    let mut o = LabOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_metal-switchd")));
    o.prefix = format!("s{:05x}-", std::process::id() & 0xf_ffff);
    o.api = ApiVersion::V2;
    o.sonic_leaves
        .insert("leaf01".into(), SonicChoice::Real(release));
    o.set_real_sonic_bounds();
    // The stand-in leaf stands in for the same community release.
    o.flavour = release.profile();
    o.progress = true;
    let started = Instant::now();
    let mut lab = Lab::up(o).unwrap_or_else(|e| panic!("the mini-lab did not come up: {e:#}"));
    let up = started.elapsed();
    eprintln!(
        "SONIC-RESULT release={release} up_seconds={:.1} established_seconds={:.1}",
        up.as_secs_f64(),
        lab.established_after.unwrap().as_secs_f64()
    );

    let sockets: Vec<_> = lab
        .leaves
        .iter()
        .map(|l| (l.leaf.name, l.redis.socket().to_owned(), l.leaf.loopback))
        .collect();
    let mut mismatches = Vec::new();
    let mut all_diffs = std::collections::BTreeSet::new();
    let result = scenario::run(&mut lab, |n, s| {
        eprint!("{}", scenario::render(n, s));
        eprintln!(
            "SONIC-RESULT release={release} step={n} seconds={:.1} title={:?}",
            s.converged_after.as_secs_f64(),
            s.title
        );
        let snap = |leaf: &str| {
            let (_, sock, lo) = sockets.iter().find(|(n, _, _)| *n == leaf).unwrap();
            sonic_compare::snapshot(sock, *lo)
        };
        // What real SONiC confirms beyond the agent's barriers (orchagent's
        // ASIC objects) may come later than the barriers: wait for it.
        let diffs = sonic_compare::agree(
            || snap("leaf01"),
            || snap("leaf02"),
            Duration::from_secs(120),
        )
        .unwrap();
        for d in &diffs {
            eprintln!("SONIC-STEP-DIFF release={release} step={n} {d}");
            all_diffs.insert(d.clone());
        }
        for d in sonic_compare::unexplained(&diffs) {
            mismatches.push(format!("after step {n} ({}): {d}", s.title));
        }
    });
    let leaf01 = lab.leaf("leaf01").unwrap();
    let real = leaf01.sonic.real().unwrap();
    let findings = real.findings();
    let logs = real.log_tails(30);
    let agent_log = leaf01.log();
    let result = result.unwrap_or_else(|e| {
        panic!("the scenario failed on SONiC {release}: {e:#}\nSONiC's logs:\n{logs}")
    });
    for d in &all_diffs {
        eprintln!("SONIC-DIFF release={release} {d}");
    }

    // BGP: leaf↔exit and machine01's tenant sessions, on both leaves.
    assert!(result.tenant_sessions);
    for (leaf, text) in &result.tenant_summaries {
        eprintln!("--- {leaf}: show bgp vrf Vrf30 summary\n{text}");
    }
    let tenant = result.tenant_problems(None);
    assert!(tenant.is_empty(), "{tenant:#?}");
    if let Ok(t) = lab
        .leaf("leaf01")
        .unwrap()
        .frr
        .vtysh(&["show bgp vrf all summary"])
    {
        eprintln!("SONIC-BGP release={release}\n{t}");
    }
    // Every barrier met by the real daemons: no reconcile waited in vain.
    assert!(
        !agent_log.contains("did not confirm"),
        "the agent on SONiC {release} hit a barrier timeout:\n{}",
        metal_switchd_lab::minilab::tail(&agent_log, 40)
    );
    // No error or warning of SONiC's daemons that is the agent's doing.
    let explained = support::sonic_logs::explained;
    let caused: Vec<&String> = findings.iter().filter(|f| explained(f).is_none()).collect();
    for f in &findings {
        let why = explained(f).unwrap_or("NOT EXPLAINED");
        eprintln!("SONIC-LOG release={release} {f} [{why}]");
    }
    assert!(
        caused.is_empty(),
        "SONiC {release}'s daemons logged errors or warnings that NOT_THE_AGENTS and THE_AGENTS_KEPT do not explain:\n{}",
        caused
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        mismatches.is_empty(),
        "the stand-in confirmed something else than SONiC {release}:\n{}",
        mismatches.join("\n")
    );
    let t = lab.teardown().unwrap();
    for (name, status, ok) in &t.agents {
        assert!(ok, "metal-switchd on {name} ended with {status}");
    }
    for (name, v) in &t.violations {
        assert!(v.is_empty(), "{name}: {v:?}");
    }
    eprintln!(
        "SONIC-RESULT release={release} scenario=pass total_seconds={:.1} build={}",
        started.elapsed().as_secs_f64(),
        build.display()
    );
}
