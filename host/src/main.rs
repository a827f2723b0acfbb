//! `callboard`: parse the command line, load the config, run the command.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use callboard::{cli, config::Config, telemetry, telemetry::config::LogFormat};
use clap::{Parser, Subcommand};

/// Callboard, an internal developer portal with sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// Config file (TOML). Without it, ./callboard.toml is used if present,
    /// else the defaults (see `callboard config`).
    #[arg(long, short, global = true, env = "CALLBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data_dir` from the config.
    #[arg(long, global = true, env = "CALLBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://user@host:port/db`); overrides
    /// `database.url`. The password may come from CALLBOARD_DATABASE_PASSWORD.
    #[arg(long, global = true, env = "CALLBOARD_DATABASE_URL")]
    database: Option<String>,
    /// How log lines are written to standard error; overrides
    /// `telemetry.log_format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the portal and its plugins.
    Serve {
        /// Address to listen on; overrides `bind` from the config.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
        /// Plugins folder; overrides `plugins.dir` from the config.
        #[arg(long)]
        plugins_dir: Option<PathBuf>,
    },
    /// Plugins: pack, sign, inspect, install, list, remove.
    #[command(subcommand)]
    Plugin(cli::plugin::PluginCommand),
    /// API tokens of service principals: create, list, revoke (through the
    /// running server; the credential needs callboard.tokens.manage).
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Vendor signing keys.
    #[command(subcommand)]
    Vendor(cli::vendor::VendorCommand),
    /// Licences for commercial plugins.
    #[command(subcommand)]
    License(cli::vendor::LicenseCommand),
    /// Validate and import catalog descriptor files.
    #[command(subcommand)]
    Catalog(cli::catalog::CatalogCommand),
    /// The storage backend: schema status.
    #[command(subcommand)]
    Db(cli::db::DbCommand),
    /// TechDocs sites: check one, preview one locally.
    #[command(subcommand)]
    Docs(cli::docs::DocsCommand),
    /// Print the effective configuration as TOML, every key included.
    Config,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A service whose logs are JSON lines fails in one too.
            if telemetry::json_logs() {
                tracing::error!("{e:#}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("callboard.toml");
        default.is_file().then_some(default)
    });
    let (mut config, warnings) = Config::load(config_path.as_deref())?;
    if let Some(format) = cli.log_format {
        config.telemetry.log_format = format;
    }
    let format = config.telemetry.log_format;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = cli.database {
        config.database.url = url;
    }
    if let Command::Serve { bind, plugins_dir } = &cli.command {
        if let Some(bind) = bind {
            config.bind = *bind;
        }
        if plugins_dir.is_some() {
            config.plugins.dir.clone_from(plugins_dir);
        }
        config.check().map_err(|(field, reason)| {
            anyhow::anyhow!("invalid configuration: {field}: {reason}")
        })?;
        return serve(config, format, &warnings);
    }
    // Warnings about the environment are for the server's start-up; a
    // command's output stays what a script parses.
    let _telemetry = if matches!(
        cli.command,
        Command::Plugin(cli::plugin::PluginCommand::Dev(_))
    ) {
        telemetry::init_filtered(format, None, cli::plugin::dev::LOG_FILTER)
    } else {
        telemetry::init(format, None)
    };
    match cli.command {
        Command::Serve { .. } => unreachable!("served above"),
        Command::Plugin(command) => cli::plugin::run(command, &config),
        Command::Token(command) => cli::token::run(command, &config),
        Command::Vendor(command) => cli::vendor::run_vendor(command),
        Command::License(command) => cli::vendor::run_license(command),
        Command::Catalog(command) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::catalog::run(command, &config))
        }
        Command::Docs(command) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::docs::run(command, &config))
        }
        Command::Db(command) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::db::run(command, &config))
        }
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(config: Config, format: LogFormat, warnings: &[String]) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let traces = telemetry::traces::provider(&config.telemetry.traces, runtime.handle().clone())?;
    let telemetry = telemetry::init(format, traces);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        config = %serde_json::to_string(&config.redacted()).unwrap_or_default(),
        "effective configuration (secrets hidden)"
    );
    let served = runtime.block_on(async {
        let running = callboard::server::start(config).await?;
        let signal = stop_signal().await?;
        tracing::info!(
            signal,
            "shutting down: finishing requests in flight and delivering queued plugin events"
        );
        running.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    });
    // Spans still batched go out while the runtime can still send them.
    telemetry.shutdown();
    // The drain is over: blocking work still running (a catalog read, a
    // compilation) does not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// Waits for Ctrl-C or (on Unix) SIGTERM, what service managers and
/// container runtimes send to stop a process; returns which came.
async fn stop_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "interrupt").context("cannot wait for Ctrl-C"),
            _ = term.recv() => Ok("terminate"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        Ok("interrupt")
    }
}
