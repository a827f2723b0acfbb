//! The plugin runtime's own settings: what `[plugins]` and `[grants]` say,
//! and [`RuntimeSettings`], everything [`super::PluginHost`] reads. The
//! root's configuration file (`crate::config`) embeds these types and
//! builds a `RuntimeSettings` from itself; nothing under `plugins/` reads
//! the root's `Config`.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::manifest::Capabilities;
pub use callboard_plugin_contract::trust::{TrustConfig, TrustedVendor};

/// Everything the plugin runtime needs from the operator, with the folders
/// already resolved against the data directory.
#[derive(Debug, Clone, Default)]
pub struct RuntimeSettings {
    /// `[plugins]`: limits, settings, credentials, queues.
    pub plugins: PluginsConfig,
    /// `[grants]`: what plugins may do.
    pub grants: GrantsConfig,
    /// `[trust]`: whose signatures count, and whether one is required.
    pub trust: TrustConfig,
    /// The organisation commercial licences must be issued to.
    pub organization: String,
    /// The data directory (never grantable to a plugin).
    pub data_dir: PathBuf,
    /// The plugins folder.
    pub plugins_dir: PathBuf,
    /// Trusted vendor key files.
    pub trust_dir: PathBuf,
    /// Installed licences (`<plugin-id>.license`).
    pub licenses_dir: PathBuf,
    /// The signer each plugin id is bound to.
    pub signers_file: PathBuf,
    /// `[models]`: the language-model provider.
    pub models: ModelsConfig,
}

/// `[grants]`: capabilities granted to plugins. A plugin gets a capability
/// only if it requests it in its manifest AND the operator grants it here,
/// by default, by vendor, or by plugin id (the three are added together).
/// A call to a capability it does not have answers a typed `denied` error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrantsConfig {
    /// Granted to every plugin. Default: key-value storage only.
    pub default: Capabilities,
    /// Granted to every plugin signed by a vendor: `[grants.vendors.acme]
    /// catalog = true`. Applies only to a signature by that vendor's trusted
    /// key (the trust store's), never to what a manifest claims.
    pub vendors: BTreeMap<String, Capabilities>,
    /// Granted to one plugin: `[grants.plugins.cost] http_hosts = ["billing.example.com"]`.
    pub plugins: BTreeMap<String, Capabilities>,
}

impl Default for GrantsConfig {
    fn default() -> Self {
        Self {
            default: Capabilities {
                kv: true,
                ..Capabilities::default()
            },
            vendors: BTreeMap::new(),
            plugins: BTreeMap::new(),
        }
    }
}

impl GrantsConfig {
    /// Everything the operator grants plugin `id`, whose signature is by
    /// trusted vendor `verified_vendor` (`None`: unsigned, or signed by a
    /// key the trust store does not hold; a manifest's own `vendor` field
    /// proves nothing and must never be passed here).
    pub fn granted(&self, id: &str, verified_vendor: Option<&str>) -> Capabilities {
        let mut granted = self.default.clone();
        if let Some(v) = verified_vendor.and_then(|v| self.vendors.get(v)) {
            granted = granted.union(v);
        }
        if let Some(p) = self.plugins.get(id) {
            granted = granted.union(p);
        }
        granted
    }
}

impl GrantsConfig {
    /// Checks every `http_hosts` entry parses: `Err((field, reason))`.
    pub fn check_hosts(&self) -> Result<(), (String, String)> {
        let sections = std::iter::once(("grants.default".to_owned(), &self.default))
            .chain(
                self.vendors
                    .iter()
                    .map(|(v, c)| (format!("grants.vendors.{v}"), c)),
            )
            .chain(
                self.plugins
                    .iter()
                    .map(|(p, c)| (format!("grants.plugins.{p}"), c)),
            );
        for (section, caps) in sections {
            for host in caps.http_hosts.iter().filter(|h| *h != "*") {
                crate::plugins::capabilities::http::grant::HostGrant::parse(host)
                    .map_err(|reason| (format!("{section}.http_hosts"), reason))?;
            }
        }
        Ok(())
    }
}

/// `[plugins]`: where plugins come from and the limits they run under.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folder of plugin files (`*.wasm`). Default `<data_dir>/plugins`.
    pub dir: Option<PathBuf>,
    /// Limits every plugin runs under unless `overrides` says otherwise.
    pub limits: Limits,
    /// Per-plugin limits, by plugin id: `[plugins.overrides.hello] timeout_ms = 200`.
    pub overrides: std::collections::BTreeMap<String, LimitOverrides>,
    /// How many plugin instances may be alive at once, across all plugins.
    /// Each in-flight request holds one. Lowered at start-up (with a
    /// warning) when this many instances at their memory limit exceed
    /// `memory_budget_mib`. Default 32.
    pub max_concurrent_instances: u32,
    /// Memory all plugin instances together may grow to, in MiB: the
    /// start-up check of `max_concurrent_instances` times the largest
    /// `memory_mib`. Default none: half of the machine's memory (or of the
    /// container's cgroup limit).
    pub memory_budget_mib: Option<u64>,
    /// Watch the plugins folder and load, update and unload plugins as files
    /// appear, change and disappear. Default true.
    pub watch: bool,
    /// Quiet time after the last change to a file before it is loaded, in
    /// milliseconds. Default 25.
    pub watch_debounce_ms: u64,
    /// Seconds between two checks of every licence. Default 60.
    pub license_check_secs: u64,
    /// Settings for each plugin, by plugin id, read by the plugin through
    /// the `config` interface: `[plugins.settings.ci] token = "..."`.
    pub settings: BTreeMap<String, BTreeMap<String, String>>,
    /// Credentials bound to a plugin's granted hosts, by plugin id and
    /// `host[:port]`: `[plugins.credentials.kubernetes."k8s.example:6443"]
    /// headers = { authorization = "Bearer ..." }`, `client_cert`,
    /// `ca_bundle`, `skip_tls_verify`. The host adds them to requests to
    /// that host; the plugin never sees them.
    pub credentials: BTreeMap<
        String,
        BTreeMap<String, crate::plugins::capabilities::http::credentials::CredentialConfig>,
    >,
    /// Longest a plugin's outbound HTTP request may take, in milliseconds
    /// (also capped by what remains of the call's deadline). Default 10000.
    pub http_timeout_ms: u64,
    /// Largest response body a plugin's outbound HTTP request may receive,
    /// in bytes. Default 4 MiB.
    pub http_max_response_bytes: u64,
    /// Events queued per subscribed plugin before new ones are dropped (and
    /// counted). Default 10000.
    pub event_queue: usize,
    /// Most events delivered to a plugin in one call. Default 500.
    pub event_batch: usize,
    /// How long delivery waits for a batch to fill once an event arrives,
    /// in milliseconds. Default 50.
    pub event_linger_ms: u64,
    /// How long a page waits for plugin views, in milliseconds; a view not
    /// ready by then is shown as an error box. Default 1500.
    pub view_deadline_ms: u64,
    /// Size caps on plugin views and on the headers of plugin responses.
    pub views: ViewLimits,
    /// Most headers a plugin response may carry (counted before the
    /// allow-list drops any); more is a 502 naming the plugin. Default 64.
    pub max_response_headers: usize,
    /// Most bytes of header names and values a plugin response may carry;
    /// more is a 502 naming the plugin. Default 16 KiB.
    pub max_response_header_bytes: usize,
    /// Calls of one plugin (requests, views, events, ticks) running at once;
    /// capped at half of `max_concurrent_instances`, so one slow plugin
    /// always leaves room for the others. Default 16.
    pub max_instances_per_plugin: u32,
    /// Calls of one plugin that may wait for one of its slots; beyond that
    /// a call is refused at once with 503 naming the plugin. Default 16.
    pub queue_per_plugin: u32,
    /// Longest a call waits in its plugin's queue, in milliseconds, before it
    /// is refused with 503. Default 500.
    pub queue_wait_ms: u64,
    /// Handles (open files and directories, streams, pollables) one call of
    /// a plugin with granted directories may hold: it holds at most this many
    /// file descriptors. Default 64.
    pub max_open_files: u32,
    /// File descriptors all plugin calls together may hold through granted
    /// directories (each such call reserves `max_open_files` plus its
    /// directories); a call that does not fit is refused with 503.
    /// Default 2048.
    pub open_files_budget: u32,
    /// Key-value and catalog host calls running at once on the blocking
    /// thread pool (SQLite work never runs on the async workers). Default 4.
    pub host_call_threads: u32,
    /// Bytes of events queued per subscribed plugin (besides `event_queue`,
    /// the count); beyond it new events are dropped and counted.
    /// Default 4 MiB.
    pub event_queue_bytes: usize,
    /// Longest pause between two ticks of a plugin whose ticks keep failing,
    /// in seconds (the pause doubles with each failure in a row). Default 900.
    pub tick_backoff_max_secs: u64,
    /// The config file's folder, set when the file is loaded: granted
    /// directories may not be in it nor contain it.
    #[serde(skip)]
    pub config_dir: Option<PathBuf>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            limits: Limits::default(),
            overrides: Default::default(),
            max_concurrent_instances: 32,
            memory_budget_mib: None,
            watch: true,
            watch_debounce_ms: 25,
            license_check_secs: 60,
            settings: BTreeMap::new(),
            credentials: BTreeMap::new(),
            http_timeout_ms: 10_000,
            http_max_response_bytes: 4 << 20,
            event_queue: 10_000,
            event_batch: 500,
            event_linger_ms: 50,
            view_deadline_ms: 1500,
            views: ViewLimits::default(),
            max_response_headers: 64,
            max_response_header_bytes: 16 << 10,
            max_instances_per_plugin: 16,
            queue_per_plugin: 16,
            queue_wait_ms: 500,
            max_open_files: 64,
            open_files_budget: 2048,
            host_call_threads: 4,
            event_queue_bytes: 4 << 20,
            tick_backoff_max_secs: 900,
            config_dir: None,
        }
    }
}

/// `[plugins.views]`: what one plugin view may hold. Checked before the
/// view is rendered, so a plugin cannot make the host build pages of
/// hundreds of megabytes; a view over a cap becomes an error box naming the
/// plugin, except tables and lists (cut, with a note) and charts (averaged
/// down to `max_points`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewLimits {
    /// Rows shown per table and items per list, badge row or stat row; the
    /// rest are cut with a note. Default 500.
    pub max_rows: usize,
    /// Table cells, list items, badges, stats and chart series in the whole
    /// view (cards and blocks count too). Default 20000.
    pub max_items: usize,
    /// Points drawn per chart series; longer series are averaged down to
    /// this many. Default 200.
    pub max_points: usize,
    /// Bytes of text (every string the plugin sent) in the whole view.
    /// Default 1 MiB.
    pub max_text_bytes: usize,
    /// Bytes of rendered HTML for one view. Default 2 MiB.
    pub max_html_bytes: usize,
}

impl Default for ViewLimits {
    fn default() -> Self {
        Self {
            max_rows: 500,
            max_items: 20_000,
            max_points: 200,
            max_text_bytes: 1 << 20,
            max_html_bytes: 2 << 20,
        }
    }
}

/// The limits one plugin call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline for one request, in milliseconds. Default 5000.
    pub timeout_ms: u64,
    /// Linear memory an instance may grow to, in MiB. Default 64.
    pub memory_mib: u64,
    /// Table elements an instance may have. Default 20000.
    pub table_elements: u32,
    /// Largest request body passed to a plugin, in bytes. Default 1 MiB.
    pub max_request_body: usize,
    /// Largest response body a plugin may return, in bytes. Default 8 MiB.
    pub max_response_body: usize,
    /// Key-value storage per plugin (keys + values), in bytes. Default 10 MiB.
    pub kv_quota_bytes: u64,
    /// Largest single key-value value, in bytes. Default 1 MiB.
    pub kv_max_value_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: 5_000,
            memory_mib: 64,
            table_elements: 20_000,
            max_request_body: 1 << 20,
            max_response_body: 8 << 20,
            kv_quota_bytes: 10 << 20,
            kv_max_value_bytes: 1 << 20,
        }
    }
}

/// Any subset of [`Limits`], for one plugin.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs, reason = "each field means the same as in Limits")]
pub struct LimitOverrides {
    pub timeout_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    pub table_elements: Option<u32>,
    pub max_request_body: Option<usize>,
    pub max_response_body: Option<usize>,
    pub kv_quota_bytes: Option<u64>,
    pub kv_max_value_bytes: Option<u64>,
}

impl Limits {
    /// Wall-clock deadline as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

impl PluginsConfig {
    /// The limits for plugin `id`: defaults with its overrides applied.
    pub fn limits_for(&self, id: &str) -> Limits {
        let mut l = self.limits;
        if let Some(o) = self.overrides.get(id) {
            l.timeout_ms = o.timeout_ms.unwrap_or(l.timeout_ms);
            l.memory_mib = o.memory_mib.unwrap_or(l.memory_mib);
            l.table_elements = o.table_elements.unwrap_or(l.table_elements);
            l.max_request_body = o.max_request_body.unwrap_or(l.max_request_body);
            l.max_response_body = o.max_response_body.unwrap_or(l.max_response_body);
            l.kv_quota_bytes = o.kv_quota_bytes.unwrap_or(l.kv_quota_bytes);
            l.kv_max_value_bytes = o.kv_max_value_bytes.unwrap_or(l.kv_max_value_bytes);
        }
        l
    }

    /// The largest memory any plugin may use: sizes the pooling allocator's slots.
    pub fn max_memory_bytes(&self) -> usize {
        let most = self
            .overrides
            .values()
            .filter_map(|o| o.memory_mib)
            .fold(self.limits.memory_mib, u64::max);
        usize::try_from(most.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// `[models]`: the language-model provider plugins granted `models` ask
/// (plugin API 0.5). Any API speaking OpenAI's chat completions: OpenAI,
/// Azure OpenAI, Ollama, vLLM, most gateways. The key stays with the host.
///
/// ```toml
/// [models]
/// base_url = "http://127.0.0.1:11434/v1"   # Ollama
/// model = "llama3.1"
/// api_key_file = "/etc/callboard/model-key"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// The API's base URL, to which `/chat/completions` is added
    /// (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`). Empty:
    /// no provider; plugins answer without a model.
    pub base_url: String,
    /// The model asked (`gpt-4o-mini`, `llama3.1`, an Azure deployment).
    pub model: String,
    /// The key. Prefer `api_key_file`, or the `CALLBOARD_MODELS__API_KEY`
    /// variable, to a key in the file.
    pub api_key: String,
    /// A file holding the key (trimmed), read at start-up.
    pub api_key_file: Option<PathBuf>,
    /// The header that carries the key: `authorization` sends `Bearer
    /// <key>`; any other (Azure OpenAI's `api-key`) the key as it is.
    pub api_key_header: String,
    /// Most seconds one chat may take in all. Default 60.
    pub timeout_secs: u64,
    /// Most seconds without a byte from the provider (the first token
    /// included). Default 20.
    pub idle_timeout_secs: u64,
    /// Most tokens one plugin call (one question) may spend, prompts and
    /// answers together, across its chats. Default 16000.
    pub max_tokens_per_call: u32,
    /// Most tokens one plugin may spend per UTC day, summed over every
    /// replica. Default 2000000.
    pub max_tokens_per_day: u64,
    /// Log prompts and answers (at debug level, target `models`). Off by
    /// default: the host logs token counts only.
    pub log_contents: bool,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            model: String::new(),
            api_key: String::new(),
            api_key_file: None,
            api_key_header: "authorization".into(),
            timeout_secs: 60,
            idle_timeout_secs: 20,
            max_tokens_per_call: 16_000,
            max_tokens_per_day: 2_000_000,
            log_contents: false,
        }
    }
}

impl ModelsConfig {
    /// Whether a provider is configured.
    pub fn configured(&self) -> bool {
        !self.base_url.trim().is_empty()
    }

    /// Refuses values that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if !self.configured() {
            return Ok(());
        }
        let url =
            url::Url::parse(self.base_url.trim()).map_err(|e| format!("models.base_url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("models.base_url must be an http(s) URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "models.base_url must not hold credentials: use models.api_key_file".into(),
            );
        }
        if self.model.trim().is_empty() {
            return Err("models.model must name the model to ask".into());
        }
        if !self.api_key.is_empty() && self.api_key_file.is_some() {
            return Err("models.api_key and models.api_key_file: set one".into());
        }
        let header = self.api_key_header.trim();
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("models.api_key_header must be a header name".into());
        }
        if self.timeout_secs == 0 || self.idle_timeout_secs == 0 {
            return Err(
                "models.timeout_secs and models.idle_timeout_secs must be at least 1".into(),
            );
        }
        if self.max_tokens_per_call == 0 {
            return Err("models.max_tokens_per_call must be at least 1".into());
        }
        Ok(())
    }
}
