//! Subcommands of the `callboard` binary other than `serve`, and the client
//! the online ones share ([`Remote`]: a running server's admin API).

pub mod catalog;
pub mod db;
pub mod docs;
pub mod plugin;
pub mod token;
pub mod vendor;

use anyhow::Context as _;

use crate::config::Config;

/// The environment variable an online command takes its credential from
/// (an API token or the admin token) when `--token` is not given.
pub const TOKEN_ENV: &str = "CALLBOARD_TOKEN";
/// The older name of [`TOKEN_ENV`], still read when that is not set.
pub const ADMIN_TOKEN_ENV: &str = "CALLBOARD_ADMIN_TOKEN";

/// Which server an online command talks to, and as whom.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's URL; default `http://<bind>` from the config.
    #[arg(long)]
    pub server: Option<String>,
    /// Credential: an API token or the admin token. Default: the
    /// CALLBOARD_TOKEN environment variable, else (CALLBOARD_ADMIN_TOKEN,
    /// else) `<data_dir>/admin-token`.
    #[arg(long, env = TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
}

/// A running server's admin API.
pub(crate) struct Remote {
    /// Its base URL, without a trailing `/`.
    pub(crate) base: String,
    token: String,
    /// The HTTP client.
    pub(crate) client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// The server to talk to. `None` when no server answers at the
    /// configured address and `fallback` allows working offline; an
    /// explicit `--server` must answer.
    pub(crate) fn connect(
        args: &ServerArgs,
        config: &Config,
        fallback: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Self>> {
        let base = args
            .server
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.bind))
            .trim_end_matches('/')
            .to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::new();
        let health = runtime.block_on(client.get(format!("{base}/api/health")).send());
        if health.is_err() {
            match fallback {
                Some(dir) if args.server.is_none() => {
                    eprintln!(
                        "note: no server answers at {base}; working on {} directly",
                        dir.display()
                    );
                    return Ok(None);
                }
                _ => anyhow::bail!("no Callboard server answers at {base}"),
            }
        }
        let token = credential(args, config)?;
        Ok(Some(Self {
            base,
            token,
            client,
            runtime,
        }))
    }

    /// Sends `request` with the credential; the JSON answer (`Null` for an
    /// empty one), or the server's error message with the status.
    pub(crate) fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<serde_json::Value> {
        self.runtime.block_on(async {
            let response = request.bearer_auth(&self.token).send().await?;
            let status = response.status();
            let text = response.text().await?;
            if !status.is_success() {
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or(text);
                anyhow::bail!("{status}: {message}");
            }
            Ok(if text.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&text)?
            })
        })
    }
}

/// The credential: `--token` or CALLBOARD_TOKEN, else CALLBOARD_ADMIN_TOKEN,
/// else the admin-token file.
fn credential(args: &ServerArgs, config: &Config) -> anyhow::Result<String> {
    if let Some(token) = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(token.to_owned());
    }
    if let Some(token) = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
    {
        return Ok(token);
    }
    let file = config.admin_token_file();
    Ok(std::fs::read_to_string(&file)
        .with_context(|| {
            format!(
                "cannot read the admin token from {} (pass --token or set {TOKEN_ENV})",
                file.display()
            )
        })?
        .trim()
        .to_owned())
}
