//! Bytes SONiC allows that are not UTF-8 (issue "Security and robustness,
//! second round", item 3): `HSET "VLAN|Vlan3900" description "caf\xe9"`
//! and its kin in every database the agent reads never stop it. Foreign
//! entries stay as they are in redis, byte for byte; an owned field holding
//! such bytes is written again with the desired value; every such entry is
//! logged with its bytes escaped (`\xe9`, never raw) and counted.
//!
//! The real `metal-switchd apply --once` against a real redis-server with
//! the SONiC stand-in (the daemon's notification paths, the bridge-port
//! listing and the metric are in `tests/faults.rs`,
//! `bytes_that_are_not_utf8_in_sonics_redis_never_stop_the_agent`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use metal_switchd_lab::redis_server::{APPL_DB, CONFIG_DB};
use metal_switchd_lab::sonic::StandInOptions;
use support::{RawEntry, Switch, apply_once, output_text};

/// [`support::NOT_UTF8`] and a field of an APPL_DB entry the agent reads
/// (its VRF's confirmation).
fn foreign() -> Vec<RawEntry> {
    let mut all = support::NOT_UTF8.to_vec();
    all.push((APPL_DB, b"VRF_TABLE:Vrf104009", b"note", b"\xc0"));
    all
}

/// Whether `hay` holds the bytes `needle`.
fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `apply --once` on a switch whose databases hold bytes that are not
/// UTF-8 everywhere the start-up read looks, and an owned field (the MTU of
/// managed Ethernet0) holding such bytes: it converges, repairs the owned
/// field (one write), leaves every foreign entry as it was byte for byte,
/// and logs each entry escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_once_reads_past_bytes_that_are_not_utf8_and_repairs_the_owned_field() {
    let (sw, _) = Switch::leaf01_applied(StandInOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = sw.config_file(dir.path(), "");
    let switch = dir.path().join("leaf01.v1.json");
    std::fs::write(&switch, metal_switchd_lab::fixtures::LEAF01_SWITCH_V1).unwrap();
    // The APPL_DB entry the agent reads exists (SONiC confirmed the VRF).
    assert!(
        sw.dump(APPL_DB).contains_key("VRF_TABLE:Vrf104009"),
        "{:?}",
        sw.dump(APPL_DB).keys().collect::<Vec<_>>()
    );
    let foreign = foreign();
    for &(db, key, field, value) in &foreign {
        sw.hset_raw(db, key, field, value);
    }
    // An owned field: the MTU of a managed port (the agent's is 9216).
    sw.hset_raw(CONFIG_DB, b"PORT|Ethernet0", b"mtu", b"92\xe916");
    sw.reset_writes();

    let o = apply_once(&config, &switch, "10s");
    println!("{}", output_text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    sw.settle();
    assert_eq!(
        sw.hget_raw(CONFIG_DB, b"PORT|Ethernet0", b"mtu").as_deref(),
        Some(&b"9216"[..]),
        "the owned field is written again: {}",
        output_text(&o)
    );
    assert_eq!(
        sw.agent_writes(),
        1,
        "one HSET, nothing else: {}",
        output_text(&o)
    );
    for &(db, key, field, value) in &foreign {
        assert_eq!(
            sw.hget_raw(db, key, field).as_deref(),
            Some(value),
            "db {db} {key:?} {field:?} changed"
        );
    }

    // Logged escaped and named; never the raw bytes.
    let stderr = String::from_utf8_lossy(&o.stderr);
    for shown in [
        r#"key="VLAN|Vlan3900" field="description" value="caf\xe9""#,
        r#"key="VLAN_INTERFACE|Vlan3900" field="note\xff""#,
        r#"key="VLAN|Vlan39\xff01""#,
        r#"key="VLAN_TABLE|Vlan39\xff02""#,
        r#"key="VLAN_TABLE|Vlan3900" field="x" value="\xfe\xfe""#,
        r#"db="APPL_DB" key="VRF_TABLE:Vrf104009" field="note" value="\xc0""#,
        r#"db="COUNTERS_DB" key="COUNTERS_PORT_NAME_MAP" field="Ethernet\xff" value="oid:0x\xfe""#,
        r#"key="PORT|Ethernet0" field="mtu" value="92\xe916""#,
    ] {
        assert!(stderr.contains(shown), "stderr lacks {shown}:\n{stderr}");
    }
    for (_, _, _, value) in &foreign {
        if std::str::from_utf8(value).is_err() {
            assert!(
                !holds(&o.stderr, value),
                "raw bytes {value:?} in the log:\n{stderr}"
            );
        }
    }
    assert!(!stderr.contains('\u{fffd}'), "{stderr}");
    support::assert_no_violations(&sw);
}
