//! `./dev sonic matrix`: for each SONiC release, build it (or find it in
//! the cache), time a second, warm build, run the real-SONiC scenario
//! (`tests/minilab_sonic.rs`) in the full-kernel VM, and write one table row
//! per release between the markers of `docs/flavours.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::sonic_real::{Release, build_env, build_info, build_script};
use crate::vm::{self, VmOptions};

pub const BEGIN: &str = "<!-- sonic-matrix:begin -->";
pub const END: &str = "<!-- sonic-matrix:end -->";

/// One release's results.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub release: String,
    pub debian: String,
    pub frr: String,
    /// The cold build's time (as recorded by the build), or why it failed.
    pub cold: String,
    pub warm: Option<Duration>,
    /// `pass`, or what failed.
    pub scenario: String,
    /// Lab up (both leaves' SONiC, FRR, agents) to every leaf↔exit session.
    pub up_seconds: Option<f64>,
    /// Each step's convergence time.
    pub steps: Vec<f64>,
    /// Differences between what real SONiC and the stand-in confirmed.
    pub differences: Vec<String>,
}

/// Build `release` (a no-op when cached); its directory.
pub fn build(release: Release) -> Result<PathBuf> {
    let out = Command::new("nice")
        .args(["-n", "10", "bash"])
        .arg(build_script())
        .arg(release.as_str())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running lab/sonic/build.sh")?;
    if !out.status.success() {
        bail!("building SONiC {release} failed ({})", out.status);
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok(PathBuf::from(dir.lines().last().unwrap_or_default()))
}

/// Read the `SONIC-RESULT` / `SONIC-DIFF` lines of a test run's console.
pub fn parse_console(console: &str, row: &mut Row) {
    let mut passed = false;
    for line in console.lines() {
        let line = line.trim_start_matches("vm| ");
        if let Some(rest) = line.strip_prefix("SONIC-RESULT ") {
            let field = |k: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{k}=")))
                    .map(str::to_owned)
            };
            if field("step").is_some()
                && let Some(s) = field("seconds").and_then(|s| s.parse().ok())
            {
                row.steps.push(s);
            }
            if let Some(s) = field("established_seconds").and_then(|s| s.parse().ok()) {
                row.up_seconds = Some(s);
            }
            if field("scenario").as_deref() == Some("pass") {
                passed = true;
            }
        } else if let Some(rest) = line.strip_prefix("SONIC-DIFF ") {
            let d = rest.split_once(' ').map_or(rest, |(_, d)| d).to_owned();
            row.differences.push(d);
        }
    }
    if passed {
        row.scenario = "pass".into();
    } else if row.scenario.is_empty() {
        row.scenario = failure(console, row.steps.len());
    }
}

/// What a failed run's console says went wrong, in one line: the panic's
/// first line, and what the agent still waited for when it says so.
fn failure(console: &str, steps_done: usize) -> String {
    let lines: Vec<&str> = console
        .lines()
        .map(|l| l.trim_start_matches("vm| ").trim())
        .collect();
    let Some(at) = lines.iter().position(|l| l.contains("panicked at")) else {
        return "failed (no result line)".into();
    };
    let mut why = lines.get(at + 1).copied().unwrap_or_default().to_owned();
    if let Some(w) = lines.iter().position(|l| l.ends_with("still waiting for:"))
        && let Some(entry) = lines.get(w + 1)
    {
        why = format!(
            "{} still waiting for {}",
            lines[w].trim_end_matches("still waiting for:"),
            entry.trim_start_matches("- ")
        );
    }
    let mut why: String = why.chars().take(240).collect();
    why = why.replace('|', "/");
    format!("fail after {steps_done} of 6 steps: {why}")
}

/// The markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| release | Debian | FRR | build cold | build warm | scenario | up to sessions Established | step convergence (s) | differences to the stand-in |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let steps: Vec<String> = r.steps.iter().map(|s| format!("{s:.0}")).collect();
        let diffs = if r.differences.is_empty() {
            "none".to_owned()
        } else {
            r.differences
                .iter()
                .map(|d| format!("`{}`", d.replace('|', "\\|")))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.release,
            r.debian,
            r.frr,
            r.cold,
            r.warm
                .map_or("-".into(), |w| format!("{:.1} s", w.as_secs_f64())),
            r.scenario.replace('|', "\\|"),
            r.up_seconds.map_or("-".into(), |u| format!("{u:.0} s")),
            if steps.is_empty() {
                "-".into()
            } else {
                steps.join(", ")
            },
            diffs
        ));
    }
    s
}

/// `text` with the part between the markers replaced by `section` (the
/// markers and the section appended when missing).
pub fn replace_section(text: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{section}{END}");
    match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &text[..b], &text[e + END.len()..])
        }
        _ => format!(
            "{}\n## SONiC releases under the agent\n\n{block}\n",
            text.trim_end()
        ),
    }
}

/// Run the matrix and write the table into `out`.
pub fn run(releases: &[Release], vm_opts: &VmOptions, out: &Path) -> Result<()> {
    let bins = vm::build_tests(&["minilab_sonic".to_owned()])?;
    let mut rows = Vec::new();
    for &r in releases {
        let mut row = Row {
            release: r.to_string(),
            debian: r.debian().into(),
            frr: r.frr_version().into(),
            ..Row::default()
        };
        eprintln!("== SONiC {r}: build");
        let dir = match build(r) {
            Ok(d) => d,
            Err(e) => {
                row.cold = format!("failed: {e:#}");
                row.scenario = "not run".into();
                rows.push(row);
                continue;
            }
        };
        let secs: Option<u64> = build_info(&dir)
            .into_iter()
            .find(|(k, _)| k == "build_seconds")
            .and_then(|(_, v)| v.parse().ok());
        row.cold = secs.map_or("-".into(), |s| format!("{} min {} s", s / 60, s % 60));
        let t = Instant::now();
        build(r)?;
        row.warm = Some(t.elapsed());
        eprintln!("== SONiC {r}: the scenario in the VM");
        let script = format!(
            "export DEV_SONIC_RELEASE={r}\nexport {}='{}'\n{}",
            build_env(r),
            dir.display(),
            // --nocapture: a passing test's output (its SONIC-RESULT lines)
            // is otherwise swallowed by the test harness.
            vm::test_script(
                &bins,
                &["--test-threads=1".to_owned(), "--nocapture".to_owned()]
            )
        );
        match vm::run(vm_opts, &script) {
            Ok(run) => parse_console(&run.console, &mut row),
            Err(e) => row.scenario = format!("VM: {e:#}"),
        }
        eprintln!("== SONiC {r}: {}", row.scenario);
        rows.push(row);
    }
    let text = std::fs::read_to_string(out).unwrap_or_else(|_| "# SONiC flavours\n".into());
    let section = format!(
        "Written by `./dev sonic matrix` (tests/minilab_sonic.rs in the full-kernel VM: leaf01 \
         on the release's own daemons and FRR, leaf02 on the stand-in; times on this 2-core \
         machine under the emulated CPU).\n\n{}",
        table(&rows)
    );
    std::fs::write(out, replace_section(&text, &section))
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{}", table(&rows));
    println!("wrote {}", out.display());
    if rows.iter().any(|r| r.scenario != "pass") {
        bail!("the scenario did not pass on every release");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_goes_between_the_markers_and_only_there() {
        let t = format!("# SONiC flavours\n\nintro\n\n{BEGIN}\nold\n{END}\n\nrest\n");
        let n = replace_section(&t, "new\n");
        assert_eq!(
            n,
            format!("# SONiC flavours\n\nintro\n\n{BEGIN}\nnew\n{END}\n\nrest\n")
        );
        let fresh = replace_section("# SONiC flavours\n", "x\n");
        assert!(fresh.starts_with("# SONiC flavours\n"));
        assert!(fresh.contains(&format!("{BEGIN}\nx\n{END}")));
    }

    #[test]
    fn console_lines_become_a_row() {
        let console = "vm| SONIC-RESULT release=202411 up_seconds=80.0 established_seconds=75.5\n\
                       vm| SONIC-RESULT release=202411 step=1 seconds=30.2 title=\"a\"\n\
                       vm| SONIC-RESULT release=202411 step=2 seconds=12.0 title=\"b\"\n\
                       vm| SONIC-DIFF release=202411 real only: APPL_DB PORT_TABLE:PortConfigDone\n\
                       vm| SONIC-RESULT release=202411 scenario=pass total_seconds=500.0 build=/x\n";
        let mut row = Row {
            release: "202411".into(),
            ..Row::default()
        };
        parse_console(console, &mut row);
        assert_eq!(row.scenario, "pass");
        assert_eq!(row.steps, [30.2, 12.0]);
        assert_eq!(row.up_seconds, Some(75.5));
        assert_eq!(
            row.differences,
            ["real only: APPL_DB PORT_TABLE:PortConfigDone"]
        );
        assert!(table(&[row]).contains("| 202411 |"));
    }

    #[test]
    fn a_failed_run_says_what_the_agent_waited_for() {
        let console = "vm| SONIC-RESULT release=202505 up_seconds=101.0 established_seconds=100.9\n\
                       vm| thread 'x' (125) panicked at tests/minilab_sonic.rs:97:9:\n\
                       vm| the scenario failed on SONiC 202505: leaf01: agent log, last lines:\n\
                       vm| 2026-12-06T23:09:20Z ERROR reporter: phase 1/3 (Detach) was written, but SONiC did not confirm it within 150s; still waiting for:\n\
                       vm|   - ASIC_DB has no bridge port for Ethernet0 (orchagent)\n";
        let mut row = Row::default();
        parse_console(console, &mut row);
        assert!(
            row.scenario.starts_with("fail after 0 of 6 steps: "),
            "{}",
            row.scenario
        );
        assert!(
            row.scenario.ends_with(
                "still waiting for ASIC_DB has no bridge port for Ethernet0 (orchagent)"
            ),
            "{}",
            row.scenario
        );
        let mut other = Row::default();
        parse_console(
            "vm| thread 'x' panicked at a.rs:1:1:\nvm| boom\n",
            &mut other,
        );
        assert_eq!(other.scenario, "fail after 0 of 6 steps: boom");
    }
}
