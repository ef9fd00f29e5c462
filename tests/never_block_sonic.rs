//! Never block SONiC (issue "Performance on a switch-sized redis", item 2):
//! SONiC's redis is single-threaded and shared with orchagent and syncd, so
//! no command of the agent may run long. The real `metal-switchd run` in a
//! network namespace works on a route-heavy redis (`switch_redis::fill`:
//! APPL_DB routes, ASIC_DB SAI objects, COUNTERS_DB counters in SONiC's own
//! shapes) with the SONiC stand-in and the lab API server (v2) through a
//! daemon start with a fresh apply, a one-port move, a drift repair and a
//! redis restart; redis' `SLOWLOG` then holds no command of the agent (its
//! connections are named `metal-switchd`) that ran 1 ms or longer, and no
//! transaction whose commands ran 1 ms or longer together (redis runs a
//! transaction as one step and logs its commands, not the `EXEC`). The
//! machine is shared: now and then it stalls redis in the middle of any
//! command, so an entry counts when it is slow again (read-only commands
//! are replayed on the same data; `slowlog::Watch::verdict` says how the
//! others are judged); the stalls are printed.
//!
//! The redis is smaller than the benchmark's (docs/performance.md measures
//! 100,000 routes / 300,000 ASIC_DB keys and ten times that), but route-heavy
//! enough that a walk of APPL_DB costs several milliseconds: the test checks
//! that itself at the end, with a `KEYS` from a connection of its own. redis
//! runs under `SCHED_FIFO` so that a loaded machine does not preempt it in
//! the middle of a command; the times in its log are the commands' cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use metal_switchd::configdb::connection::CLIENT_NAME;
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::{APPL_DB, CONFIG_DB, RedisServer};
use metal_switchd_lab::seed::{SeedOptions, port_names, seed_switch, write_entries};
use metal_switchd_lab::slowlog::Watch;
use metal_switchd_lab::sonic::{SonicStandIn, StandInOptions};
use metal_switchd_lab::switch_redis::{SwitchSize, fill};
use support::Switch;
use support::agent::wait_for;
use support::lab::{HANG, Lab, desc_of, leaf01_doc};
use support::model::{self, Model};

const PORTS: &[&str] = &["Ethernet0", "Ethernet1", "Ethernet2", "Ethernet3"];
/// APPL_DB routes of the test's redis (and three ASIC_DB keys per route).
const ROUTES: usize = 40_000;
/// What "long" is: redis' `slowlog-log-slower-than` of the issue.
const LONG_US: u64 = 1000;
/// Room for every command of the scenario (the log is read at the end).
const SLOWLOG_LEN: u64 = 2_000_000;

/// Routes, SAI objects and counters, and redis under SCHED_FIFO.
fn switch_sized(redis: &RedisServer) {
    let filled = fill(
        redis,
        &SwitchSize::with_routes(ROUTES),
        &port_names(fixtures::MINI_LAB_PORT_MAP).unwrap(),
    )
    .unwrap();
    assert!(filled.asic_keys >= 3 * ROUTES, "{filled:?}");
    redis
        .realtime()
        .expect("redis under SCHED_FIFO (these tests run as root, like the other namespace tests)");
}

fn assert_never_long(watch: &Watch, when: &str) {
    let v = watch.verdict(CLIENT_NAME, LONG_US).unwrap();
    let s = &v.summary;
    assert!(
        s.commands > 0,
        "{when}: no command of the client {CLIENT_NAME:?} in the SLOWLOG"
    );
    assert!(
        v.offenders.is_empty(),
        "{when}: the agent kept SONiC's redis busy for {LONG_US} µs or longer:\n{}",
        v.offenders.join("\n")
    );
    for stall in &v.stalls {
        eprintln!("{when}: slow once, not again (the machine stalled redis): {stall}");
    }
    eprintln!(
        "{when}: {} commands of the agent; slowest {} µs ({}); longest transaction {} µs ({} commands)",
        s.commands,
        s.slowest_micros(),
        s.slowest
            .as_ref()
            .map_or(String::new(), ToString::to_string),
        s.longest_transaction.0,
        s.longest_transaction.1
    );
}

#[test]
fn no_command_of_the_agent_blocks_sonics_redis() {
    let sw = Switch::leaf01_with_foreign(StandInOptions::random(0x5104, Duration::from_millis(5)));
    switch_sized(&sw.redis);
    let baseline = sw.dump(CONFIG_DB);
    let mut lab = Lab::new(sw, PORTS, &leaf01_doc(&[]), model::FOREIGN_SETTINGS);
    let mut model = Model::leaf01(baseline.clone(), model::UNMANAGED);

    // 1. A daemon start: the start-up read and a fresh apply.
    let watch = Watch::arm(&lab.sw.redis, SLOWLOG_LEN).unwrap();
    let expected = model.transition(&desc_of(&leaf01_doc(&[])), &lab.sw.dump(CONFIG_DB));
    let agent = lab.start("agent", &[]);
    lab.wait_converged(&agent, 0, "the fresh apply");
    lab.sw.settle();
    model::assert_matches(&model, &expected, &lab.sw.dump(CONFIG_DB), "fresh apply");

    // 2. A one-port move between VRFs.
    let moved = leaf01_doc(&[("Ethernet3", "vrf104011")]);
    let expected = model.transition(&desc_of(&moved), &lab.sw.dump(CONFIG_DB));
    let after = lab.last_seq();
    lab.server.set_switch(&moved).unwrap();
    lab.wait_converged(&agent, after, "the one-port move");
    lab.sw.settle();
    model::assert_matches(&model, &expected, &lab.sw.dump(CONFIG_DB), "move");

    // 3. A drift repair: an owned entry deleted by hand is written back.
    let key = "INTERFACE|Ethernet3";
    let have = lab.sw.dump(CONFIG_DB)[key].clone();
    {
        let mut c = lab.sw.redis.connection(CONFIG_DB).unwrap();
        redis::cmd("DEL").arg(key).query::<()>(&mut c).unwrap();
    }
    wait_for("the drift repair", HANG, &agent, || {
        lab.sw
            .dump(CONFIG_DB)
            .get(key)
            .filter(|f| **f == have)
            .map(|_| ())
    });
    lab.sw.settle();
    assert_never_long(&watch, "start, fresh apply, move, repair");

    // 4. redis restarts (SONiC's database container: empty; SONiC fills it
    // again, routes included): the agent reads everything anew.
    drop(lab.sw.standin.take());
    lab.sw.redis.restart().unwrap();
    let watch = Watch::arm(&lab.sw.redis, SLOWLOG_LEN).unwrap();
    seed_switch(
        &lab.sw.redis,
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &SeedOptions {
            config_db_initialized: false,
            ..SeedOptions::default()
        },
    )
    .unwrap();
    write_entries(&lab.sw.redis, CONFIG_DB, &model::foreign_entries()).unwrap();
    switch_sized(&lab.sw.redis);
    lab.sw.standin = Some(
        SonicStandIn::start(
            &lab.sw.redis,
            StandInOptions::random(0x5105, Duration::from_millis(5)),
        )
        .unwrap(),
    );
    let after = lab.last_seq();
    support::process::config_db_initialized(&lab.sw.redis);
    let mut model = Model::leaf01(baseline.clone(), model::UNMANAGED);
    let expected = model.transition(&desc_of(&moved), &baseline);
    lab.wait_converged(&agent, after, "convergence after the redis restart");
    lab.sw.settle();
    model::assert_matches(&model, &expected, &lab.sw.dump(CONFIG_DB), "restart");
    assert_never_long(&watch, "after the redis restart");
    support::assert_no_violations(&lab.sw);

    // The check can fail: on this redis one walk of APPL_DB is long, and
    // stays long when replayed.
    watch.reset().unwrap();
    let mut c = lab.sw.redis.connection(APPL_DB).unwrap();
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("walker")
        .query::<()>(&mut c)
        .unwrap();
    let _: Vec<String> = redis::cmd("KEYS").arg("VRF_TABLE:*").query(&mut c).unwrap();
    let walk = watch.verdict("walker", LONG_US).unwrap();
    assert!(
        !walk.offenders.is_empty(),
        "a KEYS over {ROUTES} routes took {} µs ({:?}): the redis is too small for the check to mean anything",
        walk.summary.slowest_micros(),
        walk.stalls
    );
    eprintln!("a KEYS over APPL_DB: {}", walk.offenders.join("; "));

    let mut agent = agent;
    let status = agent.stop(HANG);
    assert!(status.success(), "{status:?}\n{}", agent.log_text());
}
