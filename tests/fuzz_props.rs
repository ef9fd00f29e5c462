//! Fuzzing without a fuzzer toolchain: the machine has one stable Rust, so
//! cargo-fuzz (nightly) is out; these are proptest properties with large
//! case counts instead, over the two places where untrusted bytes enter:
//!
//! - **API JSON → SwitchSpec → target / plan / render**: the lab's leaf01
//!   document (v1 and v2) mutated at random (values replaced by hostile
//!   strings and edge numbers, keys removed, elements duplicated, nodes
//!   nested) — then parsed, validated against leaf01's CONFIG_DB, and, when
//!   accepted, planned and rendered. Nothing may panic; an accepted state's
//!   plan keeps every SONiC ordering rule and writes only names without
//!   whitespace, control characters, `!` or `|`; its frr.conf has no
//!   control character but line ends.
//! - **LLDP frames** (`lldp::frame::parse_frame`): frames built from random
//!   TLVs with right and wrong lengths, and mutations of a valid frame.
//!
//! CI runs `FUZZ_CASES` (default 512) cases per property; a long run is
//! `FUZZ_CASES=200000 cargo nextest run --release --test fuzz_props`.
//! Failures are kept in `tests/fuzz_props.proptest-regressions`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use metal_switchd::configdb::confirmed::Confirmed;
use std::sync::OnceLock;

use metal_switchd::api::parse_switch_document;
use metal_switchd::config::Config;
use metal_switchd::configdb::rules::check_rules;
use metal_switchd::configdb::schema::DbState;
use metal_switchd::configdb::snapshot::parse_config_db_json;
use metal_switchd::configdb::target;
use metal_switchd::frr;
use metal_switchd::lldp::frame::parse_frame;
use metal_switchd_lab::fixtures;
use proptest::prelude::*;
use serde_json::Value;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn inputs() -> &'static (Config, DbState, Value, Value) {
    static I: OnceLock<(Config, DbState, Value, Value)> = OnceLock::new();
    I.get_or_init(|| {
        let cfg = support::config::TestConfig::leaf01().build();
        let state =
            parse_config_db_json("leaf01", &fixtures::leaf01_with_ports().unwrap()).unwrap();
        let v1: Value = serde_json::from_str(fixtures::LEAF01_SWITCH_V1).unwrap();
        let v2: Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("lab/switches/leaf01.v2.json"),
            )
            .unwrap(),
        )
        .unwrap();
        (cfg, state, v1, v2)
    })
}

/// Hostile scalars.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1 << 24),
            Just(16_777_215),
            Just(i64::MAX),
            Just(i64::MIN),
            any::<i64>()
        ]
        .prop_map(Value::from),
        Just(Value::from(1e300)),
        prop_oneof![
            Just("".to_owned()),
            Just("default".to_owned()),
            Just("vrf0".to_owned()),
            Just("vrf16777216".to_owned()),
            Just("vrf104009".to_owned()),
            Just("Ethernet0".to_owned()),
            Just("Ethernet999".to_owned()),
            Just("10.0.0.0/33".to_owned()),
            Just("::/0".to_owned()),
            Just("0.0.0.0/0".to_owned()),
            Just("a\nb".to_owned()),
            Just("x!y".to_owned()),
            Just("a|b".to_owned()),
            Just("\u{202e}rtl".to_owned()),
            Just("\0".to_owned()),
            "[ -~]{0,20}",
            "\\PC{0,30}",
            "[\\x00-\\x1f]{1,4}",
        ]
        .prop_map(Value::String),
    ]
}

/// One random change at the node a path of random choices leads to.
#[derive(Debug, Clone)]
enum Op {
    Replace(Value),
    Remove,
    Duplicate,
    Wrap,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => scalar().prop_map(Op::Replace),
        2 => Just(Op::Remove),
        2 => Just(Op::Duplicate),
        1 => Just(Op::Wrap),
        1 => Just(Op::Clear),
    ]
}

fn mutate(v: &mut Value, path: &[u16], op: &Op) {
    let (here, rest) = match path.split_first() {
        Some(x) => x,
        None => {
            match op {
                Op::Replace(s) => *v = s.clone(),
                Op::Wrap => *v = Value::Array(vec![v.take()]),
                Op::Clear => {
                    *v = match v {
                        Value::Array(_) => Value::Array(Vec::new()),
                        Value::Object(_) => Value::Object(Default::default()),
                        _ => Value::Null,
                    }
                }
                Op::Remove | Op::Duplicate => {}
            }
            return;
        }
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(usize::from(*here) % m.len()).cloned().unwrap();
            if rest.is_empty() && matches!(op, Op::Remove) {
                m.remove(&key);
            } else if let Some(child) = m.get_mut(&key) {
                mutate(child, rest, op);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = usize::from(*here) % a.len();
            match (rest.is_empty(), op) {
                (true, Op::Remove) => {
                    a.remove(i);
                }
                (true, Op::Duplicate) => {
                    let e = a[i].clone();
                    a.insert(i, e);
                }
                _ => mutate(&mut a[i], rest, op),
            }
        }
        _ => mutate(v, &[], op),
    }
}

fn no_control(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\n')
}

/// The pipeline: parse, validate, and for an accepted state plan and render.
fn pipeline(text: &str) {
    let (cfg, state, _, _) = inputs();
    let Ok((_, desc)) = parse_switch_document("fuzz.json", text, None) else {
        return;
    };
    match metal_switchd::reconcile::prepare(&desc, cfg, state, &Confirmed::assumed()) {
        Err(problems) => {
            let msg = problems.to_string();
            assert!(no_control(&msg), "control character in {msg:?}");
        }
        Ok(prepared) => {
            let broken = check_rules(&prepared.plan);
            assert!(broken.is_empty(), "{broken:?}\n{}", prepared.plan);
            for (key, _) in target::target(&prepared.spec).entries {
                let name = key.name.as_str();
                assert!(
                    !name
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '!'),
                    "a key the daemons would choke on: {key}"
                );
                assert!(
                    key.parts().all(|p| !p.is_empty()),
                    "an empty key part: {key}"
                );
            }
            let conf = frr::render(&prepared.spec, metal_switchd::flavour::FrrLines::NONE);
            assert!(no_control(&conf), "control character in frr.conf");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Integration tests have no lib.rs beside them: name the file.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/fuzz_props.proptest-regressions",
            ),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_api_documents_never_panic_and_accepted_ones_are_safe(
        v2 in any::<bool>(),
        changes in prop::collection::vec(
            (prop::collection::vec(any::<u16>(), 0..6), op()),
            1..6,
        ),
    ) {
        let (_, _, v1doc, v2doc) = inputs();
        let mut doc = if v2 { v2doc.clone() } else { v1doc.clone() };
        for (path, op) in &changes {
            mutate(&mut doc, path, op);
        }
        pipeline(&doc.to_string());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        pipeline(&text);
    }

    #[test]
    fn random_tlvs_never_panic(
        vlan in any::<bool>(),
        tlvs in prop::collection::vec(
            (0u8..128, 0u16..512, prop::collection::vec(any::<u8>(), 0..64), any::<bool>()),
            0..12,
        ),
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut f = vec![0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 2, 0, 0, 0, 0, 1];
        if vlan {
            f.extend([0x81, 0x00, 0x00, 0x05]);
        }
        f.extend([0x88, 0xcc]);
        for (t, len, body, honest) in &tlvs {
            // The declared length matches the body, or it lies.
            let l = if *honest { body.len() as u16 } else { *len };
            f.push((t << 1) | ((l >> 8) as u8 & 1));
            f.push((l & 0xff) as u8);
            f.extend(body);
        }
        f.extend(&tail);
        if let Ok(frame) = parse_frame(&f) {
            // What is accepted is bounded by the frame.
            let pdu = &frame.lldpdu;
            prop_assert!(pdu.chassis_id_string().len() <= 4 * f.len());
            prop_assert!(pdu.port_id_string().len() <= 4 * f.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(f in prop::collection::vec(any::<u8>(), 0..1600)) {
        let _ = parse_frame(&f);
    }
}
