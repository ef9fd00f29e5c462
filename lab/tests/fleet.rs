//! The fleet view (`metal-switchd-lab fleet`): real agents, one redis and
//! SONiC stand-in each, against one lab API server. Every switch is counted
//! (each call is attributed to the switch it came from), each one fetches
//! and reports on its own, and nothing of the run is left behind. Needs
//! root (the agents' network namespace), redis-server, and the
//! `metal-switchd` binary next to this package's binary (`cargo nextest run
//! --workspace` builds both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use metal_switchd_lab::api_server::Call;
use metal_switchd_lab::fleet::{self, FleetOptions};

fn agent() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_metal-switchd-lab")).with_file_name("metal-switchd");
    assert!(
        p.is_file(),
        "{} is missing: build it first (cargo build --bin metal-switchd), or run the workspace's tests",
        p.display()
    );
    p
}

fn namespaces() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check(api: &str, fetch: Call, report: Call) {
    let agents = 3;
    let r = fleet::run(&FleetOptions {
        agents,
        api: api.into(),
        interval: Duration::from_secs(1),
        window: Duration::from_secs(10),
        agent: agent(),
    })
    .unwrap();
    eprintln!("{}", fleet::markdown(&r));
    assert_eq!(r.agents, agents);
    assert_eq!(
        r.unattributed, 0,
        "{api}: calls of no switch: {:?}",
        r.calls
    );
    assert!(
        r.per_switch.0 >= 2,
        "{api}: a switch made {} calls in 10 s at a 1 s interval",
        r.per_switch.0
    );
    let count = |c: Call| {
        r.calls
            .iter()
            .find(|(n, _)| n == c.name())
            .map_or(0, |(_, n)| *n)
    };
    for c in [fetch, report] {
        assert!(
            count(c) >= agents as u64,
            "{api}: {} {} calls for {agents} switches: {:?}",
            count(c),
            c.name(),
            r.calls
        );
    }
    assert_eq!(r.total(), r.calls.iter().map(|(_, n)| n).sum::<u64>());
    assert!(
        r.busiest_second as f64 >= r.mean_per_second,
        "{}",
        fleet::markdown(&r)
    );
    let text = fleet::markdown(&r);
    assert!(text.contains("for a partition of 1000 switches"), "{text}");
    let ns = namespaces();
    assert!(
        !ns.contains(&format!("msd-fleet-{}", std::process::id() & 0xffff)),
        "the fleet's namespace is left: {ns}"
    );
}

#[test]
fn a_fleet_on_the_v1_api_is_counted_per_switch() {
    check("v1", Call::V1Find, Call::V1Notify);
}

#[test]
fn a_fleet_on_the_v2_api_is_counted_per_switch() {
    check("v2", Call::V2Get, Call::V2Heartbeat);
}
