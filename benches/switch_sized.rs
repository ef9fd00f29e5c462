//! The agent on a switch-sized redis (issue "Performance on a switch-sized
//! redis", item 2): never block SONiC.
//!
//! For each size (APPL_DB routes / ASIC_DB keys, `lab/src/switch_redis.rs`)
//! a redis holds a leaf's routing state, the generated switch's base
//! configuration and port table (`generate::bench_switch`), and runs under
//! `SCHED_FIFO` so that the shared machine does not preempt it inside a
//! command; the SONiC stand-in answers. Its `SLOWLOG` records every command
//! (threshold 0). Measured, with the agent's library in this process:
//!
//! - the start-up read (`ConfigDb::connect`: CONFIG_DB, STATE_DB, the
//!   derived APPL_DB keys, the COUNTERS_DB maps), before the agent's first
//!   apply and after it (median of three), and the listing of ASIC_DB's
//!   bridge ports that follows it;
//! - a fresh apply, a one-port VRF→VRF move, a drift repair (an owned entry
//!   deleted, the reconcile that writes it back) and a redis restart (SONiC's
//!   database container: empty, then loaded again) with the reconcile that
//!   converges after it;
//! - from the SLOWLOG: the agent's slowest command, its longest
//!   transaction, and what `slowlog::Watch::verdict` finds slow because of
//!   what it asks for (read-only commands replayed).
//!
//! `cargo bench --bench switch_sized [-- --sizes 100000x300000,1000000x3000000
//! --agent 256x256 --out FILE]` prints a Markdown section (and writes it to
//! FILE). Needs root (`SCHED_FIFO`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use metal_switchd::api::parse_switch_document;
use metal_switchd::config::Config;
use metal_switchd::configdb::connection::CLIENT_NAME;
use metal_switchd::configdb::dbconfig::Databases;
use metal_switchd::configdb::redis::{ApplyOptions, ConfigDb};
use metal_switchd::reconcile::desired::DesiredSource;
use metal_switchd::reconcile::{Agent, AgentOptions, Mode};
use metal_switchd::report::{ReconcileResult, Trigger};
use metal_switchd_lab::bench::seeded_with;
use metal_switchd_lab::fixtures;
use metal_switchd_lab::generate::{bench_config, bench_switch, vni};
use metal_switchd_lab::redis_server::{CONFIG_DB, RedisServer};
use metal_switchd_lab::seed::{SeedOptions, port_names, seed_switch};
use metal_switchd_lab::slowlog::{Verdict, Watch};
use metal_switchd_lab::sonic::{SonicStandIn, StandInOptions};
use metal_switchd_lab::switch_redis::{SwitchData, SwitchSize};

/// What redis' `slowlog-log-slower-than` of the issue calls long.
const LONG_US: u64 = 1000;
const SLOWLOG_LEN: u64 = 5_000_000;

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// One start-up read: until the view is there, then until ASIC_DB's bridge
/// ports are listed; and the round trips of each.
async fn startup(dbs: &Databases) -> (Duration, Duration, u64, u64) {
    let t = Instant::now();
    let mut db = ConfigDb::connect_within(dbs.clone(), Duration::from_secs(600))
        .await
        .unwrap();
    let read = t.elapsed();
    let read_trips = db.stats().round_trips;
    while !db.view().confirmed.bridge_ports_listed() {
        db.next_event().await.expect("the feed runs");
    }
    let listed = t.elapsed();
    (
        read,
        listed,
        read_trips,
        db.stats().round_trips - read_trips,
    )
}

/// A figure, what was measured, and the target (empty: none).
struct Row(String, String, String);

impl Row {
    fn new(figure: impl Into<String>, measured: impl Into<String>) -> Row {
        Row(figure.into(), measured.into(), String::new())
    }

    fn target(mut self, t: &str) -> Row {
        self.2 = t.into();
        self
    }
}

fn verdict_rows(
    v: &Verdict,
    entries: &[metal_switchd_lab::slowlog::Entry],
    when: &str,
    rows: &mut Vec<Row>,
) {
    let s = &v.summary;
    rows.push(Row::new(
        format!("{when}: the agent's commands in the SLOWLOG (threshold 0)"),
        s.commands.to_string(),
    ));
    rows.push(Row::new(
        format!("{when}: the agent's commands by kind: count, median, slowest"),
        by_kind(entries),
    ));
    rows.push(
        Row::new(
            format!("{when}: the agent's slowest command"),
            s.slowest.as_ref().map_or("–".into(), |e| {
                format!("{} µs: `{}`", e.micros, command_of(e))
            }),
        )
        .target("< 1 ms (or a stall: not slow again)"),
    );
    rows.push(
        Row::new(
            format!("{when}: the agent's longest transaction"),
            if s.longest_transaction.1 == 0 {
                "none".into()
            } else {
                format!(
                    "{} µs ({} commands)",
                    s.longest_transaction.0, s.longest_transaction.1
                )
            },
        )
        .target("< 1 ms"),
    );
    rows.push(
        Row::new(
            format!("{when}: the agent's commands of {LONG_US} µs or longer / of them slow again"),
            format!(
                "{} / {}",
                s.over.len() + s.transactions_over.len(),
                v.offenders.len()
            ),
        )
        .target("– / 0 (issue 23)"),
    );
    for o in &v.offenders {
        eprintln!("  SLOW: {o}");
    }
    for st in &v.stalls {
        eprintln!("  stall: {st}");
    }
}

/// The agent's commands per command name: how many, the median and the
/// slowest time, most frequent first.
fn by_kind(entries: &[metal_switchd_lab::slowlog::Entry]) -> String {
    let mut kinds: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for e in entries.iter().filter(|e| e.client_name == CLIENT_NAME) {
        let name = e
            .args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        kinds.entry(name).or_default().push(e.micros);
    }
    let mut kinds: Vec<(String, Vec<u64>)> = kinds.into_iter().collect();
    kinds.sort_by_key(|(name, t)| (std::cmp::Reverse(t.len()), name.clone()));
    kinds
        .into_iter()
        .map(|(name, mut t)| {
            t.sort_unstable();
            format!(
                "`{name}` {}: {} µs, {} µs",
                t.len(),
                t[t.len() / 2],
                t[t.len() - 1]
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The command and its first arguments, for a table cell.
fn command_of(e: &metal_switchd_lab::slowlog::Entry) -> String {
    let mut c: Vec<&str> = e.args.iter().take(6).map(String::as_str).collect();
    if e.args.len() > 6 {
        c.push("…");
    }
    c.join(" ").replace('|', "\\|")
}

async fn bench_size(size: &SwitchSize, ports: usize, vrfs: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let (doc, port_map) = bench_switch(ports, vrfs);
    let t = Instant::now();
    let switch = SwitchData::new(size.clone());
    let data = switch.file(&port_names(&port_map).unwrap()).unwrap();
    eprintln!("  filled in {}", fmt(t.elapsed()));
    let mut redis = seeded_with(&port_map, Some(&switch)).unwrap();
    eprintln!("  loaded in {}", fmt(t.elapsed()));
    redis
        .realtime()
        .expect("redis under SCHED_FIFO: run ./dev perf as root");
    let keys = |redis: &RedisServer, db: i64| -> u64 {
        let mut c = redis.connection(db).unwrap();
        redis::cmd("DBSIZE").query(&mut c).unwrap()
    };
    rows.push(Row::new(
        "redis: APPL_DB / ASIC_DB / COUNTERS_DB keys",
        format!(
            "{} / {} / {}",
            keys(&redis, 0),
            keys(&redis, 1),
            keys(&redis, 2)
        ),
    ));
    let standin = SonicStandIn::start(&redis, StandInOptions::default()).unwrap();
    let text = format!(
        "{}database_config = {:?}\nreconfigure_switch = true\nbarrier_timeout = \"600s\"\n",
        bench_config(ports),
        redis.write_database_config().unwrap().display().to_string(),
    );
    let cfg = Config::from_sources(Some(("bench.toml", &text)), Vec::new()).unwrap();
    let dbs = Databases::load(&redis.dir().join("database_config.json")).unwrap();
    let desc = parse_switch_document("bench", &doc.to_string(), None)
        .unwrap()
        .1;
    let watch = Watch::arm(&redis, SLOWLOG_LEN).unwrap();

    eprintln!("  start-up reads before the first apply");
    let mut before = Vec::new();
    for _ in 0..3 {
        before.push(startup(&dbs).await);
    }
    let opts = AgentOptions {
        mode: Mode::Apply,
        frr: false,
        wait_ready: Duration::from_secs(600),
        hooks: ApplyOptions {
            barrier_timeout: Duration::from_secs(600),
            ..ApplyOptions::default()
        },
    };
    let mut agent = Agent::new(
        cfg.clone(),
        DesiredSource::Memory(Arc::new(desc.clone())),
        None,
        opts,
    )
    .unwrap();
    let far = || Instant::now() + Duration::from_secs(3600);
    eprintln!("  fresh apply");
    let o = agent.reconcile_once(Trigger::Startup, true, far()).await;
    assert_eq!(o.result, ReconcileResult::Converged, "{:?}", o.error);
    let report = o.apply.clone().unwrap_or_default();
    rows.push(Row::new(
        "fresh apply: entries written, phases; write time (barrier waits excluded)",
        format!(
            "{} entries, {} phases; {}",
            o.changes,
            o.phases,
            fmt(report.write_time)
        ),
    ));
    standin.settle(Duration::from_secs(600)).unwrap();

    eprintln!("  start-up reads with the agent's entries");
    let mut after = Vec::new();
    for _ in 0..3 {
        after.push(startup(&dbs).await);
    }
    let config_keys = keys(&redis, CONFIG_DB);
    for (when, runs) in [
        ("before the first apply", &before),
        ("with the agent's entries", &after),
    ] {
        let read = median(runs.iter().map(|r| r.0).collect());
        let listed = median(runs.iter().map(|r| r.1).collect());
        rows.push(Row::new(
            format!("start-up read, {when}: time (median of 3), round trips"),
            format!("{}, {}", fmt(read), runs[0].2),
        ));
        rows.push(Row::new(
            "… then ASIC_DB's bridge ports listed: after (median), round trips",
            format!("{}, {}", fmt(listed), runs[0].3),
        ));
    }
    rows.push(Row::new(
        "CONFIG_DB keys with the agent's entries",
        config_keys.to_string(),
    ));

    eprintln!("  one-port move");
    let mut moved = desc.clone();
    let i = if ports > vrfs + 2 { vrfs + 2 } else { 0 };
    moved
        .nics
        .iter_mut()
        .find(|n| n.name == format!("Ethernet{i}"))
        .unwrap()
        .vrf = Some(format!("vrf{}", vni(1)));
    agent.source_mut().set_memory(moved.clone());
    let t = Instant::now();
    let o = agent.reconcile_once(Trigger::Timer, true, far()).await;
    assert_eq!(o.result, ReconcileResult::Converged, "{:?}", o.error);
    rows.push(Row::new(
        "one-port VRF→VRF move: entries, wall time with barrier waits",
        format!("{}, {}", o.changes, fmt(t.elapsed())),
    ));
    standin.settle(Duration::from_secs(600)).unwrap();

    eprintln!("  drift repair");
    let key = format!("INTERFACE|Ethernet{}", vrfs.saturating_sub(1));
    {
        let mut c = redis.connection(CONFIG_DB).unwrap();
        redis::cmd("DEL").arg(&key).query::<()>(&mut c).unwrap();
    }
    agent.db_mut().sync(Duration::from_secs(60)).await.unwrap();
    let t = Instant::now();
    let o = agent.reconcile_once(Trigger::Configdb, false, far()).await;
    assert_eq!(o.result, ReconcileResult::Converged, "{:?}", o.error);
    assert!(o.changes >= 1, "{key} written back: {}", o.summary());
    rows.push(Row::new(
        "drift repair (an owned entry deleted): the reconcile that writes it back",
        fmt(t.elapsed()),
    ));
    standin.settle(Duration::from_secs(600)).unwrap();
    verdict_rows(
        &watch.verdict(CLIENT_NAME, LONG_US).unwrap(),
        &watch.entries().unwrap(),
        "start-up reads, fresh apply, move, repair",
        &mut rows,
    );

    eprintln!("  redis restart");
    // SONiC's database container restarts: redis comes back with SONiC's
    // routing state (loaded from the file here), the base configuration is
    // loaded again, swss starts again.
    drop(standin);
    let t = Instant::now();
    redis.restart_with_data(&data).unwrap();
    redis.realtime().unwrap();
    let watch = Watch::arm(&redis, SLOWLOG_LEN).unwrap();
    seed_switch(
        &redis,
        fixtures::LEAF01_CONFIG,
        Some(&port_map),
        &SeedOptions::default(),
    )
    .unwrap();
    let standin = SonicStandIn::start(&redis, StandInOptions::default()).unwrap();
    eprintln!("  redis back in {}", fmt(t.elapsed()));
    // As the daemon's loop does: the feed's events (the lost connection,
    // the full read once redis is back) wake it, then it reconciles until
    // converged, woken again by the next event when an attempt fails.
    let t = Instant::now();
    let wait = Duration::from_secs(600);
    tokio::time::timeout(wait, async {
        while agent.db().is_connected() {
            agent.db_mut().next_event().await.expect("the feed runs");
        }
        while !agent.db().is_connected() {
            agent.db_mut().next_event().await.expect("the feed runs");
        }
    })
    .await
    .expect("the feed saw the restart and read redis again");
    let o = loop {
        agent.db_mut().pump();
        let o = agent.reconcile_once(Trigger::Configdb, true, far()).await;
        if o.result == ReconcileResult::Converged {
            break o;
        }
        assert!(
            t.elapsed() < wait,
            "no convergence after the restart: {:?}",
            o.error
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), agent.db_mut().next_event()).await;
    };
    assert!(
        o.changes > 0,
        "the agent's entries written again after the restart: {}",
        o.summary()
    );
    rows.push(Row::new(
        "redis restart: the agent's entries written again, time to convergence",
        format!("{}, {}", o.changes, fmt(t.elapsed())),
    ));
    standin.settle(Duration::from_secs(600)).unwrap();
    verdict_rows(
        &watch.verdict(CLIENT_NAME, LONG_US).unwrap(),
        &watch.entries().unwrap(),
        "after the redis restart",
        &mut rows,
    );
    let v = standin.violations();
    assert!(v.is_empty(), "ordering violations: {v:?}");
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if !args.iter().any(|a| a == "--bench") && arg("--sizes").is_none() {
        return;
    }
    let pair = |s: &str| -> (usize, usize) {
        let (a, b) = s.split_once('x').expect("AxB");
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let sizes: Vec<SwitchSize> = arg("--sizes")
        .unwrap_or_else(|| "100000x300000,1000000x3000000".into())
        .split(',')
        .map(|s| {
            let (routes, asic_keys) = pair(s);
            SwitchSize {
                routes,
                asic_keys,
                ..SwitchSize::default()
            }
        })
        .collect();
    let (ports, vrfs) = pair(&arg("--agent").unwrap_or_else(|| "256x256".into()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = metal_switchd::configdb::startup::ReadLimits::default();
    let (step, batch) = (limits.scan_count, limits.batch);
    let mut out = format!(
        "## Never block SONiC: a switch-sized redis (`cargo bench --bench switch_sized`)\n\n\
         On a leaf the redis the agent shares with orchagent and syncd holds every route (APPL_DB `ROUTE_TABLE`) and every SAI object \
         (ASIC_DB); it runs one command at a time, so a command of the agent that runs 1 ms stops SONiC for 1 ms. \
         Here one redis holds a generated leaf's routing state in SONiC's own key and field shapes (`lab/src/switch_redis.rs`: APPL_DB routes and \
         neighbours, ASIC_DB route entries, neighbours, next hops, FDB entries and syncd's id maps, COUNTERS_DB port counters), \
         the base configuration and a generated switch of ({ports}, {vrfs}) (ports, tenant VRFs); the SONiC stand-in answers. \
         redis runs under `SCHED_FIFO` (a loaded machine does not preempt it inside a command) and its `SLOWLOG` records every command \
         (threshold 0): the times below are what each command cost redis. The agent's library runs in this process; its connections are \
         named `metal-switchd`. A command counts as slow when it is slow again (read-only commands replayed on the same data; \
         `lab/src/slowlog.rs`), otherwise the machine stalled redis. `tests/never_block_sonic.rs` keeps \
         \"no command of the agent runs 1 ms\" true for the real daemon in `./dev test`.\n\n\
         The start-up read walks only CONFIG_DB and STATE_DB (`SCAN` steps of {step} keys, then `HGETALL` of the agent's keys in pipelines of {batch}), \
         reads APPL_DB only at the keys CONFIG_DB and STATE_DB name, and COUNTERS_DB's two name maps with `HSCAN`: its cost grows with what \
         the agent works on, not with the routes. ASIC_DB has no index by object type, so its bridge ports are listed after the \
         start-up read, in `SCAN` steps of {step} keys between the agent's other work (until then a barrier that asks whether a port still \
         has a bridge port waits): that listing grows with ASIC_DB, one cheap step at a time.\n\n"
    );
    for size in &sizes {
        eprintln!(
            "bench switch-sized: {} routes, {} ASIC_DB keys",
            size.routes, size.asic_keys
        );
        let rows = rt.block_on(bench_size(size, ports, vrfs));
        out.push_str(&format!(
            "### {} routes, {} ASIC_DB keys\n\n| figure | measured | target |\n|---|---|---|\n",
            size.routes, size.asic_keys
        ));
        for Row(a, b, t) in rows {
            out.push_str(&format!("| {a} | {b} | {t} |\n"));
        }
        out.push('\n');
    }
    print!("{out}");
    if let Some(path) = arg("--out") {
        std::fs::write(path, &out).unwrap();
    }
}
