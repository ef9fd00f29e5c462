//! The adapters' options, built from the configuration: the one place where
//! [`Config`] meets the adapters (feature `agent`).
//!
//! Every adapter takes its own options value — the metal API client
//! ([`ApiOptions`]), the FRR installer, validator and reloader, the BGP
//! state source, phone-home, the agent, registration, the reporter, kernel
//! drift — and knows nothing of the configuration file. A new setting is
//! read here (and declared in [`crate::config`]).

use std::time::Duration;

use super::register::RegisterOptions;
use crate::api::client::{ApiClient, ApiError, ApiOptions, Endpoint, check_base, v1_base_url};
use crate::api::grpc::GrpcSettings;
use crate::api::token;
use crate::api::transport::RetryPolicy;
use crate::config::{ApiVersion, BgpStateSource, Config, FrrReload, FrrValidation};
use crate::configdb::redis::ApplyOptions;
use crate::frr::bgp::{BgpSource, MAX_STATE_FILE_AGE};
use crate::frr::install::Installer;
use crate::frr::reload::Reloader;
use crate::frr::validate::Validator;
use crate::kernel::drift::DriftPolicy;
use crate::lldp::PhoneHomeOptions;
use crate::report::{Origin, ReporterOptions};

/// Whether (and how) the agent changes the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write CONFIG_DB and FRR (`reconfigure_switch = true`, `apply`).
    Apply,
    /// Compute and report, write nothing (`reconfigure_switch = false`).
    DryRun,
}

/// How the agent is put together.
pub struct AgentOptions {
    pub mode: Mode,
    /// Install and reload FRR (false: CONFIG_DB only).
    pub frr: bool,
    /// How long a reconcile may wait for SONiC to be ready.
    pub wait_ready: Duration,
    /// Called before each CONFIG_DB phase and after its write (crash points,
    /// tests).
    pub hooks: ApplyOptions,
}

/// The metal API client of the configured version. Reads `hmac_key_file`
/// (v1) now; the v2 token file is read for every request.
pub fn api(cfg: &Config) -> Result<ApiOptions, ApiError> {
    let endpoint = match cfg.api_version() {
        ApiVersion::V1 => Endpoint::V1 {
            base: v1_base_url(
                &cfg.metal_api_protocol,
                &cfg.metal_api_ip,
                cfg.metal_api_port,
                &cfg.metal_api_basepath,
            )?,
            key: hmac_key(cfg)?,
        },
        ApiVersion::V2 => {
            let url = cfg.metal_apiserver_url.as_deref().ok_or_else(|| {
                ApiError::Config(
                    "api_version = v2 needs metal_apiserver_url \
                     (or METAL_CORE_METAL_APISERVER_URL)"
                        .into(),
                )
            })?;
            let base = check_base("metal_apiserver_url", url)?;
            // The bearer token is the switch's identity: never in clear
            // text unless the configuration says it accepts that.
            if base.starts_with("http:") && !cfg.api_allow_plaintext {
                return Err(ApiError::Config(format!(
                    "metal_apiserver_url {base} is plain HTTP: the switch's token would be \
                     readable by anyone on the path, so the agent does not send it; use \
                     https, or set api_allow_plaintext = true to accept that (labs only)"
                )));
            }
            Endpoint::V2 {
                base,
                token_file: cfg.metal_apiserver_token_file.clone(),
            }
        }
    };
    let grpc = match cfg.api_version() {
        ApiVersion::V1 => grpc(cfg)?,
        ApiVersion::V2 => None,
    };
    Ok(ApiOptions {
        endpoint,
        grpc,
        ca_file: cfg.api_ca_file.clone(),
        timeout: cfg.timeout.0,
        max_response_bytes: cfg.api_max_response_bytes,
        retry: retry(cfg),
    })
}

/// The v1 Metal-Edit key: `hmac_key` or the content of `hmac_key_file`.
fn hmac_key(cfg: &Config) -> Result<crate::config::Secret, ApiError> {
    match (&cfg.hmac_key, &cfg.hmac_key_file) {
        (Some(k), None) => Ok(k.clone()),
        (None, Some(f)) => Ok(token::read_secret_file(token::HMAC_KEY, f)?),
        (Some(_), Some(_)) => Err(ApiError::Config(
            "hmac_key and hmac_key_file are both set; set only one".into(),
        )),
        (None, None) => Err(ApiError::Config(
            "api_version = v1 needs the Metal-Edit HMAC key: set hmac_key_file \
             (or hmac_key / METAL_CORE_HMAC_KEY)"
                .into(),
        )),
    }
}

/// A metal API client ([`api`]'s options).
pub fn api_client(cfg: &Config) -> Result<ApiClient, ApiError> {
    ApiClient::new(api(cfg)?)
}

/// The retries of an API call (`api_retry_*`).
pub fn retry(cfg: &Config) -> RetryPolicy {
    RetryPolicy {
        attempts: Some(cfg.api_retry_attempts.max(1)),
        initial: cfg.api_retry_backoff.0,
        max: cfg.api_retry_max_backoff.0,
        give_up_after: None,
    }
}

/// v1 phone-home's gRPC event service; `None` without `grpc_address`.
pub fn grpc(cfg: &Config) -> Result<Option<GrpcSettings>, ApiError> {
    let Some(address) = cfg.grpc_address.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let need = |key: &str, v: &Option<std::path::PathBuf>| {
        v.clone().ok_or_else(|| {
            ApiError::Config(format!(
                "grpc_address is set but {key} is not; the gRPC event service needs mutual TLS"
            ))
        })
    };
    Ok(Some(GrpcSettings {
        address: address.to_owned(),
        ca_cert_file: need("grpc_ca_cert_file", &cfg.grpc_ca_cert_file)?,
        client_cert_file: need("grpc_client_cert_file", &cfg.grpc_client_cert_file)?,
        client_key_file: need("grpc_client_key_file", &cfg.grpc_client_key_file)?,
        timeout: cfg.timeout.0,
    }))
}

/// How a rendered frr.conf is checked (`frr_validation`).
pub fn validator(cfg: &Config) -> Validator {
    let timeout = cfg.frr_validation_timeout.0;
    match cfg.frr_validation {
        FrrValidation::Vtysh => Validator::Vtysh {
            vtysh: cfg.vtysh_path.clone(),
            timeout,
        },
        FrrValidation::Systemd => Validator::Systemd {
            bus: cfg.systemd_bus_address.clone(),
            template: cfg.frr_validation_unit.clone(),
            timeout,
        },
    }
}

/// How FRR loads an installed frr.conf (`frr_reload`).
pub fn reloader(cfg: &Config) -> Reloader {
    let timeout = cfg.frr_reload_timeout.0;
    match cfg.frr_reload {
        FrrReload::Systemd => Reloader::Systemd {
            bus: cfg.systemd_bus_address.clone(),
            unit: cfg.frr_reload_unit.clone(),
            timeout,
        },
        FrrReload::Exec => Reloader::Exec {
            program: cfg.frr_reload_path.clone(),
            args: cfg.frr_reload_args.clone(),
            timeout,
        },
        FrrReload::None => Reloader::None,
    }
}

/// Where frr.conf is installed, how it is validated and reloaded.
pub fn installer(cfg: &Config) -> Installer {
    Installer {
        dest: cfg.frr_config.clone(),
        validator: validator(cfg),
        reloader: reloader(cfg),
    }
}

/// Where BGP states come from; `None` when it is the file and
/// `bgp_neighbor_state_file` is empty (reading is off).
pub fn bgp_source(cfg: &Config) -> Option<BgpSource> {
    match cfg.bgp_state_source {
        BgpStateSource::File => cfg
            .bgp_neighbor_state_file
            .clone()
            .map(|path| BgpSource::File {
                path,
                max_age: MAX_STATE_FILE_AGE,
            }),
        BgpStateSource::Vtysh => Some(BgpSource::Vtysh {
            vtysh: cfg.vtysh_path.clone(),
            vty_socket_dir: cfg.frr_vty_socket_dir.clone(),
            timeout: cfg.timeout.0,
        }),
    }
}

/// Phone-home: the configured interval, defaults otherwise.
pub fn phone_home(cfg: &Config) -> PhoneHomeOptions {
    PhoneHomeOptions {
        interval: cfg.phone_home_interval.0,
        ..PhoneHomeOptions::default()
    }
}

/// The daemon's agent: it writes only with `reconfigure_switch`.
pub fn agent(cfg: &Config) -> AgentOptions {
    AgentOptions {
        mode: if cfg.reconfigure_switch {
            Mode::Apply
        } else {
            Mode::DryRun
        },
        frr: true,
        wait_ready: Duration::ZERO,
        hooks: ApplyOptions {
            barrier_timeout: cfg.barrier_timeout.0,
            ..ApplyOptions::default()
        },
    }
}

/// Registration: until it succeeds, with the API's backoff.
pub fn register(cfg: &Config) -> RegisterOptions {
    RegisterOptions {
        wait_ready: Duration::from_secs(120),
        retry: retry(cfg),
        give_up_after: None,
        progress: None,
    }
}

/// The daemon's reporter (`status_file`: whether it writes `status.json`).
pub fn reporter(cfg: &Config, status_file: bool) -> ReporterOptions {
    ReporterOptions {
        status_dir: status_file.then(|| cfg.state_directory.clone()),
        origin: Origin::Api(cfg.api_version()),
        naming: cfg.interface_naming_schema,
        frr_config: cfg.frr_config.clone(),
    }
}

/// Kernel drift: its grace period, the rest by default.
pub fn drift(cfg: &Config) -> DriftPolicy {
    DriftPolicy {
        grace: cfg.kernel_drift_grace.0,
        ..DriftPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_configuration_errors_say_what_to_set() {
        let e = api(&Config::default()).unwrap_err();
        assert!(e.to_string().contains("hmac_key_file"), "{e}");
        assert!(e.is_invalid_input());
        let cfg = Config {
            api_version: Some(ApiVersion::V2),
            ..Config::default()
        };
        let e = api(&cfg).unwrap_err();
        assert!(e.to_string().contains("metal_apiserver_url"), "{e}");
    }

    /// Issue 22, item 4: a v2 token is never sent over plain HTTP unless
    /// api_allow_plaintext names the risk.
    #[test]
    fn a_v2_token_needs_https_or_api_allow_plaintext() {
        let mut cfg = Config {
            api_version: Some(ApiVersion::V2),
            metal_apiserver_url: Some("http://10.1.2.3:8080".into()),
            ..Config::default()
        };
        let e = api(&cfg).unwrap_err();
        assert!(e.to_string().contains("api_allow_plaintext = true"), "{e}");
        assert!(e.is_invalid_input());
        cfg.api_allow_plaintext = true;
        assert!(api_client(&cfg).is_ok());
        cfg.api_allow_plaintext = false;
        cfg.metal_apiserver_url = Some("https://api.example.com".into());
        assert!(api_client(&cfg).is_ok());
    }

    #[test]
    fn grpc_settings_need_all_files() {
        let cfg = Config {
            grpc_address: Some("metal-api:50051".into()),
            grpc_ca_cert_file: Some("/ca.pem".into()),
            ..Config::default()
        };
        let e = grpc(&cfg).unwrap_err();
        assert!(e.to_string().contains("grpc_client_cert_file"), "{e}");
        assert_eq!(grpc(&Config::default()).unwrap(), None);
    }
}
