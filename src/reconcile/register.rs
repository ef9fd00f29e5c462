//! Switch registration (feature `agent`): what the switch registers and the
//! loop that registers it.
//!
//! Like metal-core on SONiC:
//! - wait until SONiC is initialised (`CONFIG_DB_INITIALIZED`, APPL_DB
//!   `PortInitDone`), then read the PORT table (names and aliases);
//! - one nic per port not in `additional_bridge_ports`, named per
//!   `interface_naming_schema` (reference §7.3): `default` name = kernel
//!   name, identifier = alias; `swap` the other way round; `name` both the
//!   kernel name; `alias` both the alias. The identifier must equal the LLDP
//!   port id the switch advertises (trap 8), so it must not be empty;
//! - each nic's operational state from the kernel (`IFF_RUNNING`; `UNKNOWN`
//!   if the netdev does not exist) — v2 needs it (trap 7);
//! - the OS version from `build_version` in `sonic_version_file`;
//! - the management IP: the first global unicast address of
//!   `management_interface` (`eth0`), from the kernel view (the same
//!   [`KernelView`] the daemon keeps current);
//! - user `admin`, `metal_core_version` = [`AGENT_VERSION`](crate::api::AGENT_VERSION).
//!
//! [`register`] retries transient failures (SONiC not ready, no management
//! address yet, API unreachable, 5xx, `unavailable`) with backoff until it
//! succeeds; a permanent failure (bad configuration, 4xx,
//! `invalid_argument`, a refused token) ends it with the error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::api::client::ApiClient;
use crate::api::transport::RetryPolicy;
use crate::api::{AGENT_VERSION, FetchedSwitch, RegisteredNic, Registration};
use crate::config::{Config, NamingSchema};
use crate::configdb::redis::ConfigDb;
use crate::configdb::schema::Table;
use crate::error::Error;
use crate::kernel::KernelView;
use crate::observed::PortOperState;
use crate::spec::natural_cmp;
use crate::systemd::watchdog::Liveness;

/// The management user metal-core registers on SONiC.
pub const MANAGEMENT_USER: &str = "admin";

/// `build_version` of SONiC's `sonic_version.yml` (a flat YAML map of
/// scalars; quotes are removed). Pure.
pub fn build_version(yaml: &str) -> Option<String> {
    crate::flavour::yaml_scalar(yaml, "build_version")
}

/// The nics to register from the PORT table (kernel name → alias). Pure.
pub fn registered_nics(
    ports: &BTreeMap<String, Option<String>>,
    schema: NamingSchema,
    skip: &[String],
    oper: &BTreeMap<String, PortOperState>,
) -> Result<Vec<RegisteredNic>, Vec<String>> {
    let mut names: Vec<&String> = ports.keys().collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let mut problems = Vec::new();
    let mut nics = Vec::new();
    for name in names {
        let alias = ports.get(name).cloned().flatten().filter(|a| !a.is_empty());
        if skip.iter().any(|s| s == name || Some(s) == alias.as_ref()) {
            continue;
        }
        let need_alias = || {
            alias.clone().ok_or_else(|| {
                format!(
                    "port {name} has no alias in CONFIG_DB PORT, but interface_naming_schema = \
                     {schema:?} registers the alias; the nic identifier must equal the LLDP \
                     port id"
                )
            })
        };
        let pair = match schema {
            NamingSchema::Default => need_alias().map(|a| (name.clone(), a)),
            NamingSchema::Swap => need_alias().map(|a| (a, name.clone())),
            NamingSchema::Name => Ok((name.clone(), name.clone())),
            NamingSchema::Alias => need_alias().map(|a| (a.clone(), a)),
        };
        match pair {
            Ok((nic_name, identifier)) => nics.push(RegisteredNic {
                name: nic_name,
                identifier,
                oper: oper.get(name).copied().unwrap_or(PortOperState::Unknown),
            }),
            Err(p) => problems.push(p),
        }
    }
    // An entry that names no port would register (and so hand to the API)
    // the port the operator meant to keep: refused by name.
    for s in skip {
        let known = ports
            .iter()
            .any(|(name, alias)| name == s || alias.as_deref() == Some(s.as_str()));
        if !known {
            problems.push(format!(
                "additional_bridge_ports names {}, which is not in CONFIG_DB PORT (by name or \
                 alias)",
                crate::names::quoted(s)
            ));
        }
    }
    if nics.is_empty() && problems.is_empty() {
        problems.push(format!(
            "CONFIG_DB PORT lists no ports outside additional_bridge_ports ({} ports in total)",
            ports.len()
        ));
    }
    if problems.is_empty() {
        Ok(nics)
    } else {
        Err(problems)
    }
}

/// How to register.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// How long to wait for SONiC's readiness flags per attempt.
    pub wait_ready: Duration,
    /// Backoff between attempts (attempt counts are ignored: until success).
    pub retry: RetryPolicy,
    /// Stop retrying after this long (`None` = never).
    pub give_up_after: Option<Duration>,
    /// Told at every attempt (the daemon's watchdog: registration may wait
    /// for the API or SONiC far longer than `WatchdogSec`, attempt by
    /// attempt).
    pub progress: Option<Liveness>,
}

impl RegisterOptions {
    /// The longest one attempt (and the pause after it) may take: SONiC's
    /// readiness, one API call, the longest backoff.
    pub fn attempt_bound(&self, api_timeout: Duration) -> Duration {
        self.wait_ready + api_timeout + self.retry.max.max(self.retry.initial)
    }
}

fn required(cfg_value: &Option<String>, key: &str) -> Result<String, Error> {
    cfg_value
        .clone()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            Error::Registration(vec![format!(
                "{key} is not set (set it in the configuration file or as METAL_CORE_{})",
                key.to_ascii_uppercase()
            )])
        })
}

/// Collect what the switch registers (one attempt).
pub async fn gather(
    cfg: &Config,
    db: &mut ConfigDb,
    kernel: &KernelView,
    wait_ready: Duration,
) -> Result<Registration, Error> {
    let id = cfg
        .hostname()
        .map_err(|e| Error::Registration(vec![e.to_string()]))?
        .to_owned();
    let partition = required(&cfg.partition_id, "partition_id")?;
    let rack = required(&cfg.rack_id, "rack_id")?;
    let room = cfg.room_id.clone().filter(|r| !r.trim().is_empty());

    let state = db
        .read_when_ready(wait_ready, Duration::from_secs(1))
        .await?;
    let ports: BTreeMap<String, Option<String>> = state
        .table(Table::Port)
        .map(|(k, f)| (k.to_owned(), f.get("alias").cloned()))
        .collect();
    let oper = kernel.oper_states();
    let nics = registered_nics(
        &ports,
        cfg.interface_naming_schema,
        &cfg.additional_bridge_ports,
        &oper,
    )
    .map_err(Error::Registration)?;
    let management_ip = kernel.management_address(&cfg.management_interface)?;
    let path = &cfg.sonic_version_file;
    let text = crate::files::read_text(
        crate::files::FileKind::SonicVersion,
        path,
        crate::files::SONIC_VERSION_MAX_BYTES,
    )?;
    let os_version = build_version(&text).ok_or_else(|| Error::SonicVersion {
        path: path.clone(),
        message: "it has no build_version".into(),
    })?;
    Ok(Registration {
        id,
        partition,
        rack: Some(rack),
        room,
        management_ip,
        management_user: MANAGEMENT_USER.into(),
        os_version,
        agent_version: AGENT_VERSION.into(),
        nics,
    })
}

/// Gather and register, retrying transient failures with backoff until the
/// API accepted the registration.
pub async fn register(
    cfg: &Config,
    db: &mut ConfigDb,
    kernel: &KernelView,
    client: &mut ApiClient,
    opts: &RegisterOptions,
) -> Result<(Registration, FetchedSwitch), Error> {
    let start = Instant::now();
    let mut failed = 0u32;
    let policy = opts.retry.until_success(opts.give_up_after);
    loop {
        if let Some(l) = &opts.progress {
            l.progress();
        }
        let attempt = async {
            let reg = gather(cfg, db, kernel, opts.wait_ready).await?;
            // One API attempt per round: this loop does the retrying.
            let previous = client.set_retry(RetryPolicy::NONE);
            let result = client.register(&reg).await;
            client.set_retry(previous);
            Ok::<_, Error>((reg, result?))
        };
        match attempt.await {
            Ok((reg, fetched)) => {
                tracing::info!(
                    switch = %reg.id,
                    nics = reg.nics.len(),
                    management_ip = %reg.management_ip,
                    api = %client.base_url(),
                    attempts = failed + 1,
                    "switch registered"
                );
                return Ok((reg, fetched));
            }
            Err(e) => {
                let Some(delay) = policy.retry_after(&mut failed, start, e.is_transient()) else {
                    return Err(e);
                };
                tracing::warn!(
                    attempt = failed,
                    retry_in = ?delay,
                    error = %e,
                    "registration failed, retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> BTreeMap<String, Option<String>> {
        [
            ("Ethernet10", Some("Eth3/3")),
            ("Ethernet0", Some("Eth1/1")),
            ("Ethernet2", Some("Eth1/3")),
            ("Ethernet120", Some("Eth31/1")),
        ]
        .iter()
        .map(|(n, a)| ((*n).to_owned(), a.map(str::to_owned)))
        .collect()
    }

    #[test]
    fn naming_schemas() {
        let oper = BTreeMap::from([("Ethernet0".to_owned(), PortOperState::Up)]);
        let pairs = |schema| {
            registered_nics(&ports(), schema, &["Ethernet2".into()], &oper)
                .unwrap()
                .into_iter()
                .map(|n| (n.name, n.identifier, n.oper))
                .collect::<Vec<_>>()
        };
        let up = PortOperState::Up;
        let unk = PortOperState::Unknown;
        let s = |x: &str| x.to_owned();
        assert_eq!(
            pairs(NamingSchema::Default),
            [
                (s("Ethernet0"), s("Eth1/1"), up),
                (s("Ethernet10"), s("Eth3/3"), unk),
                (s("Ethernet120"), s("Eth31/1"), unk)
            ]
        );
        assert_eq!(
            pairs(NamingSchema::Swap)[0],
            (s("Eth1/1"), s("Ethernet0"), up)
        );
        assert_eq!(
            pairs(NamingSchema::Name)[1],
            (s("Ethernet10"), s("Ethernet10"), unk)
        );
        assert_eq!(
            pairs(NamingSchema::Alias)[2],
            (s("Eth31/1"), s("Eth31/1"), unk)
        );
    }

    #[test]
    fn ports_without_alias_are_refused_where_the_alias_is_needed() {
        let mut p = ports();
        p.insert("Ethernet4".into(), None);
        let e = registered_nics(&p, NamingSchema::Default, &[], &BTreeMap::new()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("port Ethernet4 has no alias"), "{e:?}");
        assert!(registered_nics(&p, NamingSchema::Name, &[], &BTreeMap::new()).is_ok());
        let e = registered_nics(&BTreeMap::new(), NamingSchema::Name, &[], &BTreeMap::new())
            .unwrap_err();
        assert!(e[0].contains("no ports"), "{e:?}");
    }

    #[test]
    fn bridge_ports_naming_no_port_are_refused_by_name() {
        // By name and by alias, an entry that names a port is used.
        let skip = ["Ethernet2".to_owned(), "Eth3/3".to_owned()];
        let nics = registered_nics(&ports(), NamingSchema::Name, &skip, &BTreeMap::new()).unwrap();
        let names: Vec<_> = nics.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["Ethernet0", "Ethernet120"]);
        // A typo would register the port the operator meant to keep.
        let skip = ["Ethernet2".to_owned(), "Ethernet 10".to_owned()];
        let e = registered_nics(&ports(), NamingSchema::Name, &skip, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(
                "additional_bridge_ports names \"Ethernet 10\", which is not in CONFIG_DB PORT"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn sonic_build_version() {
        let y = "---\nbuild_version: 'SONiC.4.5.1-Enterprise_Base'\ndebian_version: '11.9'\n\
                 kernel_version: 5.10.0-21-2-amd64\nasic_type: vs\n";
        assert_eq!(
            build_version(y).as_deref(),
            Some("SONiC.4.5.1-Enterprise_Base")
        );
        assert_eq!(
            build_version("build_version: ec202211_metal-stack_1.0.0 # x\n").as_deref(),
            Some("ec202211_metal-stack_1.0.0")
        );
        assert_eq!(
            build_version("build_version: \"v\"\n").as_deref(),
            Some("v")
        );
        assert_eq!(build_version("build_version: ''\n"), None);
        assert_eq!(build_version("version: x\n"), None);
    }
}
