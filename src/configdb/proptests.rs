//! Property tests of the pure planner.
//!
//! A base CONFIG_DB with foreign and static objects; random sequences of
//! desired states; before each plan the agent's own entries may be corrupted
//! (changed fields, stray fields, wrong bindings, wrong VNIs). For every step:
//! the plan breaks no SONiC ordering rule, simulating it reaches the target,
//! planning again is empty, and nothing the agent does not own changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::configdb::confirmed::Confirmed;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::confirmed::rif_field_key;
use super::confirms::Db;
use super::diff::Op;
use super::plan::Plan;
use super::rules::check_rules;
use super::schema::{DbState, Fields, Key, Table};
use super::testkit::sonic_confirms;
use super::view::Touched;
use crate::config::Config;
use crate::reconcile::{Prepared, prepare};
use crate::spec::{AdminStatus, FilterDesc, NicDesc, SwitchDesc};

const MANAGED: usize = 10;

fn f(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A leaf with 12 ports, a VTEP, the PXE VLAN, and foreign/static objects.
fn base() -> DbState {
    let mut s = DbState::new();
    for i in 0..12 {
        s.insert(
            Key::port(&format!("Ethernet{i}")),
            f(&[
                ("lanes", &i.to_string()),
                ("alias", &format!("Eth{i}")),
                ("mtu", "9100"),
                ("admin_status", "up"),
                ("speed", "25000"),
            ]),
        );
    }
    s.insert(
        Key::new(Table::VxlanTunnel, "vtep0"),
        f(&[("src_ip", "10.0.0.11")]),
    );
    s.insert(
        Key::new(Table::VxlanEvpnNvo, "nvo1"),
        f(&[("source_vtep", "vtep0")]),
    );
    s.insert(
        Key::vlan(3900),
        f(&[("vlanid", "3900"), ("dhcp_servers@", "10.0.0.21")]),
    );
    // foreign VRF (not Vrf<digits>) with a VNI, bound to the unmanaged Ethernet10
    s.insert(Key::vrf("VrfMpls"), f(&[("vni", "5000")]));
    s.insert(Key::interface("Ethernet10"), f(&[("vrf_name", "VrfMpls")]));
    // static VRF with its VLAN inside the tenant range and a map
    s.insert(Key::vrf("Vrf42"), f(&[("vni", "42")]));
    s.insert(Key::vlan(1500), f(&[("vlanid", "1500")]));
    s.insert(Key::vlan_interface(1500), f(&[("vrf_name", "Vrf42")]));
    s.insert(
        Key::vxlan_tunnel_map("vtep0", 42, 1500),
        f(&[("vlan", "Vlan1500"), ("vni", "42")]),
    );
    // an operator's VLAN inside the range with a member on an unmanaged port
    s.insert(Key::vlan(1001), f(&[("vlanid", "1001")]));
    s.insert(
        Key::vlan_member(1001, "Ethernet11"),
        f(&[("tagging_mode", "untagged")]),
    );
    s
}

fn config() -> Config {
    Config::from_sources(
        Some((
            "t.toml",
            "hostname = \"leaf01\"\npxe_vlan_id = 3900\nstatic_vrfs = [\"Vrf42\"]\n",
        )),
        Vec::new(),
    )
    .unwrap()
}

#[derive(Debug, Clone)]
enum Role {
    Pxe,
    Firewall,
    Tenant(u32),
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        2 => Just(Role::Pxe),
        1 => Just(Role::Firewall),
        4 => (0u32..4).prop_map(|i| Role::Tenant(100 + i)),
    ]
}

fn desc() -> impl Strategy<Value = SwitchDesc> {
    let admin = prop_oneof![
        Just(None),
        Just(Some(AdminStatus::Up)),
        Just(Some(AdminStatus::Down))
    ];
    let cidr = prop::sample::select(vec![
        "10.0.0.0/24",
        "10.0.1.0/24",
        "2001:db8::/48",
        "192.168.0.1/32",
    ]);
    prop::collection::vec((role(), admin, prop::collection::vec(cidr, 0..3)), MANAGED).prop_map(
        |nics| SwitchDesc {
            id: "leaf01".into(),
            nics: nics
                .into_iter()
                .enumerate()
                .map(|(i, (role, admin, cidrs))| NicDesc {
                    name: format!("Ethernet{i}"),
                    vrf: match role {
                        Role::Pxe => None,
                        Role::Firewall => Some("default".into()),
                        Role::Tenant(v) => Some(format!("vrf{v}")),
                    },
                    filter: FilterDesc {
                        cidrs: cidrs.into_iter().map(String::from).collect(),
                        vnis: vec!["100".into()],
                    },
                    admin,
                })
                .collect(),
        },
    )
}

/// Ways to corrupt the agent's own entries before planning.
#[derive(Debug, Clone)]
enum Corruption {
    StrayField(usize),
    TaggedMember(usize),
    RebindInterface(usize, u32),
    VrfVni(usize, u32),
    DropField(usize),
    /// A VXLAN map whose `vni` field no longer matches its name.
    MapVni(usize, u32),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        any::<usize>().prop_map(Corruption::StrayField),
        any::<usize>().prop_map(Corruption::TaggedMember),
        (any::<usize>(), 0u32..4).prop_map(|(i, v)| Corruption::RebindInterface(i, 100 + v)),
        (any::<usize>(), 6000u32..6003).prop_map(|(i, v)| Corruption::VrfVni(i, v)),
        any::<usize>().prop_map(Corruption::DropField),
        (any::<usize>(), 7000u32..7003).prop_map(|(i, v)| Corruption::MapVni(i, v)),
    ]
}

fn pick(state: &DbState, table: Table, i: usize) -> Option<Key> {
    let mut keys: Vec<Key> = state
        .table(table)
        .map(|(n, _)| Key::new(table, n))
        .collect();
    keys.sort();
    (!keys.is_empty()).then(|| keys[i % keys.len()].clone())
}

fn corrupt(state: &mut DbState, owned: &[Key], c: &Corruption) {
    let owned_in = |t: Table, i: usize| {
        let ks: Vec<&Key> = owned.iter().filter(|k| k.table == t).collect();
        (!ks.is_empty()).then(|| ks[i % ks.len()].clone())
    };
    match c {
        Corruption::StrayField(i) => {
            if !owned.is_empty() {
                let k = &owned[i % owned.len()];
                if k.table != Table::Port
                    && let Some(e) = state.get_mut(k)
                {
                    e.insert("stray".into(), "x".into());
                }
            }
        }
        Corruption::TaggedMember(i) => {
            if let Some(k) = owned_in(Table::VlanMember, *i)
                && let Some(e) = state.get_mut(&k)
            {
                e.insert("tagging_mode".into(), "tagged".into());
            }
        }
        Corruption::RebindInterface(i, vni) => {
            if let Some(k) = owned_in(Table::Interface, *i)
                && state.contains(&Key::vrf(&format!("Vrf{vni}")))
                && let Some(e) = state.get_mut(&k)
            {
                e.insert("vrf_name".into(), format!("Vrf{vni}"));
            }
        }
        Corruption::VrfVni(i, vni) => {
            if let Some(k) = owned_in(Table::Vrf, *i)
                && let Some(e) = state.get_mut(&k)
            {
                e.insert("vni".into(), vni.to_string());
            }
        }
        Corruption::MapVni(i, vni) => {
            if let Some(k) = owned_in(Table::VxlanTunnelMap, *i)
                && let Some(e) = state.get_mut(&k)
            {
                e.insert("vni".into(), vni.to_string());
            }
        }
        Corruption::DropField(i) => {
            if let Some(k) = pick(state, Table::SuppressVlanNeigh, *i)
                && let Some(e) = state.get_mut(&k)
            {
                e.clear();
                e.insert("NULL".into(), "NULL".into());
            }
        }
    }
}

/// Apply a plan to an in-memory CONFIG_DB the way redis executes it.
fn simulate(state: &mut DbState, plan: &Plan) {
    for phase in &plan.phases {
        for c in &phase.changes {
            match &c.op {
                Op::Create { fields } => {
                    assert!(!state.contains(&c.key), "{}: created but exists", c.key);
                    state.insert(c.key.clone(), fields.clone());
                }
                Op::Update { set, remove } => {
                    let e = state
                        .get_mut(&c.key)
                        .unwrap_or_else(|| panic!("{}: updated but missing", c.key));
                    e.extend(set.clone());
                    for r in remove {
                        e.remove(r);
                    }
                    if e.is_empty() {
                        state.remove(&c.key);
                    }
                }
                Op::Delete { .. } => {
                    assert!(
                        state.remove(&c.key).is_some(),
                        "{}: deleted but missing",
                        c.key
                    );
                }
            }
        }
    }
}

/// The part of the state the agent must never change.
fn foreign_view(state: &DbState, managed: &[String]) -> BTreeMap<Key, Fields> {
    state
        .iter()
        .filter(|(k, _)| {
            let agentish = matches!(
                k.table,
                Table::Interface
                    | Table::VlanMember
                    | Table::VlanInterface
                    | Table::SuppressVlanNeigh
                    | Table::VxlanTunnelMap
                    | Table::Vrf
                    | Table::Vlan
            );
            !agentish
                || k.name.contains("Mpls")
                || k.name.contains("42")
                || k.name.contains("1500")
                || k.name.contains("1001")
                || k.name == "Vlan3900"
                || k.name == "Ethernet10"
        })
        .map(|(k, v)| {
            let mut v = v.clone();
            if k.table == Table::Port && managed.contains(&k.name) {
                v.remove("mtu");
                v.remove("admin_status");
            }
            (k.clone(), v)
        })
        .collect()
}

fn check_step(state: &mut DbState, desc: &SwitchDesc) -> Result<Prepared, TestCaseError> {
    let cfg = config();
    let prepared = prepare(desc, &cfg, state, &Confirmed::assumed())
        .map_err(|p| TestCaseError::fail(p.to_string()))?;
    let broken = check_rules(&prepared.plan);
    prop_assert!(
        broken.is_empty(),
        "rules broken: {broken:?}\n{}",
        prepared.plan
    );
    let managed: Vec<String> = prepared.spec.ports.keys().cloned().collect();
    let before = foreign_view(state, &managed);
    simulate(state, &prepared.plan);
    prop_assert_eq!(
        &before,
        &foreign_view(state, &managed),
        "foreign entries changed\n{}",
        prepared.plan
    );
    for (key, want) in &super::target::target(&prepared.spec).entries {
        let have = state.get(key);
        prop_assert!(have.is_some(), "{} missing after the plan", key);
        for (f, v) in &want.fields {
            prop_assert_eq!(have.and_then(|h| h.get(f)), Some(v), "{} field {}", key, f);
        }
    }
    let again = prepare(desc, &cfg, state, &Confirmed::assumed())
        .map_err(|p| TestCaseError::fail(p.to_string()))?;
    prop_assert!(
        again.plan.is_empty(),
        "second plan not empty:\n{}",
        again.plan
    );
    Ok(prepared)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn plans_keep_the_rules_reach_the_target_and_touch_nothing_foreign(
        steps in prop::collection::vec((desc(), prop::collection::vec(corruption(), 0..3)), 1..5)
    ) {
        let mut state = base();
        for (desc, corruptions) in steps {
            let owned: Vec<Key> = {
                let cfg = config();
                let p = prepare(&desc, &cfg, &state, &Confirmed::assumed()).map_err(|p| TestCaseError::fail(p.to_string()))?;
                let own = super::owned::Ownership::new(&state, &p.spec);
                let mut owned: Vec<Key> = state.iter().filter(|(k, v)| own.owns(k.table, &k.name, v)).map(|(k, _)| k).collect();
                owned.sort();
                owned
            };
            for c in &corruptions {
                corrupt(&mut state, &owned, c);
            }
            check_step(&mut state, &desc)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The incremental path plans exactly what the full path plans, when
    /// CONFIG_DB holds the previous spec's target.
    #[test]
    fn the_incremental_plan_equals_the_full_plan(steps in prop::collection::vec(desc(), 2..5)) {
        let cfg = config();
        let mut state = base();
        let mut previous: Option<crate::spec::SwitchSpec> = None;
        for desc in steps {
            let prepared = prepare(&desc, &cfg, &state, &Confirmed::assumed()).map_err(|p| TestCaseError::fail(p.to_string()))?;
            if let Some(old) = &previous {
                let assumed = Confirmed::assumed();
                let delta = super::Planning::new(&prepared.spec, &state, &assumed).since(Some(old)).plan();
                prop_assert_eq!(&delta, &prepared.plan, "incremental:\n{}\nfull:\n{}", delta, prepared.plan);
                if *old == prepared.spec {
                    // The agent keeps the very spec when it did not change.
                    let kept = super::Planning::new(old, &state, &assumed).since(Some(old)).plan();
                    prop_assert_eq!(&kept, &prepared.plan);
                }
            }
            simulate(&mut state, &prepared.plan);
            previous = Some(prepared.spec);
        }
    }
}

#[test]
fn a_state_planned_against_itself_is_empty() {
    let mut state = base();
    let desc = SwitchDesc {
        id: "leaf01".into(),
        nics: (0..MANAGED)
            .map(|i| NicDesc {
                name: format!("Ethernet{i}"),
                vrf: Some(format!("vrf{}", 100 + i % 3)),
                ..NicDesc::default()
            })
            .collect(),
    };
    let first = check_step(&mut state, &desc).unwrap();
    assert!(!first.plan.is_empty());
    // Tenant VLANs avoid the operator's Vlan1001 and the static Vlan1500.
    let vlans: Vec<u16> = first.spec.vrfs.values().map(|v| v.vlan).collect();
    assert_eq!(vlans, [1002, 1003, 1004]);
}

#[test]
fn a_corrupted_map_is_replaced_before_its_vrf_takes_the_vni() {
    let mut state = base();
    let desc = SwitchDesc {
        id: "leaf01".into(),
        nics: vec![NicDesc {
            name: "Ethernet0".into(),
            vrf: Some("vrf100".into()),
            ..NicDesc::default()
        }],
    };
    check_step(&mut state, &desc).unwrap();
    // Corrupt the map's vni and the VRF's vni at once.
    state
        .get_mut(&Key::vxlan_tunnel_map("vtep0", 100, 1002))
        .unwrap()
        .insert("vni".into(), "7000".into());
    state
        .get_mut(&Key::vrf("Vrf100"))
        .unwrap()
        .insert("vni".into(), "7000".into());
    let p = check_step(&mut state, &desc).unwrap();
    let stages: Vec<_> = p.plan.phases.iter().map(|ph| ph.stage).collect();
    use super::plan::Stage::*;
    // The VRF lets go of VNI 7000 (confirmed) before the map that has it is
    // deleted: orchagent cannot remove a map whose VNI a VRF holds.
    assert_eq!(stages, [Detach, Unmap, Remap, Vrfs], "{}", p.plan);
}

/// A change under the agent after it converged: CONFIG_DB entries, SONiC's
/// markers, router interfaces.
#[derive(Debug, Clone)]
enum Drift {
    /// An owned entry deleted (never a PORT key).
    Delete(usize),
    /// An owned entry's fields changed.
    Corrupt(Corruption),
    /// A member of an owned tenant VLAN added on some port.
    StrayMember(usize, usize),
    /// A tenant-style VRF added by hand.
    StrayVrf(u32),
    /// The foreign VRF's VNI changed (cannot be narrowed).
    ForeignVrf,
    /// The STATE_DB / APPL_DB marker of an owned entry gone.
    MarkerGone(usize),
    /// A marker for an entry CONFIG_DB does not hold.
    MarkerStray(u32),
    /// A port's router interface gone.
    RifGone(usize),
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        3 => any::<usize>().prop_map(Drift::Delete),
        2 => corruption().prop_map(Drift::Corrupt),
        1 => (any::<usize>(), 0usize..12).prop_map(|(v, p)| Drift::StrayMember(v, p)),
        1 => (0u32..3).prop_map(|v| Drift::StrayVrf(200 + v)),
        1 => Just(Drift::ForeignVrf),
        2 => any::<usize>().prop_map(Drift::MarkerGone),
        1 => (0u32..3).prop_map(|v| Drift::MarkerStray(100 + v)),
        1 => (0usize..12).prop_map(Drift::RifGone),
    ]
}

/// The STATE_DB / APPL_DB marker of a CONFIG_DB entry (sonic-configdb
/// reference §4, as [`super::testkit::sonic_confirms`] writes them).
fn marker_of(key: &Key) -> Option<(Db, String)> {
    let table = match key.table {
        Table::Vrf => "VRF_TABLE",
        Table::Vlan => "VLAN_TABLE",
        Table::VlanMember => "VLAN_MEMBER_TABLE",
        Table::Interface | Table::VlanInterface => "INTERFACE_TABLE",
        Table::VxlanTunnelMap => {
            return Some((
                Db::Appl,
                format!("VXLAN_TUNNEL_MAP_TABLE:{}", key.name.replace('|', ":")),
            ));
        }
        _ => return None,
    };
    Some((Db::State, format!("{table}|{}", key.name)))
}

/// Apply one drift; the markers and router interfaces it changed go to
/// `touched` (CONFIG_DB's changes are found by comparing states).
fn apply_drift(
    state: &mut DbState,
    confirmed: &mut Confirmed,
    owned: &[Key],
    spec: &crate::spec::SwitchSpec,
    d: &Drift,
    touched: &mut Vec<Touched>,
) {
    let nth = |i: usize| (!owned.is_empty()).then(|| owned[i % owned.len()].clone());
    match d {
        Drift::Delete(i) => {
            if let Some(k) = nth(*i).filter(|k| k.table != Table::Port) {
                state.remove(&k);
            }
        }
        Drift::Corrupt(c) => corrupt(state, owned, c),
        Drift::StrayMember(v, p) => {
            let vlans: Vec<u16> = spec.vrfs.values().map(|v| v.vlan).collect();
            if !vlans.is_empty() {
                state.insert(
                    Key::vlan_member(vlans[v % vlans.len()], &format!("Ethernet{p}")),
                    f(&[("tagging_mode", "untagged")]),
                );
            }
        }
        Drift::StrayVrf(vni) => state.insert(
            Key::vrf(&format!("Vrf{vni}")),
            f(&[("vni", &vni.to_string())]),
        ),
        Drift::ForeignVrf => state.insert(Key::vrf("VrfMpls"), f(&[("vni", "5001")])),
        Drift::MarkerGone(i) => {
            if let Some((db, key)) = nth(*i).as_ref().and_then(marker_of) {
                confirmed.set(db, &key, None);
                touched.push(Touched::Marker(db, key));
            }
        }
        Drift::MarkerStray(vni) => {
            let key = format!("VRF_TABLE|Vrf{vni}");
            confirmed.set(Db::State, &key, Some(f(&[("state", "ok")])));
            touched.push(Touched::Marker(Db::State, key));
        }
        Drift::RifGone(p) => {
            let port = format!("Ethernet{p}");
            confirmed.set(Db::Counters, &rif_field_key(&port), None);
            touched.push(Touched::Rif(port));
        }
    }
}

/// The CONFIG_DB keys whose value differs between two states.
fn config_touched(a: &DbState, b: &DbState) -> Vec<Touched> {
    let mut keys: Vec<Touched> = a
        .iter()
        .filter(|(k, v)| b.get(k) != Some(*v))
        .chain(b.iter().filter(|(k, _)| !a.contains(k)))
        .map(|(k, _)| Touched::Config(k))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Issue 23: after the agent converged, drift (entries deleted, changed
    /// or added by hand, markers and router interfaces gone), a changed
    /// desired state and entries to re-assert are planned only where the
    /// touched keys reach — and that plan is exactly the full plan.
    #[test]
    fn a_plan_narrowed_to_the_touched_keys_equals_the_full_plan(
        first in desc(),
        second in desc(),
        change_desired in any::<bool>(),
        sonic in any::<bool>(),
        drifts in prop::collection::vec(drift(), 0..4),
        reassert in prop::option::of(any::<usize>()),
    ) {
        let cfg = config();
        let mut state = base();
        let p = prepare(&first, &cfg, &state, &Confirmed::assumed())
            .map_err(|p| TestCaseError::fail(p.to_string()))?;
        simulate(&mut state, &p.plan);
        let old = p.spec;
        let mut confirmed = if sonic { sonic_confirms(&state) } else { Confirmed::assumed() };
        // Converged: CONFIG_DB holds the target, SONiC confirmed it.
        prop_assert!(super::Planning::new(&old, &state, &confirmed).plan().is_empty());
        let owned: Vec<Key> = {
            let own = super::owned::Ownership::new(&state, &old);
            let mut owned: Vec<Key> = state
                .iter()
                .filter(|(k, v)| own.owns(k.table, &k.name, v))
                .map(|(k, _)| k)
                .collect();
            owned.sort();
            owned
        };
        let before = state.clone();
        let mut touched = Vec::new();
        for d in &drifts {
            apply_drift(&mut state, &mut confirmed, &owned, &old, d, &mut touched);
        }
        touched.extend(config_touched(&before, &state));
        touched.sort();
        touched.dedup();
        // The facts of the drifted state, updated from the touched keys,
        // are the facts read anew; a spec whose ports' re-check passes is
        // the spec built anew.
        let facts_before = crate::reconcile::prepare::local_facts(&cfg, &before);
        if let Ok(prev) = crate::spec::build(&first, &cfg, &facts_before) {
            let changed: Vec<Key> = touched
                .iter()
                .filter_map(|t| match t {
                    Touched::Config(k) => Some(k.clone()),
                    _ => None,
                })
                .collect();
            let mut facts = facts_before.clone();
            if let Some(ports) = super::facts::update_port_facts(&mut facts, &state, &changed) {
                prop_assert_eq!(&facts, &crate::reconcile::prepare::local_facts(&cfg, &state));
                if crate::spec::recheck_ports(&prev, &cfg, &facts, &ports) {
                    prop_assert_eq!(crate::spec::build(&first, &cfg, &facts), Ok(prev));
                }
            }
        }
        let desc = if change_desired { &second } else { &first };
        // An invalid desired state is never planned.
        let Ok(new) = crate::reconcile::prepare::spec(desc, &cfg, &state) else {
            return Ok(());
        };
        let reassert: Vec<Key> = reassert
            .filter(|_| !owned.is_empty())
            .map(|i| owned[i % owned.len()].clone())
            .into_iter()
            .collect();
        let reach = super::reach::Reach::of(
            &touched,
            &reassert,
            &old,
            &new,
            &state,
            confirmed.separators(),
        );
        // Only a change of a foreign VRF cannot be narrowed here.
        if !drifts.iter().any(|d| matches!(d, Drift::ForeignVrf)) {
            prop_assert!(reach.is_some(), "not narrowed: {:?}", touched);
        }
        // The entries a scope gives by name are the covered ones the agent
        // can own, as a walk of the table finds them.
        if let Some(scope) = reach {
            let own = super::owned::Ownership::new(&state, &new);
            for table in Table::ALL {
                let owned = |(n, f): &(&str, &Fields)| own.owns(table, n, f);
                let mut given: Vec<_> = scope.entries(&state, table);
                given.retain(owned);
                given.sort_by_key(|(n, _)| *n);
                let mut walked: Vec<_> = state
                    .table(table)
                    .filter(|(n, f)| scope.covers(table, n, f))
                    .collect();
                walked.retain(owned);
                walked.sort_by_key(|(n, _)| *n);
                prop_assert_eq!(given, walked, "{:?}", table);
            }
        }
        let full = super::Planning::new(&new, &state, &confirmed)
            .reasserting(&reassert)
            .plan();
        let narrowed = super::Planning::new(&new, &state, &confirmed)
            .since_touched(Some(&old), Some(&touched))
            .reasserting(&reassert)
            .plan();
        prop_assert_eq!(&narrowed, &full, "narrowed:\n{}\nfull:\n{}", narrowed, full);
        if new == old {
            // The agent keeps the very spec when it did not change: planned
            // from it, the same plan.
            let kept = super::Planning::new(&old, &state, &confirmed)
                .since_touched(Some(&old), Some(&touched))
                .reasserting(&reassert)
                .plan();
            prop_assert_eq!(&kept, &full, "kept:\n{}\nfull:\n{}", kept, full);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Issue 23: a document whose nics changed (only their filters, or
    /// more) gives, validated again only where it changed, exactly the spec
    /// (or the refusal) a build from scratch gives.
    #[test]
    fn a_spec_rebuilt_from_the_changed_nics_equals_a_spec_built_anew(
        first in desc(),
        second in desc(),
        filters in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(prop::sample::select(vec![
                "10.0.0.0/24", "10.0.1.0/24", "10.0.0.0/23", "2001:db8::/48", "not-a-cidr",
            ]), 0..3), prop::sample::select(vec!["100", "101", "0100", "x"])),
            MANAGED,
        ),
        take_second in any::<bool>(),
    ) {
        let cfg = config();
        let state = base();
        let facts = crate::reconcile::prepare::local_facts(&cfg, &state);
        let Ok(prev) = crate::spec::build(&first, &cfg, &facts) else {
            return Ok(());
        };
        // Either another document altogether or the first with some
        // filters changed (reordered, other CIDRs, bad values).
        let changed = if take_second {
            second
        } else {
            let mut d = first.clone();
            for (nic, (change, cidrs, vni)) in d.nics.iter_mut().zip(filters) {
                if change {
                    nic.filter.cidrs = cidrs.into_iter().map(String::from).collect();
                    nic.filter.vnis = vec![vni.to_owned()];
                } else {
                    nic.filter.cidrs.reverse();
                }
            }
            d
        };
        let anew = crate::spec::build(&changed, &cfg, &facts);
        if let Some(rebuilt) = crate::spec::rebuild(&prev, &first, &changed, &cfg, &facts) {
            prop_assert_eq!(rebuilt.map(std::borrow::Cow::into_owned), anew);
        }
    }
}
