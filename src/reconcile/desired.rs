//! Where the desired state comes from: the metal API (the daemon, `fetch`)
//! or a file (`apply --once --switch FILE`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::api::client::ApiClient;
use crate::api::error::ApiError;
use crate::api::{self, SwitchDocError, SyncStatus};
use crate::config::{ApiVersion, ConfigError};
use crate::error::Error;
use crate::files::{self, FileError, FileKind};
use crate::spec::SwitchDesc;

/// Fetching the desired state failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source is the API, but no client is configured.
    #[error(transparent)]
    NoApi(ConfigError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Document(#[from] SwitchDocError),
}

impl FetchError {
    /// Whether a later attempt may succeed without a change of input.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Api(e) => e.is_transient(),
            FetchError::File(e) => e.is_transient(),
            FetchError::NoApi(_) | FetchError::Document(_) => false,
        }
    }
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Error {
        match e {
            FetchError::NoApi(e) => Error::Config(e),
            FetchError::Api(e) => Error::Api(e),
            FetchError::File(e) => Error::File(e),
            FetchError::Document(e) => Error::SwitchDoc(e),
        }
    }
}

/// A source of the switch's desired state.
#[derive(Debug, Clone)]
pub enum DesiredSource {
    /// `Get` of switch `id` from the configured API.
    Api { id: String },
    /// A switch document on disk (v1 or v2, detected unless given), read
    /// only if it is a regular file of at most `max_bytes`.
    File {
        path: PathBuf,
        version: Option<ApiVersion>,
        max_bytes: u64,
    },
    /// A desired state held in memory (benchmarks, embedding).
    Memory(Arc<SwitchDesc>),
}

/// One fetched desired state.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub desc: Arc<SwitchDesc>,
    pub version: ApiVersion,
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
    pub async fn fetch(&self, api: Option<&mut ApiClient>) -> Result<Fetched, FetchError> {
        match self {
            DesiredSource::Api { id } => {
                let Some(client) = api else {
                    return Err(FetchError::NoApi(ConfigError::Invalid(vec![
                        "the desired state comes from the metal API, but no API is configured"
                            .into(),
                    ])));
                };
                let version = client.version();
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
                version: ApiVersion::V2,
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
