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
//! - `render-frr`: frr.conf of the spec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use metal_switchd::configdb::confirmed::Confirmed;
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
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
