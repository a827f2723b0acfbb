//! `callboard-demo-ci`: serves the demo CI API until stopped.

use std::process::ExitCode;

use clap::Parser;

/// The demo's GitHub Actions-compatible CI API, with believable runs for
/// every repository of the demo catalog.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:7008")]
    bind: String,
    /// Require `Authorization: Bearer <token>` on API requests.
    #[arg(long, env = "CALLBOARD_DEMO_CI_TOKEN")]
    token: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(&args.bind).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("callboard-demo-ci: cannot listen on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    let authed = args.token.is_some();
    let running =
        match callboard_demo_ci::serve(listener, callboard_demo_ci::Options { token: args.token })
            .await
        {
            Ok(running) => running,
            Err(e) => {
                eprintln!("callboard-demo-ci: {e}");
                return ExitCode::FAILURE;
            }
        };
    println!(
        "demo CI API on {} ({})",
        running.url(),
        if authed {
            "token required"
        } else {
            "no token required"
        }
    );
    match running.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callboard-demo-ci: {e}");
            ExitCode::FAILURE
        }
    }
}
