//! Fault injection end to end (issue "Reliability and security", item 2):
//! the real `metal-switchd run` in a network namespace, real redis with the
//! SONiC stand-in, the lab API server (v2), FRR validation by `vtysh`, an FRR
//! reload stand-in (`support::lab`). One test per fault; each asserts what
//! the agent does, what it reports (heartbeat error, status file, metrics),
//! and that nothing is lost: a change of the desired state made during the
//! fault is on the switch once the fault ends. CONFIG_DB is checked against
//! the independent model (`support::model`). The matrix of faults and
//! outcomes is in docs/reliability.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use metal_switchd_lab::api_server::{Call, Fault, FaultKind, TokenGrant};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::seed::{SeedOptions, seed_switch, write_entries};
use metal_switchd_lab::sonic::{SonicStandIn, StandInOptions};
use serde_json::Value;
use support::Switch;
use support::agent::{AgentProcess, wait_for};
use support::lab::{HANG, LAB_PORTS, Lab, desc_of, leaf01_doc, metric, no_error};
use support::model::{self, Expected, Model};

fn switch(standin: StandInOptions) -> Switch {
    Switch::leaf01_with_foreign(standin)
}

/// The lab leaf01 plus `moves`.
fn doc(moves: &[(&str, &str)]) -> String {
    leaf01_doc(moves)
}

/// A lab serving the lab leaf01, the model at the baseline; `edit` changes
/// the agent's configuration before it starts.
fn lab(standin: StandInOptions, edit: impl FnOnce(String) -> String) -> (Lab, Model) {
    lab_seeded(standin, |_| {}, edit)
}

/// [`lab`], with `seed` writing to the switch before the baseline is taken.
fn lab_seeded(
    standin: StandInOptions,
    seed: impl FnOnce(&Switch),
    edit: impl FnOnce(String) -> String,
) -> (Lab, Model) {
    let sw = switch(standin);
    seed(&sw);
    let baseline = sw.dump(CONFIG_DB);
    let lab = Lab::new(sw, LAB_PORTS, &doc(&[]), model::FOREIGN_SETTINGS);
    lab.edit_config(edit);
    (lab, Model::leaf01(baseline, model::UNMANAGED))
}

/// Start the agent and wait for it to converge on the lab leaf01.
fn start(lab: &Lab, model: &mut Model) -> (AgentProcess, Expected) {
    let before = lab.sw.dump(CONFIG_DB);
    let expected = model.transition(&desc_of(&doc(&[])), &before);
    let agent = lab.start("agent", &[]);
    lab.wait_converged(&agent, 0, "the first convergence");
    lab.sw.settle();
    model::assert_matches(
        model,
        &expected,
        &lab.sw.dump(CONFIG_DB),
        "first convergence",
    );
    (agent, expected)
}

/// The API's desired state becomes `doc`; the model follows (planned on top
/// of CONFIG_DB as it is now).
fn change(lab: &Lab, model: &mut Model, doc: &str) -> Expected {
    let before = lab.sw.dump(CONFIG_DB);
    let expected = model.transition(&desc_of(doc), &before);
    lab.server.set_switch(doc).unwrap();
    expected
}

/// Wait for a converged heartbeat after `after`; then CONFIG_DB matches the
/// model, the stand-in saw no bad order, FRR runs the installed file.
fn assert_recovered(
    lab: &Lab,
    agent: &AgentProcess,
    model: &Model,
    expected: &Expected,
    after: u64,
    when: &str,
) {
    lab.wait_converged(agent, after, &format!("{when}: recovery"));
    lab.sw.settle();
    model::assert_matches(model, expected, &lab.sw.dump(CONFIG_DB), when);
    support::assert_no_violations(&lab.sw);
    assert_eq!(
        lab.reloaded(),
        lab.frr_conf(),
        "{when}: FRR runs the installed file"
    );
    assert!(
        lab.frr_temp_files().is_empty(),
        "{when}: {:?}",
        lab.frr_temp_files()
    );
}

/// The status file and the metrics show a failing reconcile whose error
/// contains `needle`.
fn assert_status_and_metrics(lab: &Lab, agent: &AgentProcess, needle: &str) -> (Value, String) {
    let status = wait_for(
        &format!("the status file to show {needle:?}"),
        HANG,
        agent,
        || {
            let s = lab.status();
            s["last_reconcile"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(needle))
                .then_some(s)
        },
    );
    let result = status["last_reconcile"]["result"]
        .as_str()
        .unwrap()
        .to_owned();
    // `pending` (SONiC has not confirmed yet) is neither a success nor a
    // failure: it does not add to the failure streak.
    let failing = match result.as_str() {
        "error" => true,
        "pending" => false,
        other => panic!("{needle}: result {other:?}: {status}"),
    };
    if failing {
        assert!(
            status["consecutive_failures"].as_u64().unwrap() >= 1,
            "{status}"
        );
    }
    let metrics = wait_for("metrics showing the failure", HANG, agent, || {
        let m = lab.metrics();
        ((!failing
            || metric(&m, "metal_switchd_consecutive_failures", "").is_some_and(|v| v >= 1.0))
            && metric(
                &m,
                "metal_switchd_reconciles_total",
                &format!("result=\"{result}\""),
            )
            .is_some_and(|v| v >= 1.0))
        .then_some(m)
    });
    (status, metrics)
}

fn stop(mut agent: AgentProcess) {
    let status = agent.stop(HANG);
    assert!(status.success(), "{status:?}\n{}", agent.log_text());
}

/// The agent's writes since `lab.sw.reset_writes()`.
fn agent_writes(lab: &Lab) -> u64 {
    lab.sw.agent_writes()
}

/// 500, 503, a timeout, a cut-off answer, invalid JSON and a dropped
/// connection on `SwitchService/Get`: each is reported in the heartbeat,
/// the status file and the metrics, nothing is written while it lasts, and
/// the change the API made meanwhile is applied once it ends.
/// One fault, as a row of the table a test runs: `inject` breaks something
/// and the desired state changes to `moves`; the heartbeat reports
/// `needle`; `while_broken` checks what the agent does meanwhile (it gets
/// the heartbeat's error); `heal` ends the fault; then the change is on the
/// switch ([`assert_recovered`]).
struct Scenario<'a> {
    name: &'a str,
    inject: &'a dyn Fn(&Lab),
    moves: &'a [(&'a str, &'a str)],
    needle: &'a str,
    while_broken: &'a dyn Fn(&Lab, &AgentProcess, &str),
    heal: &'a dyn Fn(&Lab),
}

/// Run `fault` against the running `agent` (see [`Scenario`]).
fn ride_out(lab: &Lab, agent: &AgentProcess, model: &mut Model, fault: &Scenario<'_>) {
    (fault.inject)(lab);
    lab.sw.reset_writes();
    let after = lab.last_seq();
    let expected = change(lab, model, &doc(fault.moves));
    let hb = lab.wait_error(agent, after, fault.needle);
    let error = hb.request["error"].as_str().unwrap().to_owned();
    eprintln!("{}: heartbeat error: {error}", fault.name);
    (fault.while_broken)(lab, agent, &error);
    (fault.heal)(lab);
    assert_recovered(lab, agent, model, &expected, lab.last_seq(), fault.name);
}

/// A reconcile with a phase SONiC never confirms ends with `needle`; the
/// next ones wait and write nothing on top of it.
fn nothing_written_on_top(lab: &Lab, agent: &AgentProcess, needle: &str) {
    let writes = agent_writes(lab);
    assert!(writes >= 1, "the first phase was written");
    let again = lab.last_seq();
    lab.wait_error(agent, again, needle);
    assert_eq!(
        agent_writes(lab),
        writes,
        "wrote on top of an unconfirmed phase"
    );
}

#[test]
fn api_faults_are_reported_write_nothing_and_lose_nothing() {
    let (lab, mut model) = lab(
        StandInOptions::random(0xfa01, Duration::from_millis(20)),
        |t| t.replace("timeout = \"10s\"", "timeout = \"2s\""),
    );
    let (agent, _) = start(&lab, &mut model);
    // What the heartbeat's error says (any of); a cut-off answer shows as a
    // body error or, when hyper sees the connection end first, as a
    // connection error.
    let faults: Vec<(&str, FaultKind, &[&str])> = vec![
        (
            "HTTP 500",
            FaultKind::Status {
                status: 500,
                body: None,
            },
            &["HTTP 500"],
        ),
        (
            "HTTP 503",
            FaultKind::Status {
                status: 503,
                body: None,
            },
            &["HTTP 503"],
        ),
        (
            "timeout",
            FaultKind::Delay(Duration::from_secs(5)),
            &["did not answer within 2s"],
        ),
        (
            "truncated answer",
            FaultKind::Truncate,
            &["cut off", "before an answer arrived"],
        ),
        (
            "invalid JSON",
            FaultKind::InvalidBody,
            &["cannot read the answer"],
        ),
        (
            "connection dropped",
            FaultKind::Drop,
            &["before an answer arrived"],
        ),
    ];
    let mut pxe = false;
    for (name, kind, needles) in faults {
        let after = lab.last_seq();
        lab.sw.reset_writes();
        lab.server.inject(Fault {
            call: Some(Call::V2Get),
            times: 1_000_000,
            kind,
        });
        // The API's state changes while its answers fail.
        pxe = !pxe;
        let moved = if pxe {
            doc(&[("Ethernet1", "")])
        } else {
            doc(&[])
        };
        let expected = change(&lab, &mut model, &moved);
        let error_of = |r: &Value| r.get("error").and_then(Value::as_str).map(str::to_owned);
        let hb = wait_for(
            &format!("a heartbeat reporting {needles:?}"),
            HANG,
            &agent,
            || {
                lab.heartbeat_after(after, |r| {
                    error_of(r).is_some_and(|e| needles.iter().any(|n| e.contains(n)))
                })
            },
        );
        let error = error_of(&hb.request).unwrap();
        eprintln!("{name}: heartbeat error: {error}");
        let needle = needles.iter().find(|n| error.contains(**n)).unwrap();
        let (status, metrics) = assert_status_and_metrics(&lab, &agent, needle);
        assert!(
            metric(
                &metrics,
                "metal_switchd_api_errors_total",
                "call=\"get_switch\""
            )
            .is_some_and(|v| v >= 1.0),
            "{name}: {metrics}"
        );
        assert_eq!(agent_writes(&lab), 0, "{name}: wrote while the API failed");
        eprintln!(
            "{name}: status: {} {}",
            status["last_reconcile"]["result"], status["consecutive_failures"]
        );
        lab.server.clear_faults();
        assert_recovered(&lab, &agent, &model, &expected, lab.last_seq(), name);
    }
    stop(agent);
}

/// v2: the token expires (the API answers 401 to every call, the
/// heartbeat too): the status file and the metrics say so, nothing is
/// written; a renewed token in the token file is used without a restart.
#[test]
fn an_expired_token_is_reported_and_a_renewed_one_is_used_without_a_restart() {
    let (lab, mut model) = lab(
        StandInOptions::random(0xfa02, Duration::from_millis(20)),
        |t| t,
    );
    let (agent, _) = start(&lab, &mut model);
    lab.sw.reset_writes();
    lab.server
        .set_token(support::lab::TOKEN, TokenGrant::Revoked);
    let expected = change(&lab, &mut model, &doc(&[("Ethernet2", "")]));
    let (_, metrics) = assert_status_and_metrics(&lab, &agent, "unauthenticated");
    assert!(
        metric(
            &metrics,
            "metal_switchd_api_errors_total",
            "kind=\"permanent\""
        )
        .is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
    assert!(
        lab.server
            .records_of(Call::V2Heartbeat)
            .iter()
            .any(|r| r.status == 401),
        "the heartbeat is refused too"
    );
    assert_eq!(agent_writes(&lab), 0, "wrote without a desired state");
    // The token is renewed (a new file content, as metal-stack's tooling
    // writes it).
    let renewed = "eyJhbGciOiJFUzUxMiJ9.lab-reliability-renewed.c2lnbmF0dXJl";
    lab.server.set_token(renewed, TokenGrant::Editor);
    std::fs::write(lab.path("token"), format!("{renewed}\n")).unwrap();
    assert_recovered(
        &lab,
        &agent,
        &model,
        &expected,
        lab.last_seq(),
        "renewed token",
    );
    stop(agent);
}

/// The leaf's base configuration and the foreign objects, as SONiC loads
/// them after its database restarts or a `config reload`.
fn seed_base(lab: &Lab, opts: &SeedOptions) {
    seed_switch(
        &lab.sw.redis,
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        opts,
    )
    .unwrap();
    write_entries(&lab.sw.redis, CONFIG_DB, &model::foreign_entries()).unwrap();
}

/// redis restarts while a multi-phase apply waits for a barrier (SONiC's
/// database container restarts: empty, then the base configuration loaded
/// again, swss started again): the agent reports redis unavailable, and
/// once redis is back writes the whole desired state again.
#[test]
fn redis_restarted_in_the_middle_of_an_apply() {
    let (mut lab, mut model) = lab(
        StandInOptions::random(0xfa03, Duration::from_millis(20)),
        |t| t,
    );
    let (agent, _) = start(&lab, &mut model);
    lab.sw.standin().pause();
    lab.sw.reset_writes();
    let after = lab.last_seq();
    let b = doc(&[("Ethernet3", "vrf104011"), ("Ethernet4", "vrf104011")]);
    lab.server.set_switch(&b).unwrap();
    wait_for("phase 1 written, its barrier waiting", HANG, &agent, || {
        (agent_writes(&lab) >= 1).then_some(())
    });
    drop(lab.sw.standin.take());
    lab.sw.redis.restart().unwrap();
    let hb = lab.wait_error(&agent, after, "redis");
    eprintln!("redis away: heartbeat error: {}", hb.request["error"]);
    seed_base(&lab, &SeedOptions::default());
    lab.sw.standin = Some(
        SonicStandIn::start(
            &lab.sw.redis,
            StandInOptions::random(0xfa33, Duration::from_millis(20)),
        )
        .unwrap(),
    );
    // Everything the agent wrote is gone: it starts from the base again.
    let mut model = Model::leaf01(model.baseline.clone(), model::UNMANAGED);
    let base = model.baseline.clone();
    let expected = model.transition(&desc_of(&b), &base);
    assert_recovered(
        &lab,
        &agent,
        &model,
        &expected,
        lab.last_seq(),
        "redis restarted",
    );
    stop(agent);
}

/// `config reload`: CONFIG_DB flushed, `CONFIG_DB_INITIALIZED` 0, the saved
/// configuration (without the agent's entries) loaded, swss restarted
/// (APPL_DB, STATE_DB and the ASIC flushed), `CONFIG_DB_INITIALIZED` 1. The
/// agent writes nothing before the flag is 1, says why, then writes its
/// state again.
#[test]
fn config_reload_the_agent_waits_for_config_db_initialized_then_reasserts_its_state() {
    let (mut lab, mut model) = lab(
        StandInOptions::random(0xfa04, Duration::from_millis(20)),
        |t| t,
    );
    let (agent, _) = start(&lab, &mut model);
    let after = lab.last_seq();
    // swss stops; CONFIG_DB flushed and reloaded with the flag at 0.
    drop(lab.sw.standin.take());
    {
        let mut c = lab.sw.redis.connection(CONFIG_DB).unwrap();
        redis::cmd("FLUSHALL").query::<()>(&mut c).unwrap();
        redis::cmd("SET")
            .arg("CONFIG_DB_INITIALIZED")
            .arg("0")
            .query::<()>(&mut c)
            .unwrap();
    }
    seed_base(
        &lab,
        &SeedOptions {
            config_db_initialized: false,
            port_init_done: false,
            asic: true,
        },
    );
    lab.sw.reset_writes();
    // The agent notices (its owned entries are gone) and waits.
    let hb = lab.wait_error(&agent, after, "not ready");
    eprintln!("config reload: heartbeat error: {}", hb.request["error"]);
    let e = hb.request["error"].as_str().unwrap();
    assert!(e.contains("CONFIG_DB_INITIALIZED=\"0\""), "{e}");
    assert!(e.contains("nothing was written"), "{e}");
    assert_status_and_metrics(&lab, &agent, "not ready");
    // The desired state changes meanwhile.
    let a2 = doc(&[("Ethernet4", "vrf104009")]);
    lab.server.set_switch(&a2).unwrap();
    let before_flag = lab.last_seq();
    lab.wait_error(&agent, before_flag, "not ready");
    assert_eq!(
        agent_writes(&lab),
        0,
        "wrote before CONFIG_DB_INITIALIZED = 1"
    );
    // swss comes back, the flag goes to 1.
    lab.sw.standin = Some(
        SonicStandIn::start(
            &lab.sw.redis,
            StandInOptions::random(0xfa44, Duration::from_millis(20)),
        )
        .unwrap(),
    );
    support::process::port_init_done(&lab.sw.redis);
    support::process::config_db_initialized(&lab.sw.redis);
    let mut model = Model::leaf01(model.baseline.clone(), model::UNMANAGED);
    let base = model.baseline.clone();
    let expected = model.transition(&desc_of(&a2), &base);
    assert_recovered(
        &lab,
        &agent,
        &model,
        &expected,
        lab.last_seq(),
        "config reload",
    );
    stop(agent);
}

/// SONiC never confirms: all daemons frozen, then only vrfmgrd (a VRF that
/// never appears in STATE_DB). The agent reports what it waits for, writes
/// nothing on top of the unconfirmed phase however often it tries, and
/// finishes once SONiC does.
#[test]
fn a_barrier_that_never_completes_is_reported_and_nothing_is_written_on_top() {
    let (lab, mut model) = lab(
        StandInOptions::random(0xfa05, Duration::from_millis(20)),
        |t| t.replace("barrier_timeout = \"10s\"", "barrier_timeout = \"500ms\""),
    );
    let (agent, _) = start(&lab, &mut model);
    let faults = [
        // Every daemon frozen: the first phase is written, never confirmed.
        Scenario {
            name: "all daemons frozen",
            inject: &|lab| lab.sw.standin().pause(),
            moves: &[("Ethernet3", "vrf104011"), ("Ethernet4", "vrf104011")],
            needle: "did not confirm it within",
            while_broken: &|lab, agent, _| {
                nothing_written_on_top(
                    lab,
                    agent,
                    "SONiC has not confirmed what CONFIG_DB already holds",
                );
                assert_status_and_metrics(lab, agent, "has not confirmed");
            },
            heal: &|lab| lab.sw.standin().resume(),
        },
        // Only vrfmgrd hangs: the new VRF's STATE_DB entry never appears.
        Scenario {
            name: "vrfmgrd hung",
            inject: &|lab| lab.sw.standin().pause_daemon("vrfmgrd"),
            moves: &[("Ethernet3", "vrf104012")],
            needle: "VRF_TABLE|Vrf104012",
            while_broken: &|lab, agent, _| {
                nothing_written_on_top(lab, agent, "VRF_TABLE|Vrf104012")
            },
            heal: &|lab| lab.sw.standin().resume_daemon("vrfmgrd"),
        },
    ];
    for f in &faults {
        ride_out(&lab, &agent, &mut model, f);
    }
    stop(agent);
}

/// SONiC's daemons take their tasks out of order (across tables, within a
/// window) and process every notification twice: the agent's barriers
/// still keep every order safe, and it converges on each change.
#[test]
fn sonic_daemons_that_reorder_and_repeat_their_tasks_get_only_safe_orders() {
    let standin = StandInOptions {
        duplicate: true,
        ..StandInOptions::shuffled(0xfa06, Duration::from_millis(40))
    };
    let (lab, mut model) = lab(standin, |t| t);
    let (agent, _) = start(&lab, &mut model);
    let steps = [
        doc(&[("Ethernet3", "vrf104011"), ("Ethernet4", "vrf104011")]),
        doc(&[("Ethernet1", ""), ("Ethernet2", ""), ("Ethernet3", "")]),
        doc(&[("Ethernet0", "vrf104009"), ("Ethernet4", "default")]),
        doc(&[]),
    ];
    for (i, d) in steps.iter().enumerate() {
        let after = lab.last_seq();
        let expected = change(&lab, &mut model, d);
        assert_recovered(&lab, &agent, &model, &expected, after, &format!("step {i}"));
    }
    assert!(
        lab.sw.standin().events().len() > 100,
        "the stand-in did the work twice"
    );
    stop(agent);
}

/// FRR's reload fails for the new configuration: the previous file is put
/// back and reloaded, the error says so, CONFIG_DB is at the desired state;
/// once the reload works the new file is installed.
#[test]
fn a_failing_frr_reload_is_rolled_back_and_retried() {
    let (lab, mut model) = lab(
        StandInOptions::random(0xfa07, Duration::from_millis(20)),
        |t| t,
    );
    let (agent, _) = start(&lab, &mut model);
    let old = lab.frr_conf().unwrap();
    ride_out(
        &lab,
        &agent,
        &mut model,
        &Scenario {
            name: "reload fails",
            // frr-reload refuses any configuration with the new VRF.
            inject: &|lab| std::fs::write(lab.path("reload-fail"), "vrf Vrf104011").unwrap(),
            moves: &[("Ethernet4", "vrf104011")],
            needle: "roll-back: the previous configuration was restored",
            while_broken: &|lab, agent, _| {
                assert_status_and_metrics(lab, agent, "reloading FRR with");
                assert_eq!(lab.frr_conf().unwrap(), old, "rolled back");
            },
            heal: &|lab| std::fs::remove_file(lab.path("reload-fail")).unwrap(),
        },
    );
    assert!(lab.frr_conf().unwrap().contains("vrf Vrf104011"));
    stop(agent);
}

/// FRR's reload hangs: `frr_reload_timeout` cuts it off, the previous file
/// is put back; the next reconcile installs the new one.
#[test]
fn a_hanging_frr_reload_is_cut_off_and_rolled_back() {
    let (lab, mut model) = lab(
        StandInOptions::random(0xfa08, Duration::from_millis(20)),
        |t| t,
    );
    let (agent, _) = start(&lab, &mut model);
    let old = lab.frr_conf().unwrap();
    let reloads = lab.reloads().len();
    ride_out(
        &lab,
        &agent,
        &mut model,
        &Scenario {
            name: "reload hangs",
            inject: &|lab| std::fs::write(lab.path("reload-hang"), "").unwrap(),
            moves: &[("Ethernet4", "vrf104011")],
            needle: "did not finish within 2s",
            while_broken: &|lab, _, e| {
                assert!(e.contains("frr_reload_timeout"), "{e}");
                assert!(
                    e.contains("the previous configuration was restored and reloaded"),
                    "{e}"
                );
                // The hung reload logged nothing; the next one is the
                // roll-back's, of the previous file.
                let log = lab.reloads();
                assert_eq!(
                    log.get(reloads),
                    Some(&format!("reloaded {}", support::lab::cksum(&old))),
                    "{log:?}"
                );
            },
            heal: &|_| {},
        },
    );
    stop(agent);
}

/// The BGP neighbour state file is garbage, then stale (older than an
/// hour): the agent goes on reconciling, and reports no BGP states instead
/// of wrong ones; a fresh file is reported again.
#[test]
fn a_garbage_or_stale_bgp_state_file_is_not_reported() {
    let bgp = std::env::temp_dir().join(format!("msd-bgp-{}.json", std::process::id()));
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/frr/bgp-neighbors-sonic.json"),
    )
    .unwrap();
    std::fs::write(&bgp, &fixture).unwrap();
    let path = bgp.display().to_string();
    let (lab, mut model) = lab(
        StandInOptions::random(0xfa09, Duration::from_millis(20)),
        |t| {
            t.replace(
                "bgp_neighbor_state_file = \"\"",
                &format!("bgp_neighbor_state_file = {path:?}"),
            )
        },
    );
    let (agent, _) = start(&lab, &mut model);
    let has_bgp = |r: &Value| {
        r.get("bgpPortStates")
            .is_some_and(|b| b.as_object().is_some_and(|o| !o.is_empty()))
    };
    wait_for("a heartbeat with BGP states", HANG, &agent, || {
        lab.heartbeat_after(0, |r| no_error(r) && has_bgp(r))
    });
    for (name, make) in [
        (
            "garbage",
            Box::new(|| std::fs::write(&bgp, "{\"default\": <html>").unwrap()) as Box<dyn Fn()>,
        ),
        (
            "stale",
            Box::new(|| {
                std::fs::write(&bgp, &fixture).unwrap();
                let out = std::process::Command::new("touch")
                    .args(["-d", "2 hours ago"])
                    .arg(&bgp)
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }),
        ),
    ] {
        make();
        let after = lab.last_seq();
        let hb = wait_for(
            &format!("a heartbeat after the {name} file"),
            HANG,
            &agent,
            || lab.heartbeat_after(after, |r| no_error(r) && !has_bgp(r)),
        );
        assert!(
            no_error(&hb.request),
            "{name}: the reconcile is not affected"
        );
        eprintln!("{name} BGP file: heartbeat without bgpPortStates, no error");
        std::fs::write(&bgp, &fixture).unwrap();
        let after = lab.last_seq();
        wait_for("BGP states reported again", HANG, &agent, || {
            lab.heartbeat_after(after, |r| no_error(r) && has_bgp(r))
        });
    }
    stop(agent);
    let _ = std::fs::remove_file(&bgp);
}

/// A tmpfs mounted for the test; unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        support::process::succeeded(
            std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir),
            "mount tmpfs (needs root)",
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}

/// The frr.conf directory is full: the install fails with ENOSPC before
/// anything is replaced, frr.conf stays the complete previous file, no
/// temporary file is left; once there is space the new file goes in.
#[test]
fn a_full_disk_leaves_the_previous_frr_conf_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let frr_dir = tmp.path().join("frr");
    let fs = Tmpfs::mount(&frr_dir, "256k");
    let conf = frr_dir.join("frr.conf");
    let (lab, mut model) = lab(
        StandInOptions::random(0xfa0a, Duration::from_millis(20)),
        |t| {
            let mut table: toml::Table = toml::from_str(&t).unwrap();
            table.insert("frr_config".into(), conf.display().to_string().into());
            toml::to_string(&table).unwrap()
        },
    );
    let (agent, _) = start(&lab, &mut model);
    let old = std::fs::read_to_string(&conf).unwrap();
    // Fill the file system.
    let filler = frr_dir.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let after = lab.last_seq();
    let expected = change(&lab, &mut model, &doc(&[("Ethernet4", "vrf104011")]));
    let hb = lab.wait_error(&agent, after, "No space left on device");
    eprintln!("full disk: heartbeat error: {}", hb.request["error"]);
    assert_status_and_metrics(&lab, &agent, "No space left on device");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        old,
        "frr.conf changed"
    );
    let temps: Vec<String> = std::fs::read_dir(&frr_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "frr.conf" && n != "filler")
        .collect();
    assert!(temps.is_empty(), "left behind: {temps:?}");
    // CONFIG_DB went ahead (it comes before FRR).
    lab.sw.settle();
    model::assert_matches(&model, &expected, &lab.sw.dump(CONFIG_DB), "full disk");
    std::fs::remove_file(&filler).unwrap();
    let after = lab.last_seq();
    lab.wait_converged(&agent, after, "the install after the disk has space");
    let new = std::fs::read_to_string(&conf).unwrap();
    assert!(new.contains("vrf Vrf104011"), "{new}");
    assert_eq!(lab.reloaded().unwrap(), new, "FRR runs the new file");
    support::assert_no_violations(&lab.sw);
    stop(agent);
    drop(fs);
}

/// Issue 20 item 4: frr.conf changed or deleted under the agent (an
/// operator's edit; SONiC's `split` mode deletes it at every start of the
/// bgp container) is noticed without a change of the desired state and
/// installed again through validation, install and reload; each repair is
/// counted (`metal_switchd_drift_repairs_total{source="frr"}`, the status
/// file's drift record). Failed on main before the change: nothing noticed
/// it while the desired state stayed the same (a reconcile where nothing
/// changed renders and installs nothing).
#[test]
fn frr_conf_changed_or_deleted_under_the_agent_is_installed_again() {
    let (lab, mut model) = lab(StandInOptions::uniform(Duration::from_millis(1)), |t| t);
    let (agent, _) = start(&lab, &mut model);
    let installed = lab.frr_conf().expect("frr.conf installed");
    let desired_fetches = || lab.server.records_of(Call::V2Get).len();
    for (n, (what, damage)) in [
        (
            "an operator's edit",
            Box::new(|p: &std::path::Path| {
                let mut t = std::fs::read_to_string(p).unwrap();
                t.push_str("ip route 10.99.0.0/16 Null0\n");
                std::fs::write(p, t).unwrap();
            }) as Box<dyn Fn(&std::path::Path)>,
        ),
        (
            "deleted (split mode)",
            Box::new(|p: &std::path::Path| std::fs::remove_file(p).unwrap()),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let reloads = lab.reloads().len();
        damage(&lab.path("frr.conf"));
        wait_for(
            &format!("frr.conf {what}: installed again"),
            HANG,
            &agent,
            || {
                (lab.frr_conf().as_deref() == Some(installed.as_str())
                    && lab.reloads().len() > reloads
                    && lab.reloaded().as_deref() == Some(installed.as_str()))
                .then_some(())
            },
        );
        let repairs = (n + 1) as f64;
        wait_for("the repair in the metrics", HANG, &agent, || {
            metric(
                &lab.metrics(),
                "metal_switchd_drift_repairs_total",
                "source=\"frr\"",
            )
            .is_some_and(|v| v == repairs)
            .then_some(())
        });
        wait_for("the repair in the status file", HANG, &agent, || {
            let s = lab.status();
            (s["drift"]["repairs"]["frr"] == n as u64 + 1 && s["drift"]["last"]["source"] == "frr")
                .then_some(())
        });
    }
    // The desired state never changed: the API still serves the first one.
    assert!(desired_fetches() >= 1);
    assert!(
        lab.frr_temp_files().is_empty(),
        "{:?}",
        lab.frr_temp_files()
    );
    stop(agent);
}

/// Issue 20: the flavour is detected at start (status file, metrics) and
/// again on SIGHUP. A switch whose `docker_routing_config_mode` becomes
/// `unified` (SONiC then generates frr.conf itself) is refused at every
/// reconcile with a message naming the setting, and nothing is written —
/// not even a change of the desired state made meanwhile; back in `split`
/// (and SIGHUP) that change is applied.
#[test]
fn a_routing_config_mode_in_which_sonic_writes_frr_conf_is_refused_by_name() {
    let (lab, mut model) = lab(StandInOptions::uniform(Duration::from_millis(1)), |t| t);
    let (agent, _) = start(&lab, &mut model);
    wait_for("the flavour in the status file", HANG, &agent, || {
        let s = lab.status();
        (s["flavour"]["name"] == "dell-enterprise 4.5.1").then_some(())
    });
    let m = lab.metrics();
    assert!(
        m.contains("family=\"dell-enterprise\",release=\"4.5.1\"")
            && m.contains("routing_config_mode=\"split\"")
            && m.contains("refused=\"false\""),
        "{m}"
    );
    let set_mode = |mode: &str| {
        write_entries(
            &lab.sw.redis,
            CONFIG_DB,
            &[(
                "DEVICE_METADATA|localhost".to_owned(),
                vec![("docker_routing_config_mode".to_owned(), mode.to_owned())],
            )],
        )
        .unwrap();
    };
    set_mode("unified");
    let after = lab.last_seq();
    agent.signal("HUP");
    let hb = lab.wait_error(&agent, after, "docker_routing_config_mode");
    let e = hb.request["error"].as_str().unwrap().to_owned();
    assert!(
        e.contains("is `unified`") && e.contains("DEVICE_METADATA|localhost"),
        "{e}"
    );
    assert!(
        e.contains("split-unified") && e.contains("nothing was written"),
        "{e}"
    );
    wait_for("the refusal in the status file", HANG, &agent, || {
        lab.status()["flavour"]["refused"].is_string().then_some(())
    });
    assert!(lab.metrics().contains("refused=\"true\""));
    // A change of the desired state is not applied while refused.
    let before = lab.sw.dump(CONFIG_DB);
    let frr_before = lab.frr_conf();
    let expected = change(&lab, &mut model, &doc(&[("Ethernet4", "vrf104011")]));
    let after = lab.last_seq();
    lab.wait_error(&agent, after, "docker_routing_config_mode");
    lab.sw.settle();
    assert_eq!(lab.sw.dump(CONFIG_DB), before, "written while refused");
    assert_eq!(lab.frr_conf(), frr_before);
    // Back in split mode: detected on SIGHUP, the change is applied.
    set_mode("split");
    agent.signal("HUP");
    assert_recovered(
        &lab,
        &agent,
        &model,
        &expected,
        lab.last_seq(),
        "split again",
    );
    assert!(lab.frr_conf().unwrap().contains("vrf Vrf104011"));
    stop(agent);
}

/// Bytes that are not UTF-8 in SONiC's redis (issue "Security and
/// robustness, second round", item 3; `HSET "VLAN|Vlan3900" description
/// "caf\xe9"` once made every read fail): present before the start (the
/// start-up read, the flavour's DEVICE_METADATA, ASIC_DB's bridge-port
/// listing) and arriving while the agent runs (keyspace notifications of a
/// foreign value and of a key name that is not UTF-8). The agent converges,
/// leaves foreign bytes as they are, repairs an owned field that holds such
/// bytes as CONFIG_DB drift, counts every entry in
/// `metal_switchd_undecodable_entries_total`, logs them escaped, and a
/// change of the desired state made afterwards is applied.
#[test]
fn bytes_that_are_not_utf8_in_sonics_redis_never_stop_the_agent() {
    // The timer never fires during the test: repairs come from notifications
    // (drift), the desired-state change from SIGHUP.
    let mut foreign = support::NOT_UTF8.to_vec();
    foreign.push((
        CONFIG_DB,
        b"DEVICE_METADATA|localhost",
        b"comment",
        b"caf\xe9",
    ));
    let (lab, mut model) = lab_seeded(
        StandInOptions::random(0xb17e, Duration::from_millis(5)),
        |sw| {
            for &(db, k, f, v) in &foreign {
                sw.hset_raw(db, k, f, v);
            }
        },
        |t| {
            t.replace(
                "reconfigure_switch_interval = \"1s\"",
                "reconfigure_switch_interval = \"1h\"",
            )
        },
    );
    let (agent, _) = start(&lab, &mut model);
    // The flavour read DEVICE_METADATA|localhost past its bad bytes.
    let m = wait_for("the flavour in the metrics", HANG, &agent, || {
        let m = lab.metrics();
        m.contains("metal_switchd_sonic_flavour_info{").then_some(m)
    });
    assert!(m.contains("routing_config_mode=\"split\""), "{m}");
    let undecodable = |m: &str, db: &str, handling: &str| {
        metric(
            m,
            "metal_switchd_undecodable_entries_total",
            &format!("db=\"{db}\",handling=\"{handling}\""),
        )
        .unwrap_or(0.0)
    };
    // The bridge ports are listed after the start-up read.
    let m = wait_for("the bridge-port listing counted", HANG, &agent, || {
        let m = lab.metrics();
        (undecodable(&m, "ASIC_DB", "skipped") >= 2.0).then_some(m)
    });
    assert!(undecodable(&m, "CONFIG_DB", "skipped") >= 1.0, "{m}");
    assert!(undecodable(&m, "CONFIG_DB", "kept") >= 1.0, "{m}");
    assert!(undecodable(&m, "STATE_DB", "skipped") >= 1.0, "{m}");
    assert!(undecodable(&m, "COUNTERS_DB", "kept") >= 1.0, "{m}");

    // While it runs: a foreign value, a key name, and an owned field (the
    // MTU of managed Ethernet0; the agent's is 9216).
    let skipped = undecodable(&m, "CONFIG_DB", "skipped");
    let kept = undecodable(&m, "CONFIG_DB", "kept");
    lab.sw
        .hset_raw(CONFIG_DB, b"VLAN|Vlan3900", b"description", b"th\xe9");
    lab.sw
        .hset_raw(CONFIG_DB, b"VLAN|Vlan39\xff03", b"vlanid", b"3903");
    lab.sw
        .hset_raw(CONFIG_DB, b"PORT|Ethernet0", b"mtu", b"92\xe916");
    wait_for("the owned MTU written again", HANG, &agent, || {
        (lab.sw
            .hget_raw(CONFIG_DB, b"PORT|Ethernet0", b"mtu")
            .as_deref()
            == Some(&b"9216"[..]))
        .then_some(())
    });
    let m = wait_for(
        "the repair and the notifications counted",
        HANG,
        &agent,
        || {
            let m = lab.metrics();
            (metric(
                &m,
                "metal_switchd_drift_repairs_total",
                "source=\"configdb\"",
            )
            .is_some_and(|v| v >= 1.0)
                && undecodable(&m, "CONFIG_DB", "skipped") > skipped
                && undecodable(&m, "CONFIG_DB", "kept") >= kept + 2.0)
                .then_some(m)
        },
    );
    let status = lab.status();
    assert_eq!(
        status["drift"]["last"]["what"], "PORT|Ethernet0",
        "{status}\n{m}"
    );
    let log = std::fs::read(lab.path("agent.log")).unwrap();
    let text = String::from_utf8_lossy(&log);
    for shown in [
        r#"key="VLAN|Vlan3900" field="description" value="caf\xe9""#,
        r#"key="VLAN|Vlan3900" field="description" value="th\xe9""#,
        r#"key="VLAN|Vlan39\xff03""#,
        r#"key="PORT|Ethernet0" field="mtu" value="92\xe916""#,
        r#"key="ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:oid:0x3a0000000000bad" value="oid:\xff""#,
        r#"key="DEVICE_METADATA|localhost" field="comment" value="caf\xe9""#,
    ] {
        assert!(text.contains(shown), "the log lacks {shown}:\n{text}");
    }
    assert!(!text.contains('\u{fffd}'), "raw bytes in the log:\n{text}");

    // Nothing is lost: a change of the desired state is applied. (The
    // foreign writes above are part of the switch's baseline now.)
    let now = lab.sw.dump(CONFIG_DB);
    for k in ["VLAN|Vlan3900", "VLAN|Vlan39\u{fffd}03"] {
        model.baseline.insert(k.to_owned(), now[k].clone());
    }
    let expected = change(&lab, &mut model, &doc(&[("Ethernet4", "vrf104011")]));
    let after = lab.last_seq();
    agent.signal("HUP");
    assert_recovered(&lab, &agent, &model, &expected, after, "after the bytes");
    for &(db, k, f, v) in foreign.iter().filter(|e| e.1 != b"VLAN|Vlan3900") {
        assert_eq!(
            lab.sw.hget_raw(db, k, f).as_deref(),
            Some(v),
            "{k:?} changed"
        );
    }
    assert_eq!(
        lab.sw
            .hget_raw(CONFIG_DB, b"VLAN|Vlan3900", b"description")
            .as_deref(),
        Some(&b"th\xe9"[..])
    );
    stop(agent);
}
