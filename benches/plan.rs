//! Planning benchmarks of the pure core (see docs/performance.md).
//!
//! Input: mini-lab leaf01 (122 ports) with generated tenant VRFs, the
//! CONFIG_DB snapshot either empty of agent state (fresh) or already at the
//! target (no-op).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use metal_switchd::api::parse_switch_document;
use metal_switchd::config::Config;
use metal_switchd::configdb::schema::{DbState, Key};
use metal_switchd::configdb::snapshot::parse_config_db_json;
use metal_switchd::configdb::{diff::Op, prepare};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::generate::{SwitchShape, switch_v1};
use metal_switchd_lab::seed::port_entries;

fn base() -> DbState {
    let mut s = parse_config_db_json("leaf01", fixtures::LEAF01_CONFIG).unwrap();
    for (k, f) in port_entries(fixtures::MINI_LAB_PORT_MAP).unwrap() {
        s.insert(Key::parse(&k).unwrap(), f.into_iter().collect());
    }
    s
}

fn at_target(mut s: DbState, cfg: &Config, desc: &metal_switchd::spec::SwitchDesc) -> DbState {
    for c in prepare(desc, cfg, &s)
        .unwrap()
        .plan
        .iter_changes()
        .cloned()
        .collect::<Vec<_>>()
    {
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

fn bench(c: &mut Criterion) {
    let cfg = Config::from_sources(
        Some(("leaf01.toml", fixtures::LEAF01_AGENT_CONFIG)),
        Vec::new(),
    )
    .unwrap();
    let doc = switch_v1(&SwitchShape::mini_lab(60)).to_string();
    let desc = parse_switch_document("gen", &doc, None).unwrap().1;
    let fresh = base();
    let done = at_target(base(), &cfg, &desc);
    assert!(prepare(&desc, &cfg, &done).unwrap().plan.is_empty());
    c.bench_function("prepare/leaf01-122p-60vrf/fresh", |b| {
        b.iter(|| prepare(black_box(&desc), &cfg, black_box(&fresh)).unwrap())
    });
    c.bench_function("prepare/leaf01-122p-60vrf/no-op", |b| {
        b.iter(|| prepare(black_box(&desc), &cfg, black_box(&done)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
