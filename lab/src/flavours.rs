//! The SONiC flavours the lab can stand in for (not shipped): per
//! [`Profile`] (metal-switchd's list of known flavours) what a leaf of that
//! flavour presents and how its FRR behaves.
//!
//! - [`base_config`]: the leaf's base CONFIG_DB. Dell profiles use
//!   mini-lab's Dell configurations as they are (4.5.1, 4.4.3); community
//!   and Edgecore profiles use the same leaf without the fields only Dell
//!   writes ([`DELL_ONLY_FIELDS`]) and with the flavour's
//!   `docker_routing_config_mode` (`split-unified`, as mini-lab's community
//!   images: mini-lab `images/sonic/config_db.json`; `split` for Dell and
//!   Edgecore, as mini-lab's Dell configurations and sonic-configdb-utils).
//! - [`zebra_modules`]: what zebra loads (sonic-buildimage
//!   `supervisord.conf.j2`: `-M fpm` on 202311, `-M dplane_fpm_sonic` on
//!   202411 and 202505; Dell and Edgecore 202211 the old `fpm`). The lab
//!   runs Debian's FRR, whose `dplane_fpm_nl` stands in for SONiC's fork
//!   `dplane_fpm_sonic` (the same `fpm address` / `fpm use-next-hop-groups`
//!   commands): a line the flavour's zebra does not know makes the real
//!   reload fail, as on the switch.
//! - [`start_script_lines`]: what the bgp container's start script appends
//!   (`docker_init.sh` `write_default_zebra_config`), for a simulated bgp
//!   restart.
//! - [`frr_findings`]: the stand-in's FRR side: an installed `frr.conf`
//!   checked against the flavour's FRR — a missing fpm line on ≥ 202411
//!   (routes never reach fpmsyncd: sonic-buildimage #21034, mini-lab #315,
//!   metal-core #199), an fpm line on a flavour whose zebra rejects it.

use anyhow::{Context, Result};
use serde_json::{Map, Value};

pub use metal_switchd::flavour::{FpmModule, Profile};

/// Fields of mini-lab's Dell configurations that community SONiC does not
/// write (table → fields); whole tables are listed with `*`.
pub const DELL_ONLY_FIELDS: &[(&str, &[&str])] = &[
    (
        "VLAN",
        &[
            "admin_status",
            "autostate",
            "dhcp_relay_link_select",
            "dhcp_relay_src_intf",
        ],
    ),
    ("VXLAN_TUNNEL", &["dscp", "qos-mode", "src_intf"]),
    ("NTP", &["auth_enabled"]),
    ("DNS", &["*"]),
    ("LOOPBACK", &["*"]),
    ("VERSIONS", &["*"]),
];

/// The base CONFIG_DB (`config_db.json` text) of lab leaf `leaf`
/// (`leaf01`, `leaf02`) on `profile`.
pub fn base_config(profile: Profile, leaf: &str) -> Result<String> {
    use crate::fixtures::*;
    let dell = match (leaf, profile) {
        ("leaf01", Profile::Dell44) => LEAF01_CONFIG_DELL_44,
        ("leaf02", Profile::Dell44) => LEAF02_CONFIG_DELL_44,
        ("leaf01", _) => LEAF01_CONFIG,
        ("leaf02", _) => LEAF02_CONFIG,
        _ => anyhow::bail!("no lab leaf {leaf:?} (leaf01, leaf02)"),
    };
    if matches!(profile, Profile::Dell44 | Profile::Dell45) {
        return Ok(dell.to_owned());
    }
    let mut root: Map<String, Value> =
        serde_json::from_str(dell).context("the Dell leaf configuration is not a JSON object")?;
    for (table, fields) in DELL_ONLY_FIELDS {
        if fields == &["*"] {
            root.remove(*table);
            continue;
        }
        if let Some(Value::Object(entries)) = root.get_mut(*table) {
            for entry in entries.values_mut() {
                if let Value::Object(e) = entry {
                    for f in *fields {
                        e.remove(*f);
                    }
                }
            }
        }
    }
    let meta = root
        .entry("DEVICE_METADATA")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(local) = meta.as_object_mut().map(|m| {
        m.entry("localhost")
            .or_insert_with(|| Value::Object(Map::new()))
    }) && let Value::Object(l) = local
    {
        l.insert(
            "docker_routing_config_mode".into(),
            Value::String(profile.routing_config_mode().into()),
        );
    }
    Ok(serde_json::to_string_pretty(&Value::Object(root))?)
}

/// The modules the lab's zebra loads for `profile` (Debian's FRR).
pub fn zebra_modules(profile: Profile) -> &'static [&'static str] {
    match profile.flavour().fpm_module {
        FpmModule::DplaneFpmSonic => &["dplane_fpm_nl"],
        FpmModule::Fpm => &["fpm"],
        FpmModule::Unknown => &[],
    }
}

/// The lines the flavour's bgp start script appends to FRR's configuration
/// (`frr.conf` in split-unified, `zebra.conf` in split): sonic-buildimage
/// `docker_init.sh` `write_default_zebra_config` per release; none known
/// for the Enterprise builds.
pub fn start_script_lines(profile: Profile) -> &'static [&'static str] {
    match profile {
        Profile::Community202311 => &["no zebra nexthop kernel enable"],
        Profile::Community202411 | Profile::Community202505 => &[
            "no fpm use-next-hop-groups",
            "fpm address 127.0.0.1",
            "no zebra nexthop kernel enable",
        ],
        Profile::Dell44 | Profile::Dell45 | Profile::Edgecore202211 => &[],
    }
}

/// What the flavour's FRR makes of an installed `frr.conf` (`None`: no
/// file): one finding per line that breaks it.
pub fn frr_findings(profile: Profile, installed: Option<&str>) -> Vec<String> {
    let Some(text) = installed else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let has = |l: &str| lines.contains(&l);
    let mut out = Vec::new();
    let f = profile.flavour();
    match f.fpm_module {
        FpmModule::DplaneFpmSonic => {
            for l in ["fpm address 127.0.0.1", "no fpm use-next-hop-groups"] {
                if !has(l) {
                    out.push(format!(
                        "{profile}: frr.conf lacks `{l}`: zebra's dplane_fpm_sonic {}",
                        if l.starts_with("fpm address") {
                            "never connects to fpmsyncd, so routes do not reach the ASIC and \
                             EVPN VTEPs stay down (sonic-buildimage #21034, mini-lab #315)"
                        } else {
                            "sends next-hop groups fpmsyncd does not expect (the start script \
                             turns them off)"
                        }
                    ));
                }
            }
        }
        FpmModule::Fpm => {
            for l in lines
                .iter()
                .filter(|l| l.starts_with("fpm address") || l.contains("fpm use-next-hop-groups"))
            {
                out.push(format!(
                    "{profile}: frr.conf has `{l}`, which zebra with the old fpm module rejects \
                     (`% Unknown command`): the reload fails (mini-lab #315)"
                ));
            }
        }
        FpmModule::Unknown => {}
    }
    if matches!(
        profile,
        Profile::Community202311 | Profile::Community202411 | Profile::Community202505
    ) && !has("no zebra nexthop kernel enable")
    {
        out.push(format!(
            "{profile}: frr.conf lacks `no zebra nexthop kernel enable`, which the start script \
             sets: a reload turns kernel next-hop groups back on"
        ));
    }
    out
}

/// The FRR side of a leaf's bgp container: the installed `frr.conf` and
/// what the flavour's start script does to it.
#[derive(Debug, Clone)]
pub struct BgpContainer {
    pub profile: Profile,
    /// The `frr.conf` the agent installs.
    pub frr_conf: std::path::PathBuf,
}

impl BgpContainer {
    /// [`frr_findings`] of the installed file now.
    pub fn findings(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.frr_conf).ok();
        frr_findings(self.profile, text.as_deref())
    }

    /// What a restart of the bgp container does to `frr.conf`
    /// (`docker_init.sh`): `split` deletes it, `split-unified` appends the
    /// start script's lines that are missing (each `grep -q` guarded, as
    /// `write_default_zebra_config` does). Returns what it did.
    pub fn restart(&self) -> Result<String> {
        match self.profile.routing_config_mode() {
            "split" => match std::fs::remove_file(&self.frr_conf) {
                Ok(()) => Ok(format!(
                    "{}: split mode deleted {}",
                    self.profile,
                    self.frr_conf.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok("nothing to delete".into())
                }
                Err(e) => Err(e).with_context(|| format!("deleting {}", self.frr_conf.display())),
            },
            _ => {
                let mut text = std::fs::read_to_string(&self.frr_conf).unwrap_or_default();
                let missing: Vec<&str> = start_script_lines(self.profile)
                    .iter()
                    .copied()
                    .filter(|l| !text.lines().any(|x| x.starts_with(l)))
                    .collect();
                for l in &missing {
                    text.push_str(l);
                    text.push('\n');
                }
                std::fs::write(&self.frr_conf, text)
                    .with_context(|| format!("writing {}", self.frr_conf.display()))?;
                Ok(format!(
                    "{}: split-unified appended {missing:?}",
                    self.profile
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_bases_have_no_dell_fields_and_their_mode() {
        for p in Profile::ALL {
            for leaf in ["leaf01", "leaf02"] {
                let text = base_config(p, leaf).unwrap();
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    v["DEVICE_METADATA"]["localhost"]["docker_routing_config_mode"],
                    p.routing_config_mode(),
                    "{p} {leaf}"
                );
                let dell = matches!(p, Profile::Dell44 | Profile::Dell45);
                assert_eq!(
                    v["VLAN"]["Vlan3900"].get("autostate").is_some(),
                    dell,
                    "{p} {leaf}"
                );
                assert!(v["VXLAN_TUNNEL"]["vtep0"]["src_ip"].is_string());
                assert_eq!(v["VLAN"]["Vlan3900"]["vlanid"], "3900");
            }
        }
        assert!(
            base_config(Profile::Dell44, "leaf01")
                .unwrap()
                .contains("version_4_4_3")
        );
    }

    #[test]
    fn the_frr_side_flags_what_the_flavours_zebra_cannot_run() {
        let with =
            "fpm address 127.0.0.1\nno fpm use-next-hop-groups\nno zebra nexthop kernel enable\n";
        let without = "hostname leaf01\n";
        assert!(frr_findings(Profile::Community202411, Some(with)).is_empty());
        let f = frr_findings(Profile::Community202411, Some(without));
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].contains("fpm address 127.0.0.1") && f[0].contains("#21034"));
        let f = frr_findings(Profile::Dell45, Some(with));
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|x| x.contains("rejects")));
        assert!(frr_findings(Profile::Dell45, Some(without)).is_empty());
        assert!(frr_findings(Profile::Community202505, None).is_empty());
        assert_eq!(zebra_modules(Profile::Community202505), ["dplane_fpm_nl"]);
        assert_eq!(zebra_modules(Profile::Dell44), ["fpm"]);
        assert_eq!(zebra_modules(Profile::Community202311), ["fpm"]);
    }

    #[test]
    fn a_bgp_restart_does_what_docker_init_does() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("frr.conf");
        std::fs::write(&f, "hostname leaf01\n").unwrap();
        let split = BgpContainer {
            profile: Profile::Dell45,
            frr_conf: f.clone(),
        };
        split.restart().unwrap();
        assert!(!f.exists());
        std::fs::write(&f, "hostname leaf01\nno zebra nexthop kernel enable\n").unwrap();
        let unified = BgpContainer {
            profile: Profile::Community202411,
            frr_conf: f.clone(),
        };
        unified.restart().unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            text,
            "hostname leaf01\nno zebra nexthop kernel enable\nno fpm use-next-hop-groups\n\
             fpm address 127.0.0.1\n"
        );
        assert!(unified.findings().is_empty(), "{:?}", unified.findings());
    }
}
