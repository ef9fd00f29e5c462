//! Where the desired state comes from: the metal API (the daemon, `fetch`)
//! or a file (`apply --once --switch FILE`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::api::client::ApiClient;
use crate::api::{self, SyncStatus, WireVersion};
use crate::config::ApiVersion;
use crate::error::Error;
use crate::files::{self, FileKind};
use crate::spec::SwitchDesc;

/// A source of the switch's desired state.
#[derive(Debug, Clone)]
pub enum DesiredSource {
    /// `Get` of switch `id` from the configured API.
    Api { id: String },
    /// A switch document on disk (v1 or v2, detected unless given), read
    /// only if it is a regular file of at most `max_bytes`.
    File {
        path: PathBuf,
        version: Option<WireVersion>,
        max_bytes: u64,
    },
    /// A desired state held in memory (benchmarks, embedding).
    Memory(Arc<SwitchDesc>),
}

/// One fetched desired state.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub desc: Arc<SwitchDesc>,
    pub version: WireVersion,
    /// The API's record of the last reports (`None` for files).
    pub sync: Option<SyncStatus>,
    /// The API's generation of the switch, when it has one (v2).
    pub api_generation: Option<u64>,
}

impl DesiredSource {
    /// Replace an in-memory desired state (no effect on other sources).
    pub fn set_memory(&mut self, desc: SwitchDesc) {
        if let DesiredSource::Memory(d) = self {
            *d = Arc::new(desc);
        }
    }

    /// Fetch the desired state (the API client is needed for `Api`).
    pub async fn fetch(&self, api: Option<&mut ApiClient>) -> Result<Fetched, Error> {
        match self {
            DesiredSource::Api { id } => {
                let Some(client) = api else {
                    return Err(Error::Config(crate::config::ConfigError::Invalid(vec![
                        "the desired state comes from the metal API, but no API is configured"
                            .into(),
                    ])));
                };
                let version = match client.version() {
                    ApiVersion::V1 => WireVersion::V1,
                    ApiVersion::V2 => WireVersion::V2,
                };
                let fetched = client.get(id).await?;
                Ok(Fetched {
                    desc: Arc::new(fetched.desc),
                    version,
                    sync: Some(fetched.sync),
                    api_generation: fetched.generation,
                })
            }
            DesiredSource::Memory(desc) => Ok(Fetched {
                desc: desc.clone(),
                version: WireVersion::V2,
                sync: None,
                api_generation: None,
            }),
            DesiredSource::File {
                path,
                version,
                max_bytes,
            } => {
                let text = files::read_text(FileKind::SwitchDocument, path, *max_bytes)?;
                let (version, desc) =
                    api::parse_switch_document(&path.display().to_string(), &text, *version)?;
                Ok(Fetched {
                    desc: Arc::new(desc),
                    version,
                    sync: None,
                    api_generation: None,
                })
            }
        }
    }
}
