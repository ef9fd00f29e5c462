//! The lab's scenario: the lab API walks both leaves through what a
//! partition does — a machine allocated into a tenant VRF, a firewall port
//! with VNIs and CIDRs, an admin-down port, a VRF→VRF move, an operator's
//! hand edit repaired, and everything freed again. After each step the lab
//! waits until both agents fetched the new state and reported a reconcile
//! without error (the API's records, not a sleep), checks the CONFIG_DB
//! entries the README's table (metal-core's values) prescribes and the BGP
//! sessions that must be up, and prints a status table per leaf.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::Lab;
use super::observe::{self, Dump, LeafView};
use super::topology::{self, LEAVES, MACHINES};
use crate::api_server::{Filter, LabSwitch, PortStatus};
use crate::demo::diff_dumps;

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub title: String,
    /// From the change in the API to both leaves converged (and the
    /// expected sessions Established).
    pub converged_after: Duration,
    pub views: Vec<LeafView>,
    /// What happened besides the API change, for the reader.
    pub note: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub steps: Vec<StepResult>,
    /// Whether tenant-VRF sessions were expected (a kernel with VRFs).
    pub tenant_sessions: bool,
    /// `show bgp vrf <tenant> summary` of each leaf after the allocation,
    /// on a kernel with VRFs.
    pub tenant_summaries: Vec<(String, String)>,
}

impl ScenarioResult {
    /// What did not hold after a step: every leaf's session to the exit
    /// Established, its last report without error, no violation the SONiC
    /// stand-in reported. Empty when every step was clean.
    pub fn step_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            for v in &step.views {
                let at = format!("step {}: {}", i + 1, v.name);
                match &v.sessions {
                    Ok(s) if observe::established(s, "default", topology::UPLINK) => {}
                    s => out.push(format!(
                        "{at}: the session to the exit is not Established: {s:?}"
                    )),
                }
                match &v.report {
                    Some(r) if r.ok() => {}
                    r => out.push(format!("{at}: no report without error: {r:?}")),
                }
                if !v.violations.is_empty() {
                    out.push(format!("{at}: {:?}", v.violations));
                }
            }
        }
        out
    }

    /// What did not hold for machine01's tenant session after the
    /// allocation: each leaf's `show bgp vrf Vrf30 summary` names
    /// Ethernet0, and step 1's view of each leaf has the session in Vrf30
    /// Established (with the peer's hostname `peer_host`, when given).
    /// Empty when both hold.
    pub fn tenant_problems(&self, peer_host: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        for (leaf, text) in &self.tenant_summaries {
            if !text.contains("Ethernet0") {
                out.push(format!(
                    "{leaf}: Vrf30's summary names no Ethernet0:\n{text}"
                ));
            }
        }
        let views = self.steps.first().map_or(&[][..], |s| &s.views[..]);
        if views.is_empty() || self.tenant_summaries.is_empty() {
            out.push("no view of the leaves after the allocation".to_owned());
        }
        for v in views {
            let up = v.sessions.as_ref().is_ok_and(|s| {
                s.iter().any(|x| {
                    x.vrf == "Vrf30"
                        && x.neighbor == "Ethernet0"
                        && x.state == "Established"
                        && peer_host.is_none_or(|h| x.peer_host == h)
                })
            });
            if !up {
                out.push(format!(
                    "{}: no Established session to Ethernet0 in Vrf30{}: {:?}",
                    v.name,
                    peer_host.map(|h| format!(" from {h}")).unwrap_or_default(),
                    v.sessions
                ));
            }
        }
        out
    }
}

fn fields(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// An expected CONFIG_DB entry (`None`: absent).
struct Expect {
    leaf: &'static str,
    key: String,
    fields: Option<std::collections::BTreeMap<String, String>>,
    /// Compare only these fields (PORT carries more than the agent owns).
    partial: bool,
}

fn exact(leaf: &'static str, key: &str, pairs: &[(&str, &str)]) -> Expect {
    Expect {
        leaf,
        key: key.into(),
        fields: Some(fields(pairs)),
        partial: false,
    }
}

fn has(leaf: &'static str, key: &str, pairs: &[(&str, &str)]) -> Expect {
    Expect {
        leaf,
        key: key.into(),
        fields: Some(fields(pairs)),
        partial: true,
    }
}

fn absent(leaf: &'static str, key: &str) -> Expect {
    Expect {
        leaf,
        key: key.into(),
        fields: None,
        partial: false,
    }
}

fn problems(expect: &[Expect], dumps: &[(String, Dump)]) -> Vec<String> {
    let mut out = Vec::new();
    for e in expect {
        let Some((_, d)) = dumps.iter().find(|(n, _)| n == e.leaf) else {
            continue;
        };
        let found = d.get(&e.key);
        let ok = match (&e.fields, found) {
            (None, None) => true,
            (Some(want), Some(got)) if e.partial => want.iter().all(|(k, v)| got.get(k) == Some(v)),
            (Some(want), Some(got)) => want == got,
            _ => false,
        };
        if !ok {
            out.push(format!(
                "{}: CONFIG_DB {} is {:?}, expected {}{:?}",
                e.leaf,
                e.key,
                found,
                if e.partial { "fields " } else { "" },
                e.fields
            ));
        }
    }
    out
}

/// One session that must be Established after a step: (leaf, vrf, neighbor).
type Want = (&'static str, &'static str, &'static str);

fn both(key: &str, pairs: &[(&str, &str)], exact_entry: bool) -> Vec<Expect> {
    LEAVES
        .iter()
        .map(|l| {
            if exact_entry {
                exact(l.name, key, pairs)
            } else {
                has(l.name, key, pairs)
            }
        })
        .collect()
}

fn both_absent(key: &str) -> Vec<Expect> {
    LEAVES.iter().map(|l| absent(l.name, key)).collect()
}

fn set_nic(sw: &mut LabSwitch, port: &str, f: impl FnOnce(&mut crate::api_server::Nic)) {
    if let Some(n) = sw.nics.iter_mut().find(|n| n.name == port) {
        f(n);
    }
}

fn filter(cidrs: &[&str], vnis: &[&str]) -> Option<Filter> {
    Some(Filter {
        cidrs: cidrs.iter().map(|s| (*s).to_owned()).collect(),
        vnis: vnis.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// Run the scenario on a lab that is up; `print` gets each step's tables.
pub fn run(lab: &mut Lab, print: impl FnMut(usize, &StepResult)) -> Result<ScenarioResult> {
    run_steps(lab, STEPS, print)
}

/// How many steps the scenario has.
pub const STEPS: usize = 6;

/// Run the first `count` steps of the scenario (all of them: also the
/// final checks of the reports and the stand-ins).
pub fn run_steps(
    lab: &mut Lab,
    count: usize,
    mut print: impl FnMut(usize, &StepResult),
) -> Result<ScenarioResult> {
    let tenant_sessions = crate::frr_lab::kernel_has_vrf();
    let m1 = MACHINES[0];
    let m2 = MACHINES[1];
    let mut result = ScenarioResult {
        steps: Vec::new(),
        tenant_sessions,
        tenant_summaries: Vec::new(),
    };
    let fabric: Vec<Want> = LEAVES
        .iter()
        .map(|l| (l.name, "default", topology::UPLINK))
        .collect();
    let leaves: Vec<&'static str> = LEAVES.iter().map(|l| l.name).collect();

    // 1. machine01 allocated into tenant VRF vrf30 on both leaves.
    let mut want = fabric.clone();
    if tenant_sessions {
        want.extend(leaves.iter().map(|l| (*l, "Vrf30", m1.port)));
    }
    let mut expect = both(
        &format!("INTERFACE|{}", m1.port),
        &[
            ("ipv6_use_link_local_only", "enable"),
            ("vrf_name", "Vrf30"),
        ],
        true,
    );
    expect.extend(both(
        "VRF|Vrf30",
        &[("vni", "30"), ("fallback", "false")],
        true,
    ));
    expect.extend(both(
        &format!("PORT|{}", m1.port),
        &[("mtu", "9000")],
        false,
    ));
    expect.extend(both_absent(&format!(
        "VLAN_MEMBER|Vlan{}|{}",
        topology::PXE_VLAN,
        m1.port
    )));
    let s = step(
        lab,
        "machine01 is allocated into tenant VRF vrf30 (Ethernet0 on both leaves)",
        &leaves,
        |sw| {
            set_nic(sw, m1.port, |n| {
                n.vrf = Some("vrf30".into());
                n.filter = filter(&["10.0.30.0/24"], &[]);
            });
            sw.connections.push((m1.id.into(), m1.port.into()));
        },
        &expect,
        &want,
    )?;
    print(result.steps.len() + 1, &s);
    result.steps.push(s);
    if tenant_sessions {
        for l in &lab.leaves {
            // SONiC's managers (the stand-in) made the VRF device and put
            // the port in it.
            let out = crate::frr_lab::run(
                "ip",
                &["-n", &l.netns, "-o", "link", "show", "dev", m1.port],
            )?;
            let link = String::from_utf8_lossy(&out.stdout).into_owned();
            if !link.contains("master Vrf30") {
                bail!(
                    "{}: {} is not in the VRF device Vrf30: {link}",
                    l.leaf.name,
                    m1.port
                );
            }
            let text = observe::vtysh(&l.frr.vty_socket_dir(), &["show bgp vrf Vrf30 summary"])?;
            result.tenant_summaries.push((l.leaf.name.to_owned(), text));
        }
    }
    if result.steps.len() >= count {
        return Ok(result);
    }

    // 2. machine02 becomes a firewall.
    let mut want2 = want.clone();
    want2.extend(leaves.iter().map(|l| (*l, "default", m2.port)));
    let mut expect = both(
        &format!("INTERFACE|{}", m2.port),
        &[("ipv6_use_link_local_only", "enable")],
        true,
    );
    expect.extend(both(
        &format!("PORT|{}", m2.port),
        &[("mtu", "9216")],
        false,
    ));
    let s = step(
        lab,
        "machine02 becomes a firewall (Ethernet1: VNIs 30 and 104009, CIDR 10.1.0.1/32)",
        &leaves,
        |sw| {
            set_nic(sw, m2.port, |n| {
                n.vrf = Some("default".into());
                n.filter = filter(&["10.1.0.1/32"], &["30", "104009"]);
            });
            sw.connections.push((m2.id.into(), m2.port.into()));
        },
        &expect,
        &want2,
    )?;
    print(result.steps.len() + 1, &s);
    result.steps.push(s);
    if result.steps.len() >= count {
        return Ok(result);
    }

    // 3. leaf02's Ethernet0 admin down.
    let want3: Vec<Want> = want2
        .iter()
        .filter(|(l, v, n)| !(*l == "leaf02" && *v == "Vrf30" && *n == m1.port))
        .copied()
        .collect();
    let expect = vec![
        has(
            "leaf02",
            &format!("PORT|{}", m1.port),
            &[("admin_status", "down")],
        ),
        has("leaf01", &format!("PORT|{}", m1.port), &[("mtu", "9000")]),
    ];
    let s = step(
        lab,
        "leaf02's Ethernet0 (machine01's lan1) is set admin down",
        &["leaf02"],
        |sw| set_nic(sw, m1.port, |n| n.desired = Some(PortStatus::Down)),
        &expect,
        &want3,
    )?;
    let leaf02 = lab.leaf("leaf02")?;
    let link = crate::frr_lab::run("ip", &["-n", &leaf02.netns, "-o", "link", "show", m1.port])?;
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    let flags = link
        .split('<')
        .nth(1)
        .and_then(|f| f.split('>').next())
        .unwrap_or("");
    if flags.split(',').any(|f| f == "UP") {
        bail!("leaf02's {} is still up in the kernel: {link}", m1.port);
    }
    print(result.steps.len() + 1, &s);
    result.steps.push(s);
    if result.steps.len() >= count {
        return Ok(result);
    }

    // 4. machine01 moves from vrf30 to vrf31.
    let mut want4: Vec<Want> = want3
        .iter()
        .filter(|(_, v, _)| *v != "Vrf30")
        .copied()
        .collect();
    if tenant_sessions {
        want4.push(("leaf01", "Vrf31", m1.port));
    }
    let mut expect = both(
        &format!("INTERFACE|{}", m1.port),
        &[
            ("ipv6_use_link_local_only", "enable"),
            ("vrf_name", "Vrf31"),
        ],
        true,
    );
    expect.extend(both(
        "VRF|Vrf31",
        &[("vni", "31"), ("fallback", "false")],
        true,
    ));
    expect.extend(both_absent("VRF|Vrf30"));
    let s = step(
        lab,
        "machine01 moves from vrf30 to vrf31 (a VRF→VRF move on both leaves)",
        &leaves,
        |sw| {
            set_nic(sw, m1.port, |n| {
                n.vrf = Some("vrf31".into());
                n.filter = filter(&["10.0.31.0/24"], &[]);
            })
        },
        &expect,
        &want4,
    )?;
    print(result.steps.len() + 1, &s);
    result.steps.push(s);
    if result.steps.len() >= count {
        return Ok(result);
    }

    // 5. An operator changes an owned entry by hand: the agent repairs it.
    let key = format!("PORT|{}", m2.port);
    let expect = both(&key, &[("mtu", "9216")], false);
    let mut s = step_with(
        lab,
        "an operator sets PORT|Ethernet1 mtu 1500 on leaf01 by hand (drift)",
        |lab| {
            let leaf = lab.leaf("leaf01")?;
            let mut c = leaf.redis.connection(crate::redis_server::CONFIG_DB)?;
            redis::cmd("HSET")
                .arg(&key)
                .arg("mtu")
                .arg("1500")
                .query::<()>(&mut c)?;
            Ok(())
        },
        &expect,
        &want4,
    )?;
    s.note = Some(format!(
        "leaf01's {key} mtu was set to 1500 under the agent; it wrote 9216 back \
         (CONFIG_DB ends as it began)"
    ));
    print(result.steps.len() + 1, &s);
    result.steps.push(s);
    if result.steps.len() >= count {
        return Ok(result);
    }

    // 6. Everything is freed.
    let mut expect = Vec::new();
    for m in MACHINES {
        expect.extend(both(
            &format!("VLAN_MEMBER|Vlan{}|{}", topology::PXE_VLAN, m.port),
            &[("tagging_mode", "untagged")],
            true,
        ));
        expect.extend(both_absent(&format!("INTERFACE|{}", m.port)));
        expect.extend(both(&format!("PORT|{}", m.port), &[("mtu", "9000")], false));
    }
    expect.extend(both_absent("VRF|Vrf31"));
    expect.push(has(
        "leaf02",
        &format!("PORT|{}", m1.port),
        &[("admin_status", "up")],
    ));
    let s = step(
        lab,
        "everything is freed: machines released, firewall removed, Ethernet0 admin up",
        &leaves,
        |sw| {
            for m in MACHINES {
                let restore = sw.id == "leaf02" && m.port == m1.port;
                set_nic(sw, m.port, |n| {
                    n.vrf = None;
                    n.filter = None;
                    if restore {
                        n.desired = Some(PortStatus::Up);
                    }
                });
            }
            sw.connections.clear();
        },
        &expect,
        &fabric,
    )?;
    print(result.steps.len() + 1, &s);
    result.steps.push(s);
    if result.steps.len() >= count {
        return Ok(result);
    }

    // The proof: no ordering violations, valid reports with port and BGP
    // states from both leaves.
    for l in &lab.leaves {
        let v = l.sonic.violations();
        if !v.is_empty() {
            bail!(
                "{}: the SONiC stand-in reported orders that would crash or wedge SONiC:\n{}",
                l.leaf.name,
                v.join("\n")
            );
        }
        let rep = lab
            .report_after(l.leaf.name, 0, |r| {
                r.ok()
                    && r.ports.contains_key(m1.port)
                    && r.bgp.get(topology::UPLINK).map(String::as_str) == Some("Established")
            })?
            .with_context(|| {
                format!(
                    "{}: no report with port states and an Established {} was recorded",
                    l.leaf.name,
                    topology::UPLINK
                )
            })?;
        if rep.ports.len() < 3 {
            bail!(
                "{}: the report lists too few ports: {:?}",
                l.leaf.name,
                rep.ports
            );
        }
    }
    Ok(result)
}

/// A step that changes the switches `on` in the API with `change`.
fn step(
    lab: &mut Lab,
    title: &str,
    on: &[&'static str],
    change: impl Fn(&mut LabSwitch),
    expect: &[Expect],
    want: &[Want],
) -> Result<StepResult> {
    step_with(
        lab,
        title,
        |lab| {
            for id in on {
                lab.api()?.update_switch(id, &change)?;
            }
            Ok(())
        },
        expect,
        want,
    )
}

fn step_with(
    lab: &mut Lab,
    title: &str,
    change: impl FnOnce(&Lab) -> Result<()>,
    expect: &[Expect],
    want: &[Want],
) -> Result<StepResult> {
    let before: Vec<(String, Dump, Option<u64>)> = lab
        .leaves
        .iter()
        .map(|l| {
            let p = l.paths();
            Ok((
                l.leaf.name.to_owned(),
                observe::dump(&p.redis_socket, crate::redis_server::CONFIG_DB)?,
                observe::digest(&p.frr_config),
            ))
        })
        .collect::<Result<_>>()?;
    let seq = lab.last_seq()?;
    let start = Instant::now();
    change(lab).with_context(|| format!("step {title:?}"))?;
    let names: Vec<&'static str> = LEAVES.iter().map(|l| l.name).collect();
    // Every leaf must converge on the current state (the unchanged one too:
    // nothing to do is a converged reconcile), with the expected entries; a
    // leaf whose entries are not there yet must converge once more.
    let mut marks: Vec<(&'static str, u64)> = names.iter().map(|n| (*n, seq)).collect();
    loop {
        for (id, mark) in &mut marks {
            let r = lab.wait_converged(id, *mark)?;
            *mark = r.seq;
        }
        let dumps: Vec<(String, Dump)> = lab
            .leaves
            .iter()
            .map(|l| {
                Ok((
                    l.leaf.name.to_owned(),
                    observe::dump(l.redis.socket(), crate::redis_server::CONFIG_DB)?,
                ))
            })
            .collect::<Result<_>>()?;
        let found = problems(expect, &dumps);
        if found.is_empty() {
            break;
        }
        if start.elapsed() > lab.opts.timeout {
            bail!(
                "step {title:?}: the agents report convergence but CONFIG_DB is not what the \
                 reference prescribes:\n{}",
                found.join("\n")
            );
        }
    }
    for (id, vrf, neighbor) in want {
        lab.wait_established(id, vrf, neighbor)?;
    }
    let converged_after = start.elapsed();
    let records = observe::records_in(&lab.dir.join("api")).unwrap_or_default();
    let mut views = Vec::new();
    for l in &mut lab.leaves {
        let agent = l.agent_state();
        let report = observe::last_report(&records, l.leaf.name);
        let mut v = observe::view(
            &l.paths(),
            l.sonic.label(),
            agent,
            report,
            l.sonic.violations(),
        );
        if let Some((_, d, digest)) = before.iter().find(|(n, _, _)| n == l.leaf.name) {
            let now = observe::dump(l.redis.socket(), crate::redis_server::CONFIG_DB)?;
            v.changes = Some(diff_dumps(d, &now));
            v.frr_changed = Some(*digest != v.frr_digest);
        }
        views.push(v);
    }
    Ok(StepResult {
        title: title.to_owned(),
        converged_after,
        views,
        note: None,
    })
}

/// A step's title line, time and note.
fn step_header(n: usize, s: &StepResult) -> String {
    let mut out = format!(
        "\n== step {n}: {} — converged in {:.1} s\n",
        s.title,
        s.converged_after.as_secs_f64()
    );
    if let Some(n) = &s.note {
        out.push_str(&format!("   ({n})\n"));
    }
    out
}

/// The text of a step for the demo: each leaf's [`observe::compact_table`],
/// a leaf whose CONFIG_DB changes equal the first leaf's says so instead of
/// listing them again.
pub fn render_compact(n: usize, s: &StepResult) -> String {
    let mut out = step_header(n, s);
    let first = s.views.first();
    for (i, v) in s.views.iter().enumerate() {
        let same = first
            .filter(|f| i > 0 && f.changes.is_some() && f.changes == v.changes)
            .map(|f| f.name.as_str());
        out.push_str(&observe::compact_table(v, same));
    }
    out
}

/// The text of a step: its title, time, and each leaf's table.
pub fn render(n: usize, s: &StepResult) -> String {
    let mut out = step_header(n, s);
    for v in &s.views {
        out.push_str(&observe::table(v));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::minilab::observe::Session;

    fn view(name: &str, state: &str, host: &str) -> LeafView {
        LeafView {
            name: name.to_owned(),
            agent: "running".to_owned(),
            report: None,
            sessions: Ok(vec![Session {
                neighbor: "Ethernet0".to_owned(),
                vrf: "Vrf30".to_owned(),
                peer_group: "MACHINE".to_owned(),
                state: state.to_owned(),
                peer_host: host.to_owned(),
                up: String::new(),
                received: 0,
            }]),
            frr_digest: None,
            status: None,
            changes: None,
            frr_changed: None,
            sonic: "stand-in".to_owned(),
            violations: Vec::new(),
            vrfs: Vec::new(),
            bindings: Vec::new(),
        }
    }

    fn result(views: Vec<LeafView>, summary: &str) -> ScenarioResult {
        ScenarioResult {
            steps: vec![StepResult {
                title: "allocation".to_owned(),
                converged_after: Duration::ZERO,
                views,
                note: None,
            }],
            tenant_sessions: true,
            tenant_summaries: vec![("leaf01".to_owned(), summary.to_owned())],
        }
    }

    #[test]
    fn tenant_problems_name_each_leaf_whose_machine_session_is_not_up() {
        let up = "Neighbor V AS\nEthernet0 4 4200000001";
        let ok = result(vec![view("leaf01", "Established", "machine01")], up);
        assert_eq!(ok.tenant_problems(Some("machine01")), Vec::<String>::new());
        assert_eq!(ok.tenant_problems(None), Vec::<String>::new());

        let other_host = result(vec![view("leaf01", "Established", "machine02")], up);
        assert_eq!(other_host.tenant_problems(None), Vec::<String>::new());
        let p = other_host.tenant_problems(Some("machine01"));
        assert!(p.len() == 1 && p[0].starts_with("leaf01: "), "{p:?}");

        let down = result(vec![view("leaf02", "Active", "")], "Neighbor V AS\n");
        let p = down.tenant_problems(None);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("names no Ethernet0") && p[1].starts_with("leaf02: "));

        let empty = result(Vec::new(), up);
        assert_eq!(empty.tenant_problems(None).len(), 1);
    }
}
