//! `callboard plugin ...`: work with plugin files.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::plugins::manifest::{self, Manifest};

/// Plugin file commands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Embed a plugin.toml manifest into a built component, producing the one
    /// file that is installed.
    Pack {
        /// The component built with `cargo build --target wasm32-wasip2`.
        component: PathBuf,
        /// The manifest; defaults to plugin.toml in the current directory.
        #[arg(long, default_value = "plugin.toml")]
        manifest: PathBuf,
        /// Where to write the plugin file; defaults to `<id>.wasm`.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Print a plugin file's manifest and content hash.
    Inspect {
        /// The plugin file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a plugin command.
pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Pack {
            component,
            manifest: manifest_path,
            out,
        } => {
            let text = std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("cannot read {}", manifest_path.display()))?;
            let mut manifest = Manifest::from_toml(&text)
                .with_context(|| format!("{}", manifest_path.display()))?;
            let bytes = std::fs::read(&component)
                .with_context(|| format!("cannot read {}", component.display()))?;
            manifest.api_version =
                Some(api_version_of(&bytes).with_context(|| format!("{}", component.display()))?);
            let packed = manifest::embed(&bytes, &manifest)
                .with_context(|| format!("{}", component.display()))?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{}.wasm", manifest.id)));
            // Write then rename, so a watcher never sees a half-written plugin.
            let tmp = out.with_extension("wasm.part");
            std::fs::write(&tmp, &packed)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("packed {} into {}", manifest.label(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Inspect { file, json } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let manifest = manifest::read(&bytes).with_context(|| format!("{}", file.display()))?;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            if json {
                let value = serde_json::json!({ "file": file, "sha256": sha256, "size": bytes.len(), "manifest": manifest });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("file:        {}", file.display());
                println!("id:          {}", manifest.id);
                println!("name:        {}", manifest.name);
                println!("version:     {}", manifest.version);
                println!(
                    "api version: {}",
                    manifest.api_version.as_deref().unwrap_or("(unknown)")
                );
                println!("vendor:      {}", manifest.vendor.as_deref().unwrap_or("-"));
                println!(
                    "license:     {}",
                    manifest.license.as_deref().unwrap_or("-")
                );
                println!("sha256:      {sha256}");
                println!("size:        {} bytes", bytes.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The plugin API version a component exports, read from its WIT without
/// compiling it: the `callboard:plugin/handler@X` export.
fn api_version_of(bytes: &[u8]) -> anyhow::Result<String> {
    use wasmparser::{Parser, Payload};
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::ComponentExportSection(exports) = payload? {
            for export in exports {
                if let Some(version) = export?.name.0.strip_prefix("callboard:plugin/handler@") {
                    return Ok(version.to_owned());
                }
            }
        }
    }
    anyhow::bail!(
        "does not export callboard:plugin/handler; is it built with callboard-sdk for wasm32-wasip2?"
    )
}
