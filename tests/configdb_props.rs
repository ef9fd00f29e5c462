//! Property test against a real redis with the SONiC stand-in: random
//! sequences of desired states over mini-lab leaf01 plus foreign and static
//! objects. After every apply: SONiC saw no order that would crash or wedge
//! it, every key the agent does not own is byte-identical, the owned part
//! equals the target, and applying the same state again writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;

use metal_switchd::spec::{AdminStatus, FilterDesc, NicDesc, SwitchDesc};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::seed::{Entry, SeedOptions};
use metal_switchd_lab::sonic::StandInOptions;
use proptest::prelude::*;
use support::*;

const PORTS: usize = 12;

fn entry(key: &str, fields: &[(&str, &str)]) -> Entry {
    (
        key.into(),
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn foreign() -> Vec<Entry> {
    vec![
        entry("VRF|VrfMpls", &[("vni", "5000")]),
        entry("INTERFACE|Ethernet100", &[("vrf_name", "VrfMpls")]),
        entry("VRF|Vrf42", &[("vni", "42")]),
        entry("VLAN|Vlan1500", &[("vlanid", "1500")]),
        entry("VLAN_INTERFACE|Vlan1500", &[("vrf_name", "Vrf42")]),
        entry(
            "VXLAN_TUNNEL_MAP|vtep0|map_42_Vlan1500",
            &[("vlan", "Vlan1500"), ("vni", "42")],
        ),
        entry("VLAN|Vlan1001", &[("vlanid", "1001")]),
        entry(
            "VLAN_MEMBER|Vlan1001|Ethernet101",
            &[("tagging_mode", "untagged")],
        ),
    ]
}

fn desc() -> impl Strategy<Value = SwitchDesc> {
    let role = prop_oneof![
        2 => Just(None),
        1 => Just(Some("default".to_string())),
        4 => (0u32..3).prop_map(|i| Some(format!("vrf{}", 200 + i))),
    ];
    let admin = prop_oneof![
        Just(None),
        Just(Some(AdminStatus::Up)),
        Just(Some(AdminStatus::Down))
    ];
    prop::collection::vec((role, admin), PORTS).prop_map(|nics| SwitchDesc {
        id: "leaf01".into(),
        nics: nics
            .into_iter()
            .enumerate()
            .map(|(i, (vrf, admin))| NicDesc {
                name: format!("Ethernet{i}"),
                filter: FilterDesc {
                    cidrs: if vrf.is_some() {
                        vec![format!("10.{i}.0.0/24")]
                    } else {
                        vec![]
                    },
                    vnis: vec![],
                },
                vrf,
                admin,
            })
            .collect(),
    })
}

fn managed(port: &str) -> bool {
    port.strip_prefix("Ethernet")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n < PORTS || n == 120 || n == 124)
}

/// Whether the agent may own `key` in this test: managed ports' INTERFACE
/// and PXE membership, the tenant VRFs Vrf200..202, their VLANs (allocated
/// from 1002 on: 1001 and 1500 are taken) and maps.
fn agents(key: &str) -> bool {
    let (table, rest) = key.split_once('|').unwrap_or((key, ""));
    let tenant_vlan = |name: &str| {
        name.strip_prefix("Vlan")
            .and_then(|v| v.parse::<u16>().ok())
            .is_some_and(|v| (1002..=1010).contains(&v))
    };
    match table {
        "INTERFACE" => managed(rest),
        "VLAN_MEMBER" => {
            let (vlan, port) = rest.split_once('|').unwrap_or((rest, ""));
            (vlan == "Vlan3900" && managed(port)) || tenant_vlan(vlan)
        }
        "VRF" => ["Vrf200", "Vrf201", "Vrf202"].contains(&rest),
        "VLAN" | "VLAN_INTERFACE" | "SUPPRESS_VLAN_NEIGH" => tenant_vlan(rest),
        "VXLAN_TUNNEL_MAP" => rest.contains("|map_20"),
        _ => false,
    }
}

/// The dump without what the agent may own (and without the `mtu` and
/// `admin_status` fields of managed ports).
fn not_owned(dump: &Dump) -> BTreeMap<String, BTreeMap<String, String>> {
    dump.iter()
        .filter(|(k, _)| !agents(k))
        .map(|(k, v)| {
            let mut v = v.clone();
            if k.strip_prefix("PORT|").is_some_and(managed) {
                v.remove("mtu");
                v.remove("admin_status");
            }
            (k.clone(), v)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_reach_the_target_touch_nothing_foreign_and_repeat_as_no_ops(
        states in prop::collection::vec(desc(), 1..4)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let sw = Switch::new(
            fixtures::LEAF01_CONFIG,
            Some(fixtures::MINI_LAB_PORT_MAP),
            &foreign(),
            SeedOptions::default(),
            Some(StandInOptions::default()),
        );
        let cfg = sw.config("static_vrfs = [\"Vrf42\"]");
        let before = not_owned(&sw.dump(CONFIG_DB));
        for desc in &states {
            let applied = rt.block_on(sw.apply(&cfg, desc)).map_err(|e| TestCaseError::fail(e.summary()))?;
            sw.settle();
            prop_assert!(sw.violations().is_empty(), "SONiC would break: {:?}\n{}", sw.violations(), applied.plan);
            prop_assert_eq!(&before, &not_owned(&sw.dump(CONFIG_DB)), "a key the agent does not own changed");
            let dump = sw.dump(CONFIG_DB);
            for (key, want) in &metal_switchd::configdb::target::target(&applied.spec).entries {
                let have = dump.get(&key.redis_key());
                prop_assert!(have.is_some(), "{} missing", key);
                for (f, v) in &want.fields {
                    prop_assert_eq!(have.and_then(|h| h.get(f)), Some(v));
                }
            }
            sw.redis.reset_stats().unwrap();
            let again = rt.block_on(sw.apply(&cfg, desc)).map_err(|e| TestCaseError::fail(e.summary()))?;
            let report = &again.report;
            sw.settle();
            prop_assert!(again.plan.is_empty(), "{}", again.plan);
            prop_assert_eq!(report.stats.keys_written, 0);
            prop_assert_eq!(sw.writes(), 0, "the repeated apply wrote");
        }
    }
}
