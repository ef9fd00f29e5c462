//! The SONiC stand-in itself: `settle()` returns only once the daemons'
//! queues are empty, so tests that read what SONiC did after it see all
//! of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use metal_switchd_lab::redis_server::{CONFIG_DB, STATE_DB};
use metal_switchd_lab::sonic::StandInOptions;
use support::Switch;

/// Writes straight into CONFIG_DB (no agent), then one `settle()`: every
/// VLAN written is processed by then, with slow daemons, notifications that
/// arrive late, and no pause between the write and the call.
#[test]
fn settle_waits_until_every_notification_is_processed() {
    // Each notification reaches the daemons 2 ms late: a settle that does
    // not wait for what is still on its way returns too early.
    let sw = Switch::leaf01(StandInOptions {
        notification_lag: Duration::from_millis(2),
        ..StandInOptions::uniform(Duration::from_millis(20))
    });
    let mut c = sw.redis.connection(CONFIG_DB).unwrap();
    let vids: Vec<u16> = (2100..2300).collect();
    let mut tx = redis::pipe();
    tx.atomic();
    for v in &vids {
        tx.cmd("HSET")
            .arg(format!("VLAN|Vlan{v}"))
            .arg("vlanid")
            .arg(v.to_string());
    }
    tx.query::<()>(&mut c).unwrap();
    sw.standin().settle(Duration::from_secs(60)).unwrap();
    let events = sw.standin().events();
    let state = sw.dump(STATE_DB);
    let missing: Vec<u16> = vids
        .iter()
        .copied()
        .filter(|v| {
            !events.iter().any(|e| e.what == format!("set VLAN|Vlan{v}"))
                || !state.contains_key(&format!("VLAN_TABLE|Vlan{v}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "settle() returned before {} of {} VLANs were processed: {missing:?}",
        missing.len(),
        vids.len()
    );
    // Nothing is left to do, so settling again returns at once.
    sw.standin().settle(Duration::from_secs(60)).unwrap();
}

/// A paused SONiC never settles: the error says what is left.
#[test]
fn settle_names_what_is_left_when_the_daemons_are_stuck() {
    let sw = Switch::leaf01(StandInOptions::uniform(Duration::from_millis(1)));
    sw.standin().pause();
    let mut c = sw.redis.connection(CONFIG_DB).unwrap();
    redis::cmd("HSET")
        .arg("VLAN|Vlan2500")
        .arg("vlanid")
        .arg("2500")
        .query::<()>(&mut c)
        .unwrap();
    let e = sw
        .standin()
        .settle(Duration::from_millis(500))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 notification(s)"), "{e}");
    assert!(e.contains("the daemons are paused"), "{e}");
    sw.standin().resume();
    sw.standin().settle(Duration::from_secs(60)).unwrap();
    assert!(sw.dump(STATE_DB).contains_key("VLAN_TABLE|Vlan2500"));
}
