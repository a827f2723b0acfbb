//! `callboard.toml`: every key has a default, so `callboard serve` runs
//! without a file. `callboard config` prints the effective configuration.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

pub use crate::plugins::settings::{
    GrantsConfig, LimitOverrides, Limits, PluginsConfig, RuntimeSettings, ViewLimits,
};

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds to. Default `127.0.0.1:7007` (Backstage's port).
    pub bind: SocketAddr,
    /// Where Callboard keeps its state: plugins, databases, compiled-code cache.
    /// Relative paths resolve against the directory the server starts in.
    /// Default `./data`.
    pub data_dir: PathBuf,
    /// The plugin runtime.
    pub plugins: PluginsConfig,
    /// The software catalog.
    pub catalog: callboard_catalog::CatalogConfig,
    /// The organisation running this portal: commercial plugin licences must
    /// be issued to exactly this name. Default empty (no licence matches).
    pub organization: String,
    /// Which vendors' signatures the operator trusts.
    pub trust: TrustConfig,
    /// What plugins may do.
    pub grants: GrantsConfig,
    /// The HTTP server: timeouts, caps, sign-in, tokens, allowed hosts.
    pub server: crate::server::config::ServerConfig,
    /// Reverse proxies trusted to say who the user is.
    pub proxy: ProxyConfig,
    /// The storage backend: embedded SQLite (default) or PostgreSQL.
    pub database: crate::database::DatabaseConfig,
    /// Sign-in: anonymous access, the first administrators, guest and
    /// OpenID Connect sign-in.
    pub auth: crate::identity::config::AuthConfig,
    /// Logs, metrics and traces.
    pub telemetry: crate::telemetry::config::TelemetryConfig,
    /// TechDocs building.
    pub docs: crate::techdocs::DocsConfig,
    /// The language-model provider plugins granted `models` ask.
    pub models: ModelsConfig,
}

pub use crate::plugins::settings::{ModelsConfig, TrustConfig, TrustedVendor};

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7007)),
            data_dir: PathBuf::from("data"),
            plugins: PluginsConfig::default(),
            catalog: callboard_catalog::CatalogConfig::default(),
            organization: String::new(),
            trust: TrustConfig::default(),
            grants: GrantsConfig::default(),
            server: crate::server::config::ServerConfig::default(),
            proxy: ProxyConfig::default(),
            database: crate::database::DatabaseConfig::default(),
            auth: crate::identity::config::AuthConfig::default(),
            telemetry: crate::telemetry::config::TelemetryConfig::default(),
            docs: crate::techdocs::DocsConfig::default(),
            models: ModelsConfig::default(),
        }
    }
}

/// `[proxy]`: who may name the user. Callboard takes the user from the
/// `x-forwarded-user` header only when the connection comes from one of
/// these addresses; from anyone else the header is ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Addresses or CIDR ranges of the authenticating reverse proxies in
    /// front of Callboard: `trusted = ["10.0.0.5", "10.1.0.0/16"]`.
    /// Default empty: `x-forwarded-user` is never trusted.
    pub trusted: Vec<TrustedProxy>,
    /// Longest user name accepted from a trusted proxy, in bytes; a longer
    /// one, or one with control characters, is ignored. Default 256.
    pub max_user_bytes: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            trusted: Vec::new(),
            max_user_bytes: 256,
        }
    }
}

impl ProxyConfig {
    /// Whether a connection from `peer` comes from a trusted proxy.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`.
        let peer = match peer {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|t| t.0.contains(&peer))
    }
}

/// One trusted proxy: an IP address or a CIDR range, written as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustedProxy(pub ipnet::IpNet);

impl TryFrom<String> for TrustedProxy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(Self(net.trunc()));
        }
        text.parse::<std::net::IpAddr>()
            .map(|ip| Self(ipnet::IpNet::from(ip)))
            .map_err(|_| {
                format!("proxy.trusted: {text:?} is neither an IP address nor a CIDR range")
            })
    }
}

impl From<TrustedProxy> for String {
    fn from(proxy: TrustedProxy) -> Self {
        proxy.0.to_string()
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        source: toml::de::Error,
    },
    /// An environment variable names an unknown key or holds a bad value.
    #[error("invalid environment variable {var}: {reason}")]
    Env {
        /// The variable, e.g. `CALLBOARD_SERVER__MAX_CONNECTIONS`.
        var: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is well-formed TOML but not valid where it is.
    #[error("invalid config file {path}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, e.g. `grants.plugins.ci.http_hosts`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// Prefix of the environment variables that set config keys:
/// `CALLBOARD_<KEY>` for a top-level key, `CALLBOARD_<SECTION>__<KEY>` (two
/// underscores between levels) below it, e.g. `CALLBOARD_SERVER__MAX_CONNECTIONS=1024`
/// or `CALLBOARD_PLUGINS__LIMITS__TIMEOUT_MS=2000`.
pub const ENV_PREFIX: &str = "CALLBOARD_";

/// Variables with the prefix that the command line or a module reads
/// itself; never config keys.
const ENV_NOT_KEYS: &[&str] = &[
    "CONFIG",
    "DATABASE_URL",
    "DATABASE_PASSWORD",
    "OIDC_CLIENT_SECRET",
];

/// One environment variable that sets a key.
struct EnvKey {
    var: String,
    path: Vec<String>,
    value: String,
}

impl Config {
    /// Reads `path` (or starts from the defaults when `None`), then applies
    /// the `CALLBOARD_*` environment variables (see [`ENV_PREFIX`]).
    /// Returns the config and warnings about variables it ignored.
    pub fn load(path: Option<&Path>) -> Result<(Self, Vec<String>), ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with the environment given.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let origin = path.map_or_else(|| PathBuf::from("(defaults)"), Path::to_owned);
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        // The file alone first: its errors keep their line and column.
        let mut config: Self = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: origin.clone(),
            source,
        })?;
        let (keys, warnings) = env_keys(env);
        if !keys.is_empty() {
            config = apply_env(&text, &keys)
                .map_err(|(var, reason)| ConfigError::Env { var, reason })?;
        }
        let invalid = |(field, reason)| ConfigError::Invalid {
            path: origin.clone(),
            field,
            reason,
        };
        config.grants.check_hosts().map_err(invalid)?;
        config.check().map_err(invalid)?;
        // Directories granted to plugins are relative to the config file.
        if let Some(base) = path.and_then(Path::parent) {
            config.plugins.config_dir = Some(base.to_owned());
            let grants = &mut config.grants;
            for caps in std::iter::once(&mut grants.default)
                .chain(grants.vendors.values_mut())
                .chain(grants.plugins.values_mut())
            {
                for host in caps.files.values_mut() {
                    if Path::new(host).is_relative() {
                        *host = base.join(&*host).display().to_string();
                    }
                }
            }
        }
        Ok((config, warnings))
    }

    /// Refuses values that parse but would leave the server unsafe or
    /// unable to work: `Err((field, reason))`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let zero = |field: &str| Err((field.to_owned(), "must be greater than 0".to_owned()));
        let plugins = &self.plugins;
        let positive = [
            ("plugins.limits.timeout_ms", plugins.limits.timeout_ms),
            ("plugins.limits.memory_mib", plugins.limits.memory_mib),
            (
                "plugins.max_concurrent_instances",
                u64::from(plugins.max_concurrent_instances),
            ),
            ("plugins.event_queue", plugins.event_queue as u64),
            ("plugins.event_batch", plugins.event_batch as u64),
            ("plugins.view_deadline_ms", plugins.view_deadline_ms),
            ("server.max_connections", self.server.max_connections as u64),
            ("docs.max_files", self.docs.max_files as u64),
            ("docs.max_file_bytes", self.docs.max_file_bytes),
            ("docs.max_site_bytes", self.docs.max_site_bytes),
            ("docs.build_timeout_secs", self.docs.build_timeout_secs),
            ("server.max_sessions", self.server.max_sessions as u64),
            (
                "database.max_connections",
                self.database.max_connections as u64,
            ),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return zero(field);
        }
        if let Err(why) = self.models.check() {
            let field = why
                .split(':')
                .next()
                .unwrap_or("models")
                .split(' ')
                .next()
                .unwrap_or("models");
            return Err((field.to_owned(), why));
        }
        // wasm32 memories end at 4 GiB.
        if plugins.max_memory_bytes() > 4 << 30 {
            return Err((
                "plugins.limits.memory_mib".into(),
                "is over 4096 (a plugin's memory cannot exceed 4 GiB)".into(),
            ));
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                "server.public_url".into(),
                format!("{url:?} is not an http or https URL"),
            ));
        }
        self.telemetry.check(self.bind)
    }

    /// A copy to show: secrets (the database password, the OpenID Connect
    /// client secret, every plugin setting) replaced by `"<hidden>"`.
    pub fn redacted(&self) -> Self {
        const HIDDEN: &str = "<hidden>";
        let mut shown = self.clone();
        if let Ok(mut url) = url::Url::parse(&shown.database.url)
            && url.password().is_some()
        {
            let _ = url.set_password(Some(HIDDEN));
            shown.database.url = url.to_string();
        }
        if let Some(oidc) = &mut shown.auth.oidc
            && !oidc.client_secret.is_empty()
        {
            oidc.client_secret = HIDDEN.into();
        }
        for settings in shown.plugins.settings.values_mut() {
            for value in settings.values_mut() {
                *value = HIDDEN.into();
            }
        }
        if !shown.models.api_key.is_empty() {
            shown.models.api_key = HIDDEN.into();
        }
        for bindings in shown.plugins.credentials.values_mut() {
            for binding in bindings.values_mut() {
                for value in binding.headers.values_mut() {
                    *value = HIDDEN.into();
                }
            }
        }
        shown
    }

    /// What the plugin runtime reads, with its folders resolved.
    pub fn runtime(&self) -> RuntimeSettings {
        RuntimeSettings {
            plugins: self.plugins.clone(),
            grants: self.grants.clone(),
            trust: self.trust.clone(),
            organization: self.organization.clone(),
            data_dir: self.data_dir.clone(),
            plugins_dir: self.plugins_dir(),
            trust_dir: self.trust_dir(),
            licenses_dir: self.licenses_dir(),
            signers_file: self.signers_file(),
            models: self.models.clone(),
        }
    }

    /// Folder of trusted vendor key files.
    pub fn trust_dir(&self) -> PathBuf {
        self.trust
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("trusted-vendors"))
    }

    /// Folder of installed licences (`<plugin-id>.license`).
    pub fn licenses_dir(&self) -> PathBuf {
        self.data_dir.join("licenses")
    }

    /// The signer each plugin id is bound to (see `plugins::trust::SignerBook`).
    pub fn signers_file(&self) -> PathBuf {
        self.data_dir.join("plugin-signers.json")
    }

    /// The admin token file.
    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }

    /// The plugins folder.
    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("plugins"))
    }
}

/// The `CALLBOARD_*` variables that set keys, and warnings about those
/// that look like keys but are not.
fn env_keys(env: impl IntoIterator<Item = (String, String)>) -> (Vec<EnvKey>, Vec<String>) {
    let top = toml::Table::try_from(Config::default()).unwrap_or_default();
    let mut keys = Vec::new();
    let mut warnings = Vec::new();
    for (var, value) in env {
        let Some(name) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if ENV_NOT_KEYS.contains(&name) || name.is_empty() {
            continue;
        }
        let path: Vec<String> = name.split("__").map(str::to_ascii_lowercase).collect();
        if path.len() == 1 && !top.contains_key(&path[0]) {
            // Other tools share the prefix; a typo here is only warned about.
            warnings.push(format!(
                "environment variable {var} is not a config key and was ignored \
                 (sections and keys are separated by two underscores: CALLBOARD_SERVER__MAX_CONNECTIONS)"
            ));
            continue;
        }
        keys.push(EnvKey { var, path, value });
    }
    keys.sort_by(|a, b| a.var.cmp(&b.var));
    (keys, warnings)
}

/// The file's table with every variable applied, as a config;
/// `Err((variable, reason))` names the first variable that breaks it.
fn apply_env(text: &str, keys: &[EnvKey]) -> Result<Config, (String, String)> {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let file: toml::Table = toml::from_str(text).unwrap_or_default();
    let mut table = file.clone();
    for key in keys {
        set(&mut table, &defaults, key)?;
    }
    if let Ok(config) = Config::deserialize(toml::Value::Table(table.clone())) {
        return Ok(config);
    }
    // Which variable: apply them one by one until the config stops parsing.
    let mut table = file;
    for key in keys {
        set(&mut table, &defaults, key)?;
        if let Err(e) = Config::deserialize(toml::Value::Table(table.clone())) {
            let reason = e.message().trim().to_owned();
            return Err((key.var.clone(), format!("{}: {reason}", key.path.join("."))));
        }
    }
    Err((
        keys[0].var.clone(),
        "the variables together do not make a valid configuration".into(),
    ))
}

/// Sets `key` in `table`, typed like the default at the same place (a
/// string stays a string; numbers, booleans and arrays are read as TOML).
fn set(
    table: &mut toml::Table,
    defaults: &toml::Table,
    key: &EnvKey,
) -> Result<(), (String, String)> {
    let (leaf, sections) = key.path.split_last().expect("a key has one part at least");
    let mut here = table;
    let mut default = Some(defaults);
    for section in sections {
        default = default
            .and_then(|d| d.get(section))
            .and_then(toml::Value::as_table);
        let entry = here
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = entry.as_table_mut().ok_or_else(|| {
            (
                key.var.clone(),
                format!("{section} is not a section in the config file"),
            )
        })?;
    }
    let string = matches!(
        default.and_then(|d| d.get(leaf)),
        Some(toml::Value::String(_))
    );
    let value = if string {
        toml::Value::String(key.value.clone())
    } else {
        toml::from_str::<toml::Table>(&format!("v = {}", key.value))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(key.value.clone()))
    };
    here.insert(leaf.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn environment_variables_set_keys_at_any_depth_typed_like_the_key() {
        let toml = file("organization = \"from-file\"\n[server]\nmax_connections = 5\n");
        let (config, warnings) = Config::load_with_env(
            Some(toml.path()),
            env(&[
                ("CALLBOARD_SERVER__MAX_CONNECTIONS", "77"),
                // A string key keeps digits as a string.
                ("CALLBOARD_ORGANIZATION", "1234"),
                (
                    "CALLBOARD_SERVER__ALLOWED_HOSTS",
                    "[\"a.example\", \"b.example\"]",
                ),
                ("CALLBOARD_PLUGINS__SETTINGS__CI__TOKEN", "s3cret"),
                ("CALLBOARD_PLUGINS__LIMITS__TIMEOUT_MS", "2500"),
                ("CALLBOARD_TELEMETRY__LOG_FORMAT", "json"),
                ("CALLBOARD_TELEMETRY__TRACES__SAMPLE_RATIO", "0.25"),
                ("CALLBOARD_DATA_DIR", "/srv/callboard"),
                ("CALLBOARD_BIND", "0.0.0.0:7007"),
                // Read by the command line or modules, never keys.
                ("CALLBOARD_CONFIG", "elsewhere.toml"),
                ("CALLBOARD_DATABASE_PASSWORD", "pw"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.server.max_connections, 77,
            "the variable wins over the file"
        );
        assert_eq!(config.organization, "1234");
        assert_eq!(config.server.allowed_hosts, ["a.example", "b.example"]);
        assert_eq!(config.plugins.settings["ci"]["token"], "s3cret");
        assert_eq!(config.plugins.limits.timeout_ms, 2500);
        assert_eq!(
            config.telemetry.log_format,
            crate::telemetry::config::LogFormat::Json
        );
        assert!((config.telemetry.traces.sample_ratio - 0.25).abs() < f64::EPSILON);
        assert_eq!(config.data_dir, Path::new("/srv/callboard"));
        assert_eq!(config.bind.to_string(), "0.0.0.0:7007");
    }

    #[test]
    fn a_bad_variable_is_refused_by_name_and_an_unknown_top_level_one_warned_about() {
        for (var, value, says) in [
            (
                "CALLBOARD_SERVER__MAX_CONECTIONS",
                "1",
                "unknown field `max_conections`",
            ),
            (
                "CALLBOARD_SERVER__MAX_CONNECTIONS",
                "lots",
                "server.max_connections",
            ),
            ("CALLBOARD_SERVR__X", "1", "unknown field `servr`"),
            (
                "CALLBOARD_SERVER__MAX_CONNECTIONS__DEEPER",
                "1",
                "max_connections",
            ),
        ] {
            let error = Config::load_with_env(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(var) && error.contains(says),
                "{var}={value}: {error}"
            );
        }
        let (_, warnings) = Config::load_with_env(None, env(&[("CALLBOARD_BIDN", "x")])).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("CALLBOARD_BIDN"), "{warnings:?}");
    }

    #[test]
    fn unsafe_values_are_refused_naming_the_key() {
        for (text, field) in [
            (
                "[plugins.limits]\ntimeout_ms = 0\n",
                "plugins.limits.timeout_ms",
            ),
            (
                "[plugins.limits]\nmemory_mib = 8192\n",
                "plugins.limits.memory_mib",
            ),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            (
                "[server]\npublic_url = \"portal.example.com\"\n",
                "server.public_url",
            ),
            (
                "[telemetry.traces]\nsample_ratio = 1.5\n",
                "telemetry.traces.sample_ratio",
            ),
            (
                "[telemetry.traces]\notlp_endpoint = \"file:///etc/passwd\"\n",
                "telemetry.traces.otlp_endpoint",
            ),
            (
                "[telemetry.metrics]\ntoken_sha256 = \"not-hex\"\n",
                "telemetry.metrics.token_sha256",
            ),
            (
                "bind = \"127.0.0.1:9000\"\n[telemetry.metrics]\nbind = \"127.0.0.1:9000\"\n",
                "telemetry.metrics.bind",
            ),
        ] {
            let toml = file(text);
            let error = Config::load_with_env(Some(toml.path()), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{text}: {error}");
        }
    }

    #[test]
    fn the_shown_config_hides_secrets() {
        let mut config = Config::default();
        config.database.url = "postgres://app:hunter2@db.internal/callboard".into();
        config.auth.oidc = Some(crate::identity::config::OidcConfig {
            client_secret: "oidc-secret".into(),
            ..Default::default()
        });
        config
            .plugins
            .settings
            .entry("ci".into())
            .or_default()
            .insert("token".into(), "ci-token".into());
        let shown = serde_json::to_string(&config.redacted()).unwrap();
        for secret in ["hunter2", "oidc-secret", "ci-token"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("db.internal"), "the rest stays: {shown}");
    }
}
