//! `callboard-demo-llm`: serves the stand-in chat-completions provider until stopped.

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;

/// A stand-in language-model provider speaking OpenAI's chat-completions
/// protocol, for the demo and tests. It is not a model: it answers with a
/// deterministic reply built from the prompt.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (loopback only, unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:7012")]
    bind: SocketAddr,
    /// The one model served; requests naming another get 404 `model_not_found`.
    #[arg(long, default_value = "demo-model")]
    model: String,
    /// The key clients must send as `Authorization: Bearer <key>`.
    #[arg(long, env = "CALLBOARD_DEMO_LLM_API_KEY", default_value = "demo-key")]
    api_key: String,
    /// Listen on a non-loopback address too (it is a stand-in: think twice).
    #[arg(long)]
    allow_remote: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.bind.ip().is_loopback() && !args.allow_remote {
        eprintln!(
            "callboard-demo-llm: refusing to listen on {}, which is not a loopback address \
             (this is a stand-in for tests and the demo); pass --allow-remote to do it anyway",
            args.bind
        );
        return ExitCode::FAILURE;
    }
    let listener = match tokio::net::TcpListener::bind(args.bind).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("callboard-demo-llm: cannot listen on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    let config = callboard_demo_llm::StandIn {
        model: args.model,
        api_key: args.api_key,
    };
    let model = config.model.clone();
    let running = match callboard_demo_llm::serve(listener, config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("callboard-demo-llm: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "stand-in LLM provider (OpenAI chat completions) at {} (model {model})",
        running.base_url()
    );
    match running.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callboard-demo-llm: {e}");
            ExitCode::FAILURE
        }
    }
}
