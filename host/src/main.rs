//! `callboard`: parse the command line, load the config, run the command.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use callboard::{cli, config::Config};
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
    /// Print the effective configuration as TOML, every key included.
    Config,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime_cranelift=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.clone().or_else(|| {
        let default = PathBuf::from("callboard.toml");
        default.is_file().then_some(default)
    });
    let mut config = Config::load(config_path.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = cli.database {
        config.database.url = url;
    }
    match cli.command {
        Command::Serve { bind, plugins_dir } => {
            if let Some(bind) = bind {
                config.bind = bind;
            }
            if plugins_dir.is_some() {
                config.plugins.dir = plugins_dir;
            }
            serve(config)
        }
        Command::Plugin(command) => cli::plugin::run(command, &config),
        Command::Token(command) => cli::token::run(command, &config),
        Command::Vendor(command) => cli::vendor::run_vendor(command),
        Command::License(command) => cli::vendor::run_license(command),
        Command::Catalog(command) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::catalog::run(command, &config))
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

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
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
