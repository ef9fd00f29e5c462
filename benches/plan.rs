//! Benchmarks of the pure core at three sizes (see docs/performance.md):
//! (48 ports, 16 VRFs), (256, 256), (1024, 1000), on the mini-lab base
//! configuration with a generated PORT table and generated tenants (a few
//! CIDRs per port, a firewall with VNIs).
//!
//! - `spec`: local facts + SwitchSpec build and validation;
//! - `plan-noop`: target + diff + plan when CONFIG_DB is at the target;
//! - `plan-move`: the same after one port moved between two VRFs (full path);
//! - `plan-move-incremental`: that move on the incremental path (only the
//!   changed ports and VRFs are re-targeted);
//! - `plan-fresh`: target + diff + plan on a switch without agent state;
//! - `plan-changed-nothing`: a changed document that comes to the same
//!   switch (a tenant's CIDRs in another order, as `benches/daemon.rs`
//!   changes it): the agent's comparison of the documents, the spec rebuilt
//!   from the last one (`spec::rebuild`) and the plan since it;
//! - `render-frr`: frr.conf of the spec;
//! - `plan-repair`: a drift repair's plan (issue 23): the switch converged
//!   and confirmed by SONiC, then one port's `INTERFACE` entry deleted by
//!   hand (and, as SONiC reacts, its STATE_DB marker and router interface
//!   gone); planned from the converged spec, narrowed to the keys touched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use metal_switchd::configdb::confirmed::{Confirmed, Separators, rif_field_key};
use metal_switchd::configdb::confirms::{Db, RIF_NAME_MAP};
use metal_switchd::configdb::schema::{Fields, Table};
use metal_switchd::configdb::view::Touched;
use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metal_switchd::api::parse_switch_document;
use metal_switchd::config::Config;
use metal_switchd::configdb::plan::Plan;
use metal_switchd::configdb::schema::{DbState, Key};
use metal_switchd::configdb::snapshot::parse_config_db_json;
use metal_switchd::configdb::{Planning, diff::Op, facts};
use metal_switchd::reconcile::prepare;
use metal_switchd::spec::{self, SwitchDesc};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::generate::{bench_config, bench_switch, vni};
use metal_switchd_lab::seed::port_entries;

pub const SIZES: [(usize, usize); 3] = [(48, 16), (256, 256), (1024, 1000)];

struct Case {
    cfg: Config,
    desc: SwitchDesc,
    moved: SwitchDesc,
    fresh: DbState,
    done: DbState,
}

fn apply_plan(mut s: DbState, plan: &metal_switchd::configdb::plan::Plan) -> DbState {
    for c in plan.iter_changes().cloned() {
        match c.op {
            Op::Create { fields } => s.insert(c.key, fields),
            Op::Update { set, remove } => {
                let e = s.get_mut(&c.key).unwrap();
                e.extend(set);
                for r in remove {
                    e.remove(&r);
                }
            }
            Op::Delete { .. } => {
                s.remove(&c.key);
            }
        }
    }
    s
}

fn case(ports: usize, vrfs: usize) -> Case {
    let (doc, port_map) = bench_switch(ports, vrfs);
    let cfg = Config::from_sources(Some(("bench.toml", &bench_config(ports))), Vec::new()).unwrap();
    let mut fresh = parse_config_db_json("leaf01", fixtures::LEAF01_CONFIG).unwrap();
    for (k, f) in port_entries(&port_map).unwrap() {
        fresh.insert(Key::parse(&k).unwrap(), f.into_iter().collect());
    }
    let desc = parse_switch_document("gen", &doc.to_string(), None)
        .unwrap()
        .1;
    // Move a VRF's second port where there is one (the VRF stays), else the
    // first port (its VRF goes).
    let mut moved = desc.clone();
    let i = if ports > vrfs + 2 { vrfs + 2 } else { 0 };
    let nic = moved
        .nics
        .iter_mut()
        .find(|n| n.name == format!("Ethernet{i}"))
        .unwrap();
    nic.vrf = Some(format!("vrf{}", vni(1)));
    let done = apply_plan(
        fresh.clone(),
        &prepare(&desc, &cfg, &fresh, &Confirmed::assumed())
            .unwrap()
            .plan,
    );
    assert!(
        prepare(&desc, &cfg, &done, &Confirmed::assumed())
            .unwrap()
            .plan
            .is_empty()
    );
    Case {
        cfg,
        desc,
        moved,
        fresh,
        done,
    }
}

/// Plan `spec` against `state` (offline: SONiC confirmed all of it),
/// incrementally from `since` when given.
fn plan_of(spec: &spec::SwitchSpec, state: &DbState, since: Option<&spec::SwitchSpec>) -> Plan {
    let confirmed = Confirmed::assumed();
    Planning::new(spec, state, &confirmed).since(since).plan()
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What SONiC's daemons write once they processed `config` (the markers
/// the planner reads; sonic-configdb reference §4, as the SONiC stand-in
/// writes them).
fn sonic_confirms(config: &DbState) -> Confirmed {
    let mut c = Confirmed::new(Separators::default());
    let ok = || Some(fields(&[("state", "ok")]));
    for (name, f) in config.table(Table::Vrf) {
        c.set(Db::State, &format!("VRF_TABLE|{name}"), ok());
        c.set(Db::Appl, &format!("VRF_TABLE:{name}"), Some(f.clone()));
    }
    for (name, _) in config.table(Table::Vlan) {
        c.set(Db::State, &format!("VLAN_TABLE|{name}"), ok());
    }
    for (name, _) in config.table(Table::VlanMember) {
        c.set(Db::State, &format!("VLAN_MEMBER_TABLE|{name}"), ok());
    }
    let mut rifs = Fields::new();
    for t in [Table::Interface, Table::VlanInterface] {
        for (name, f) in config.table(t) {
            let vrf = f.get("vrf_name").cloned().unwrap_or_default();
            c.set(
                Db::State,
                &format!("INTERFACE_TABLE|{name}"),
                Some(fields(&[("vrf", &vrf)])),
            );
            rifs.insert(name.to_owned(), "oid:0x6000000000001".into());
        }
    }
    c.set(Db::Counters, RIF_NAME_MAP, Some(rifs));
    for (name, _) in config.table(Table::VxlanTunnelMap) {
        let key = format!("VXLAN_TUNNEL_MAP_TABLE:{}", name.replace('|', ":"));
        c.set(Db::Appl, &key, Some(fields(&[("vni", "1")])));
    }
    c
}

/// The converged switch after one tenant port's `INTERFACE` entry was
/// deleted by hand and SONiC removed its marker and router interface: the
/// state, what SONiC confirms, and the keys that changed.
fn repair_case(k: &Case) -> (DbState, Confirmed, Vec<Touched>) {
    let key = Key::interface("Ethernet0");
    let mut state = k.done.clone();
    let mut confirmed = sonic_confirms(&state);
    assert!(state.remove(&key).is_some());
    let marker = "INTERFACE_TABLE|Ethernet0".to_owned();
    confirmed.set(Db::State, &marker, None);
    confirmed.set(Db::Counters, &rif_field_key("Ethernet0"), None);
    let mut touched = vec![
        Touched::Config(key),
        Touched::Marker(Db::State, marker),
        Touched::Rif("Ethernet0".into()),
    ];
    touched.sort();
    (state, confirmed, touched)
}

fn bench(c: &mut Criterion) {
    for (ports, vrfs) in SIZES {
        let k = case(ports, vrfs);
        let id = format!("{ports}p-{vrfs}vrf");
        let statics = BTreeSet::new();
        let spec = prepare(&k.desc, &k.cfg, &k.done, &Confirmed::assumed())
            .unwrap()
            .spec;
        let moved_spec = prepare(&k.moved, &k.cfg, &k.done, &Confirmed::assumed())
            .unwrap()
            .spec;
        let n = plan_of(&moved_spec, &k.done, None).changes();
        assert_eq!(
            plan_of(&moved_spec, &k.done, Some(&spec)),
            plan_of(&moved_spec, &k.done, None)
        );
        assert!((2..=7).contains(&n), "moving one port changes {n} keys");

        c.bench_with_input(BenchmarkId::new("spec", &id), &k, |b, k| {
            b.iter(|| {
                let f = facts::local_facts(black_box(&k.done), k.cfg.vlan_range, &statics);
                spec::build(black_box(&k.desc), &k.cfg, &f).unwrap()
            })
        });
        c.bench_with_input(BenchmarkId::new("plan-noop", &id), &k, |b, k| {
            b.iter(|| plan_of(black_box(&spec), black_box(&k.done), None))
        });
        c.bench_with_input(BenchmarkId::new("plan-move", &id), &k, |b, k| {
            b.iter(|| plan_of(black_box(&moved_spec), black_box(&k.done), None))
        });
        c.bench_with_input(
            BenchmarkId::new("plan-move-incremental", &id),
            &k,
            |b, k| {
                b.iter(|| {
                    plan_of(
                        black_box(&moved_spec),
                        black_box(&k.done),
                        Some(black_box(&spec)),
                    )
                })
            },
        );
        c.bench_with_input(BenchmarkId::new("render-frr", &id), &spec, |b, spec| {
            b.iter(|| {
                metal_switchd::frr::render(black_box(spec), metal_switchd::flavour::FrrLines::NONE)
            })
        });
        c.bench_with_input(BenchmarkId::new("plan-fresh", &id), &k, |b, k| {
            b.iter(|| plan_of(black_box(&spec), black_box(&k.fresh), None))
        });
        // The document the daemon bench alternates with: a tenant's CIDRs
        // in another order.
        let mut reordered = k.desc.clone();
        reordered
            .nics
            .iter_mut()
            .find(|n| n.filter.cidrs.len() > 1)
            .expect("a nic with two CIDRs")
            .filter
            .cidrs
            .reverse();
        let f = facts::local_facts(&k.done, k.cfg.vlan_range, &statics);
        let changed_nothing = || {
            assert!(reordered != k.desc);
            let kept = spec::rebuild(&spec, &k.desc, &reordered, &k.cfg, &f)
                .expect("rebuilt from the last spec")
                .expect("valid");
            plan_of(&kept, &k.done, Some(&spec))
        };
        assert!(changed_nothing().is_empty());
        assert!(matches!(
            spec::rebuild(&spec, &k.desc, &reordered, &k.cfg, &f),
            Some(Ok(std::borrow::Cow::Borrowed(_)))
        ));
        c.bench_function(&format!("plan-changed-nothing/{id}"), |b| {
            b.iter(|| black_box(changed_nothing()))
        });
        let (drifted, confirmed, touched) = repair_case(&k);
        let repair = || {
            Planning::new(&spec, &drifted, &confirmed)
                .since_touched(Some(&spec), Some(&touched))
                .plan()
        };
        let full = Planning::new(&spec, &drifted, &confirmed).plan();
        assert_eq!(repair(), full);
        assert_eq!(full.changes(), 1, "{full}");
        c.bench_function(&format!("plan-repair/{id}"), |b| {
            b.iter(|| black_box(repair()))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
