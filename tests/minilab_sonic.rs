//! The mini-lab with real SONiC: leaf01 runs SONiC's own daemons of one
//! release (syncd on the virtual SAI, orchagent, portsyncd, the config
//! managers, fpmsyncd) and the release's FRR, built by `./dev sonic build`;
//! leaf02 runs the stand-in. The agent runs unchanged on both
//! (`kernel_checks = true`). The whole scenario must converge with every
//! barrier met by the real daemons, machine01's tenant-VRF sessions must be
//! Established on both leaves, SONiC's daemons must log no error or warning
//! beyond the ones they log without the agent, and after every step what
//! the real daemons confirmed (the entries the agent waits for) must match
//! what the stand-in confirmed, up to the known gaps
//! (`sonic_compare::KNOWN_GAPS`).
//!
//! Runs in the full-kernel VM (`./dev vm-test minilab_sonic`; `./dev test`
//! runs it for 202411, building first when the cache is cold); the
//! release comes from `METAL_SWITCHD_SONIC_RELEASE` (default 202411).
//! Prints `SONIC-RESULT` lines that `./dev sonic matrix` collects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use metal_switchd_lab::minilab::topology::ApiVersion;
use metal_switchd_lab::minilab::{Lab, LabOptions, scenario};
use metal_switchd_lab::sonic_compare;
use metal_switchd_lab::sonic_real::{Release, SonicChoice};

/// Error and warning lines SONiC's daemons log without the agent (seen
/// when they start on the seeded mini-lab configuration and nothing else
/// happens); matched as substrings. Each says why it is not the agent's.
const BASELINE: &[(&str, &str)] = &[];

#[test]
fn the_scenario_converges_on_real_sonic_and_the_standin_confirms_the_same() {
    metal_switchd_lab::frr_lab::require_full_kernel("minilab_sonic")
        .unwrap_or_else(|e| panic!("{e}"));
    let release = Release::parse(
        &std::env::var("METAL_SWITCHD_SONIC_RELEASE").unwrap_or_else(|_| "202411".into()),
    )
    .unwrap();
    let build =
        metal_switchd_lab::sonic_real::build_dir(release).unwrap_or_else(|e| panic!("{e:#}"));
    let mut o = LabOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_metal-switchd")));
    o.prefix = format!("s{:05x}-", std::process::id() & 0xf_ffff);
    o.api = ApiVersion::V2;
    o.timeout = Duration::from_secs(300);
    o.interval = Duration::from_secs(2);
    o.only_wired_ports = true;
    o.agent_timeout = Duration::from_secs(180);
    o.barrier_timeout = Duration::from_secs(150);
    o.sonic_leaves
        .insert("leaf01".into(), SonicChoice::Real(release));
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
            sonic_compare::snapshot(sock, *lo).unwrap()
        };
        let diffs = sonic_compare::differences(&snap("leaf01"), &snap("leaf02"));
        for d in &diffs {
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
        assert!(text.contains("Ethernet0"), "{leaf}: {text}");
    }
    for v in &result.steps[0].views {
        let s = v.sessions.as_ref().unwrap();
        assert!(
            s.iter()
                .any(|x| x.vrf == "Vrf30" && x.neighbor == "Ethernet0" && x.state == "Established"),
            "{}: {s:?}",
            v.name
        );
    }
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
    // No error or warning of SONiC's daemons beyond their baseline.
    let caused: Vec<&String> = findings
        .iter()
        .filter(|f| !BASELINE.iter().any(|(p, _)| f.contains(p)))
        .collect();
    for f in &findings {
        eprintln!("SONIC-LOG release={release} {f}");
    }
    assert!(
        caused.is_empty(),
        "SONiC {release}'s daemons logged errors or warnings beyond their baseline:\n{}",
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
