//! Layered configuration: built-in defaults, then an optional TOML file, then environment
//! variables. Every problem is collected and reported at once, naming the setting and where
//! its value came from, so an operator fixes a config in one round trip.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Profile, Provider};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A service's own settings. The runtime settings ([`RuntimeSettings`]) live beside them in
/// the same file and environment namespace.
pub trait ServiceConfig: Serialize + DeserializeOwned + Default + Send + Sync + 'static {
    /// Checks what types cannot express; push one problem per bad setting.
    fn validate(&self, _problems: &mut Problems) {}

    /// Unprefixed environment variables that set a setting, as `(VARIABLE, "section.key")`,
    /// for well-known names such as `OPENSEARCH_URL`. The prefixed form still wins.
    fn env_aliases() -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// Settings every service has: `[admin]`, `[shutdown]`, `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct RuntimeSettings {
    pub admin: AdminSettings,
    pub shutdown: ShutdownSettings,
    pub log: LogSettings,
}

impl RuntimeSettings {
    /// Defaults with the service's admin port from DESIGN.md.
    pub fn with_port(port: u16) -> Self {
        Self {
            admin: AdminSettings {
                port,
                ..AdminSettings::default()
            },
            ..Self::default()
        }
    }
}

/// The admin HTTP server (`/health`, `/ready`, `/metrics`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AdminSettings {
    /// Loopback by default; containers set `0.0.0.0` so the orchestrator can probe.
    pub bind: IpAddr,
    /// 0 picks a free port (logged at start), which tests use.
    pub port: u16,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ShutdownSettings {
    /// How long running work may take to finish after a shutdown signal.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl ShutdownSettings {
    fn validate(&self, problems: &mut Problems) {
        if self.drain_timeout.is_zero() {
            problems.push("shutdown.drain_timeout", "must be greater than 0");
        }
    }
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// `auto` is human-readable on a terminal and JSON otherwise.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Auto,
    Json,
    Text,
}

/// Problems found while validating, each naming its setting.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn push(&mut self, setting: &str, message: impl fmt::Display) {
        self.0.push(format!("{setting}: {message}"));
    }

    /// Pushes `message` for `setting` unless `ok`.
    pub fn check(&mut self, ok: bool, setting: &str, message: impl fmt::Display) {
        if !ok {
            self.push(setting, message);
        }
    }

    /// Adds `(setting, message)` pairs, as library settings report them.
    pub fn extend(&mut self, problems: impl IntoIterator<Item = (String, String)>) {
        for (setting, message) in problems {
            self.push(&setting, message);
        }
    }

    /// Adds problems that libraries already phrase as `"<setting>: <message>"` (their
    /// `validate()` output), as they are.
    pub fn extend_messages(&mut self, problems: impl IntoIterator<Item = String>) {
        self.0.extend(problems);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Configuration that cannot be used; `Display` is the message an operator sees.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration for {service}:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub service: String,
    pub problems: Vec<String>,
}

/// `ENRICHMENT_JOINER_` for `enrichment-joiner`: the prefix of a service's variables.
pub fn env_prefix(service: &str) -> String {
    format!("{}_", service.to_ascii_uppercase().replace('-', "_"))
}

/// Loads and validates the settings of `service`.
///
/// Variables are `<PREFIX><section>__<key>`, e.g. `INDEXER_ADMIN__PORT=9999`.
pub fn load<T: ServiceConfig>(
    service: &str,
    default_port: u16,
    file: Option<&Path>,
) -> Result<(RuntimeSettings, T), ConfigError> {
    let fail = |problems: Vec<String>| ConfigError {
        service: service.to_string(),
        problems,
    };

    let mut figment = Figment::new()
        .merge(Serialized::defaults(RuntimeSettings::with_port(
            default_port,
        )))
        .merge(Serialized::defaults(T::default()));
    if let Some(path) = file {
        // figment ignores a missing file; a file the operator named must exist.
        if let Err(e) = std::fs::metadata(path) {
            return Err(fail(vec![format!("--config {}: {e}", path.display())]));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    for (var, key) in T::env_aliases() {
        let key = key.to_string();
        figment = figment.merge(Env::raw().only(&[var]).map(move |_| key.clone().into()));
    }
    figment = figment.merge(Env::prefixed(&env_prefix(service)).split("__"));

    // Every part is checked even when another fails, so all problems show in one message.
    let prefix = env_prefix(service);
    let mut problems = Problems::default();
    let report = |section: Option<&str>, e: &figment::Error, problems: &mut Problems| {
        for mut e in e.clone() {
            if let Some(section) = section {
                e.path.insert(0, section.to_string());
            }
            problems.0.push(describe::<T>(&prefix, e));
        }
    };
    let admin = figment.focus("admin").extract::<AdminSettings>();
    let shutdown = figment.focus("shutdown").extract::<ShutdownSettings>();
    let log = figment.focus("log").extract::<LogSettings>();
    let settings = figment.extract::<T>();
    if let Err(e) = &admin {
        report(Some("admin"), e, &mut problems);
    }
    if let Err(e) = &shutdown {
        report(Some("shutdown"), e, &mut problems);
    }
    if let Err(e) = &log {
        report(Some("log"), e, &mut problems);
    }
    if let Ok(shutdown) = &shutdown {
        shutdown.validate(&mut problems);
    }
    match &settings {
        Ok(s) => s.validate(&mut problems),
        Err(e) => report(None, e, &mut problems),
    }
    let (Ok(admin), Ok(shutdown), Ok(log), Ok(settings)) = (admin, shutdown, log, settings) else {
        return Err(fail(problems.0));
    };
    let runtime = RuntimeSettings {
        admin,
        shutdown,
        log,
    };
    unknown_keys::<T>(&figment, &prefix, &runtime, &settings, &mut problems);
    if problems.is_empty() {
        Ok((runtime, settings))
    } else {
        Err(fail(problems.0))
    }
}

fn describe<T: ServiceConfig>(prefix: &str, e: figment::Error) -> String {
    let setting = if e.path.is_empty() {
        "(top level)".to_string()
    } else {
        e.path.join(".")
    };
    let source = e
        .metadata
        .as_ref()
        .map(|m| source_of::<T>(prefix, m, &setting))
        .unwrap_or_default();
    format!("{setting}: {}{source}", e.kind)
}

/// " (from <where>)" for a setting: the file, or the exact environment variable.
fn source_of<T: ServiceConfig>(prefix: &str, m: &figment::Metadata, setting: &str) -> String {
    if !m.name.contains("environment") {
        return m
            .source
            .as_ref()
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default();
    }
    let prefixed = format!(
        "{prefix}{}",
        setting.replace('.', "__").to_ascii_uppercase()
    );
    let var = T::env_aliases()
        .iter()
        .find(|(var, key)| {
            *key == setting
                && std::env::var_os(&prefixed).is_none()
                && std::env::var_os(var).is_some()
        })
        .map(|(var, _)| var.to_string())
        .unwrap_or(prefixed);
    format!(" (from environment variable {var})")
}

/// Flags settings that neither the runtime nor the service knows: a typo must not be ignored.
fn unknown_keys<T: ServiceConfig>(
    figment: &Figment,
    prefix: &str,
    runtime: &RuntimeSettings,
    service: &T,
    problems: &mut Problems,
) {
    let Ok(data) = figment.data() else { return };
    let Some(given) = data.get(&Profile::Default) else {
        return;
    };
    // What the extracted structs serialise to is exactly what serde accepted.
    let mut known = Dict::new();
    for value in [Value::serialize(runtime), Value::serialize(service)]
        .into_iter()
        .flatten()
    {
        if let Value::Dict(_, d) = value {
            known.extend(d);
        }
    }
    walk_unknown::<T>(figment, prefix, given, &known, "", problems);
}

fn walk_unknown<T: ServiceConfig>(
    figment: &Figment,
    prefix: &str,
    given: &Dict,
    known: &Dict,
    at: &str,
    problems: &mut Problems,
) {
    for (key, value) in given {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match (value, known.get(key)) {
            // Report the leaves, so the message names the exact variable or key.
            (Value::Dict(_, inner), None) => {
                walk_unknown::<T>(figment, prefix, inner, &Dict::new(), &path, problems)
            }
            (_, None) => {
                let from = figment
                    .find_metadata(&path)
                    .map(|m| source_of::<T>(prefix, m, &path))
                    .unwrap_or_default();
                problems.push(&path, format!("unknown setting{from}"));
            }
            (Value::Dict(_, inner), Some(Value::Dict(_, known_inner))) => {
                walk_unknown::<T>(figment, prefix, inner, known_inner, &path, problems)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
