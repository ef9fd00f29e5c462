//! [`TestConfig`]: the one way the tests build an agent configuration.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use metal_switchd::config::Config;
use metal_switchd_lab::fixtures;

/// An agent configuration as TOML keys: the lab's leaf01 configuration
/// (`lab/config/leaf01.toml`) or nothing, with keys set on top; built into
/// a [`Config`] the way the agent reads its file, or written as that file
/// for the binary.
#[derive(Debug, Clone)]
pub struct TestConfig {
    table: toml::Table,
}

impl TestConfig {
    /// The lab's leaf01 agent configuration.
    pub fn leaf01() -> TestConfig {
        TestConfig::from_toml(fixtures::LEAF01_AGENT_CONFIG)
    }

    /// Only the keys of `text` (TOML).
    pub fn from_toml(text: &str) -> TestConfig {
        TestConfig {
            table: toml::from_str(text).expect("test configuration (TOML)"),
        }
    }

    /// `key` = `value`.
    pub fn set(mut self, key: &str, value: impl Into<toml::Value>) -> TestConfig {
        self.table.insert(key.to_owned(), value.into());
        self
    }

    /// `key` = the path `p`.
    pub fn path(self, key: &str, p: &Path) -> TestConfig {
        self.set(key, p.display().to_string())
    }

    /// The keys of `text` (TOML) on top.
    pub fn extra(mut self, text: &str) -> TestConfig {
        let more: toml::Table = toml::from_str(text).expect("extra TOML");
        self.table.extend(more);
        self
    }

    /// Without `keys` (their defaults, or what the environment sets).
    pub fn without(mut self, keys: &[&str]) -> TestConfig {
        for k in keys {
            self.table.remove(*k);
        }
        self
    }

    /// The configuration file's text.
    pub fn text(&self) -> String {
        toml::to_string(&self.table).expect("TOML")
    }

    /// The configuration as the agent reads it from its file.
    pub fn build(&self) -> Config {
        Config::from_sources(Some(("test.toml", &self.text())), Vec::new())
            .expect("test configuration")
    }

    /// The configuration file at `path`, for the binary.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.text()).expect("write the configuration");
        path.to_owned()
    }
}
