//! Issue 20: the mini-lab scenario once per SONiC flavour the stand-in
//! knows (`tests/minilab.rs` runs the default, Dell Enterprise SONiC 4.5).
//!
//! Each leaf presents the flavour (its base configuration, its
//! sonic_version.yml, its `docker_routing_config_mode`) and runs real FRR
//! whose zebra loads the flavour's fpm module (`-M fpm`, or `dplane_fpm_nl`
//! for SONiC's `dplane_fpm_sonic`), so a zebra line the flavour's FRR does
//! not know makes the real reload fail. The agents detect the flavour; the
//! scenario's six steps must converge with BGP established and no
//! violation — the stand-in's bgp side counts a missing fpm line on
//! ≥ 202411 and a rejected one elsewhere as one. Then leaf01's bgp container
//! restarts: in `split` mode its start script deletes frr.conf and the agent
//! must put it back; in `split-unified` it appends nothing to the agent's
//! file (the file already has the start script's lines).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use metal_switchd_lab::flavours::{self, Profile};
use metal_switchd_lab::minilab::topology::ApiVersion;
use metal_switchd_lab::minilab::{Lab, LabOptions, process, scenario};

fn options(p: Profile) -> LabOptions {
    let mut o = LabOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_metal-switchd")));
    let index = Profile::ALL.iter().position(|x| *x == p).unwrap();
    // At most 8 characters: "f" + 4 hex digits of the pid + the flavour + "-".
    o.prefix = format!("f{:04x}{index}-", std::process::id() & 0xffff);
    o.api = ApiVersion::V2;
    o.flavour = p;
    // Generous: only catches hangs (the machine is shared).
    o.timeout = Duration::from_secs(120);
    o
}

fn scenario_on(p: Profile) {
    let opts = options(p);
    for r in metal_switchd_lab::minilab::clean_dead_labs(&opts.agent).unwrap() {
        eprintln!("removed a dead lab's leftovers: {r}");
    }
    let started = Instant::now();
    let mut lab =
        Lab::up(opts).unwrap_or_else(|e| panic!("{p}: the mini-lab did not come up: {e:#}"));
    let result = scenario::run(&mut lab, |n, s| eprint!("{}", scenario::render(n, s)))
        .unwrap_or_else(|e| panic!("{p}: the scenario failed: {e:#}"));
    assert_eq!(result.steps.len(), 6);
    let problems = result.step_problems();
    assert!(problems.is_empty(), "{p}:\n{}", problems.join("\n"));
    // The installed frr.conf carries exactly the flavour's zebra lines.
    let want = p.flavour().frr_lines().lines();
    for leaf in &lab.leaves {
        let text = std::fs::read_to_string(leaf.frr.config_file()).unwrap();
        for l in [
            "no zebra nexthop kernel enable",
            "fpm address 127.0.0.1",
            "no fpm use-next-hop-groups",
        ] {
            assert_eq!(
                text.lines().any(|x| x == l),
                want.contains(&l),
                "{p}: {}: {l:?} in frr.conf:\n{text}",
                leaf.leaf.name
            );
        }
        assert!(flavours::frr_findings(p, Some(&text)).is_empty(), "{p}");
    }
    // leaf01's bgp container restarts.
    let leaf = &lab.leaves[0];
    let file = leaf.frr.config_file();
    let before = std::fs::read_to_string(&file).unwrap();
    let did = leaf.standin.restart_bgp().unwrap();
    eprintln!("{p}: bgp restart: {did}");
    process::wait_for(
        "frr.conf to be the agent's again after the bgp restart",
        Duration::from_secs(120),
        Duration::from_millis(50),
        || {
            Ok(
                (std::fs::read_to_string(&file).ok().as_deref() == Some(before.as_str()))
                    .then_some(()),
            )
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{p}: {e:#}; agent log:\n{}",
            metal_switchd_lab::minilab::tail(&leaf.log(), 30)
        )
    });
    support::clean_teardown(&mut lab, &p.to_string());
    eprintln!("{p}: scenario and bgp restart in {:.1?}", started.elapsed());
}

#[test]
fn community_202311() {
    scenario_on(Profile::Community202311);
}

#[test]
fn community_202411() {
    scenario_on(Profile::Community202411);
}

#[test]
fn community_202505() {
    scenario_on(Profile::Community202505);
}

#[test]
fn dell_4_4() {
    scenario_on(Profile::Dell44);
}

#[test]
fn edgecore_202211() {
    scenario_on(Profile::Edgecore202211);
}
