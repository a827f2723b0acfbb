//! `callboard-demo-kube`: serves one demo Kubernetes cluster until stopped.

use std::process::ExitCode;

use callboard_demo_kube::{DEMO_CLUSTERS, Fault, Objects, Options};
use clap::Parser;

/// A stand-in Kubernetes API server for the demo: the real wire format
/// (discovery, lists, tables, selectors, Status errors, `kubectl rollout
/// restart`) over one demo cluster's workloads. Run one per cluster.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:7010")]
    bind: String,
    /// Which demo cluster's objects to serve: prod-eu or staging.
    #[arg(long, default_value = "prod-eu")]
    cluster: String,
    /// Serve these objects instead of the demo cluster's: a JSON array of
    /// objects, or a list as `kubectl get -o json` prints it.
    #[arg(long, value_name = "FILE")]
    objects: Option<std::path::PathBuf>,
    /// Require `Authorization: Bearer <token>` on every request.
    #[arg(long, env = "CALLBOARD_DEMO_KUBE_TOKEN")]
    token: Option<String>,
    /// Misbehave: none, unauthorized (401 always), forbidden (403 on
    /// resources), slow or slow:<delay> (e.g. slow:3s, slow:1500ms).
    #[arg(long, default_value = "none")]
    fault: Fault,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let objects = match &args.objects {
        Some(path) => {
            let loaded = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| Objects::from_json(&text).map_err(|e| e.to_string()));
            match loaded {
                Ok(objects) => objects,
                Err(e) => {
                    eprintln!("callboard-demo-kube: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        None => match callboard_demo_kube::demo_cluster(&args.cluster) {
            Some(objects) => objects,
            None => {
                eprintln!(
                    "callboard-demo-kube: no demo cluster {:?} (there are: {})",
                    args.cluster,
                    DEMO_CLUSTERS.join(", ")
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let listener = match tokio::net::TcpListener::bind(&args.bind).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("callboard-demo-kube: cannot listen on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    let authed = args.token.is_some();
    let count = objects.len();
    let options = Options {
        cluster: args.cluster.clone(),
        token: args.token,
        objects,
        fault: args.fault,
    };
    let running = match callboard_demo_kube::serve(listener, options).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("callboard-demo-kube: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "demo Kubernetes cluster {} on {} ({count} objects, {}, fault {})",
        args.cluster,
        running.url(),
        if authed {
            "token required"
        } else {
            "no token required"
        },
        args.fault,
    );
    match running.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callboard-demo-kube: {e}");
            ExitCode::FAILURE
        }
    }
}
