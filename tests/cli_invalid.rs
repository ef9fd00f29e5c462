//! Invalid desired states are rejected as a whole by the real binary: exit
//! code 2, every problem named, and not a single write in redis. The cases
//! are data: one file per case in `tests/cases/invalid/` (see its README;
//! the case format, shared with the hostile corpus, is
//! `tests/cases/README.md` and `tests/support/cases.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::cases::{self, Case};

struct Outcome {
    code: Option<i32>,
    stderr: String,
    writes: u64,
}

fn run_case(path: &Path) -> Result<Outcome, String> {
    let case = Case::load(path)?;
    let b = cases::build(&case, "")?;
    let cmd = cases::apply_once_command(&b);
    // A FIFO must be refused, never waited on: a hang fails the case.
    let out = cases::run_measured(cmd, Duration::from_secs(60))?.output;
    Ok(Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        writes: b.sw.writes(),
    })
}

#[test]
fn every_invalid_case_exits_2_names_the_problem_and_writes_nothing() {
    let cases = cases::corpus("tests/cases/invalid");
    assert!(cases.len() >= 20, "expected the invalid cases");
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let expect: Vec<String> = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        match run_case(path) {
            Err(e) => failures.push(format!("{name}: could not run: {e}")),
            Ok(o) => {
                if o.code != Some(2) {
                    failures.push(format!(
                        "{name}: exit code {:?}, want 2\n{}",
                        o.code, o.stderr
                    ));
                }
                for e in &expect {
                    if !o.stderr.contains(e.as_str()) {
                        failures.push(format!("{name}: stderr lacks {e:?}:\n{}", o.stderr));
                    }
                }
                for a in case
                    .get("absent")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                {
                    if o.stderr.contains(a) {
                        failures.push(format!("{name}: stderr shows {a:?}:\n{}", o.stderr));
                    }
                }
                // Control characters of the input never reach the terminal
                // raw (a newline only ends a line of the report).
                if let Some(c) = o
                    .stderr
                    .chars()
                    .find(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}')
                {
                    failures.push(format!("{name}: stderr holds {c:?} raw:\n{}", o.stderr));
                }
                if o.stderr.len() > 8 * 1024 {
                    failures.push(format!(
                        "{name}: {} bytes of error output; the list of problems is not capped",
                        o.stderr.len()
                    ));
                }
                if o.writes != 0 {
                    failures.push(format!(
                        "{name}: {} write command(s) reached redis",
                        o.writes
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
