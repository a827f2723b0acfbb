//! `callboard plugin ...`: work with plugin files, and write plugins
//! (`new`, `dev`).

pub mod dev;
mod new;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::{
    config::Config,
    plugins::{
        is_plugin_file,
        manifest::{self, Capabilities, Manifest},
        signing::{self, VendorKey},
        trust::{self, InstallChanges, SignatureState, Signer, SignerBook},
        verify_file, verify_license_file,
    },
};

/// Plugin file commands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Write a new plugin project: Cargo.toml, plugin.toml and src/lib.rs
    /// with a route, an entity card and tests.
    New {
        /// The plugin's id (lower-case letters, digits, '-').
        name: String,
        /// Where to write it; default `./NAME`.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The callboard-sdk folder to depend on; default: the SDK of the
        /// Callboard checkout this binary was built from, else the release
        /// on crates.io.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Develop a plugin: serve a local portal, build the project for
    /// wasm32-wasip2, install it, and do it again on every save, printing
    /// build errors and the plugin's log lines.
    Dev(dev::DevArgs),
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
    /// Print a plugin file's manifest, content hash, signature and licence status.
    Inspect {
        /// The plugin file.
        file: PathBuf,
        /// A licence file to check against it (default: the installed one).
        #[arg(long)]
        license: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign a plugin file with a vendor key; the signature goes inside the file.
    Sign {
        /// The plugin file (signed in place unless --out is given).
        file: PathBuf,
        /// The vendor's secret key file (from `callboard vendor keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed file.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Install or update a plugin: into the running server (admin API), or,
    /// with --offline or when no server answers, into the plugins folder.
    Install {
        /// The plugin file.
        file: PathBuf,
        /// A licence file for a commercial plugin.
        #[arg(long)]
        license: Option<PathBuf>,
        /// Allow installing an older version than the one installed, or a
        /// change of signer (another vendor or key, or unsigned after signed);
        /// without it such an install is refused with the list of changes.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: Target,
    },
    /// List installed plugins: version, signature, licence, requested vs granted.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a plugin; its key-value data stays unless --purge.
    Remove {
        /// Plugin id.
        id: String,
        /// Also delete the plugin's key-value data.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// Where a command acts.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Act on the plugins folder directly, not through a running server.
    #[arg(long, conflicts_with = "server")]
    offline: bool,
    #[command(flatten)]
    remote: super::ServerArgs,
}

/// Runs a plugin command.
pub fn run(command: PluginCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New { name, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = sdk.or_else(new::bundled_sdk);
            let files = new::create(&name, &dir, sdk.as_deref())?;
            for file in &files {
                println!("wrote {}", file.display());
            }
            println!(
                "next: cd {} && cargo test && callboard plugin dev",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Dev(args) => dev::run(&args, config),
        PluginCommand::Pack {
            component,
            manifest,
            out,
        } => pack(&component, &manifest, out),
        PluginCommand::Inspect {
            file,
            license,
            json,
        } => inspect(&file, license.as_deref(), json, config),
        PluginCommand::Sign { file, key, out } => {
            let key = VendorKey::read(&key)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let manifest = manifest::read(&bytes).with_context(|| format!("{}", file.display()))?;
            if manifest.vendor.as_deref() != Some(key.vendor.as_str()) {
                anyhow::bail!(
                    "{}: its manifest names vendor {:?}, but the key is vendor \"{}\"'s; a vendor signs only its own plugins",
                    file.display(),
                    manifest.vendor.as_deref().unwrap_or("(none)"),
                    key.vendor
                );
            }
            let signed = key.sign_plugin(&bytes)?;
            let out = out.unwrap_or(file);
            write_atomically(&out, &signed)?;
            println!(
                "signed {} as vendor \"{}\" into {}",
                manifest.label(),
                key.vendor,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Install {
            file,
            license,
            force,
            target,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let license = license
                .map(|l| {
                    std::fs::read_to_string(&l)
                        .with_context(|| format!("cannot read {}", l.display()))
                })
                .transpose()?;
            match Remote::connect(&target, config)? {
                Some(remote) => remote.install(&file, bytes, license, force),
                None => install_offline(&file, &bytes, license.as_deref(), force, config),
            }
        }
        PluginCommand::List { json, target } => match Remote::connect(&target, config)? {
            Some(remote) => remote.list(json),
            None => list_offline(json, config),
        },
        PluginCommand::Remove { id, purge, target } => match Remote::connect(&target, config)? {
            Some(remote) => remote.remove(&id, purge),
            None => remove_offline(&id, purge, config),
        },
    }
}

fn pack(component: &Path, manifest_path: &Path, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest =
        Manifest::from_toml(&text).with_context(|| format!("{}", manifest_path.display()))?;
    let bytes =
        std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let (manifest, packed) =
        manifest::pack(&bytes, &manifest).with_context(|| format!("{}", component.display()))?;
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{}.wasm", manifest.id)));
    write_atomically(&out, &packed)?;
    println!("packed {} into {}", manifest.label(), out.display());
    Ok(ExitCode::SUCCESS)
}

fn inspect(
    file: &Path,
    license: Option<&Path>,
    json: bool,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let manifest = manifest::read(&bytes).with_context(|| format!("{}", file.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let signature = match signing::verify(&bytes) {
        Err(e) => format!("INVALID: {e}"),
        Ok(_) => match verify_file(&bytes, &config.runtime()) {
            Ok((_, state)) => describe_signature(&state),
            Err(e) => format!("refused by this host's policy: {e}"),
        },
    };
    let license_file = license.map(Path::to_owned).unwrap_or_else(|| {
        config
            .licenses_dir()
            .join(format!("{}.license", manifest.id))
    });
    let license_status = if !manifest.is_commercial() {
        "not required (open source)".to_owned()
    } else {
        match std::fs::read_to_string(&license_file) {
            Err(_) => format!("missing ({} not found)", license_file.display()),
            Ok(text) => match verify_license_file(&text, &manifest, &config.runtime()) {
                Ok(terms) => format!(
                    "valid for {} until {}, features: {}",
                    terms.customer,
                    terms.expires.strftime("%Y-%m-%d %H:%M UTC"),
                    if terms.features.is_empty() {
                        "(none)".to_owned()
                    } else {
                        terms.features.join(", ")
                    }
                ),
                Err(e) => format!("INVALID: {e}"),
            },
        }
    };
    if json {
        let value = serde_json::json!({
            "file": file, "sha256": sha256, "size": bytes.len(), "manifest": manifest,
            "signature": signature, "license_status": license_status,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("file:         {}", file.display());
        println!("id:           {}", manifest.id);
        println!("name:         {}", manifest.name);
        println!("version:      {}", manifest.version);
        println!(
            "api version:  {}",
            manifest.api_version.as_deref().unwrap_or("(unknown)")
        );
        println!(
            "vendor:       {}",
            manifest.vendor.as_deref().unwrap_or("-")
        );
        println!(
            "license:      {}",
            manifest.license.as_deref().unwrap_or("-")
        );
        println!(
            "requests:     {}",
            describe_capabilities(&manifest.capabilities)
        );
        for p in &manifest.permissions {
            println!(
                "permission:   {} ({}){}",
                p.name,
                p.action,
                if p.paths.is_empty() {
                    String::new()
                } else {
                    format!(", guards {}", p.paths.join(", "))
                }
            );
        }
        println!("sha256:       {sha256}");
        println!("size:         {} bytes", bytes.len());
        println!("signature:    {signature}");
        println!("licence:      {license_status}");
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_signature(state: &SignatureState) -> String {
    match state {
        SignatureState::Unsigned => "unsigned".into(),
        SignatureState::Trusted { vendor } => format!("valid, by trusted vendor \"{vendor}\""),
        SignatureState::Untrusted { vendor } => {
            format!("valid, by vendor \"{vendor}\" (not in this host's trust store)")
        }
    }
}

fn describe_capabilities(c: &Capabilities) -> String {
    let mut parts = Vec::new();
    if c.kv {
        parts.push("kv".to_owned());
    }
    if c.catalog {
        parts.push("catalog".to_owned());
    }
    if c.search {
        parts.push("search".to_owned());
    }
    if c.models {
        parts.push("models".to_owned());
    }
    if c.publish {
        parts.push("publish".to_owned());
    }
    if !c.http_hosts.is_empty() {
        parts.push(format!("http({})", c.http_hosts.join(" ")));
    }
    if !c.events.is_empty() {
        parts.push(format!("events({})", c.events.join(" ")));
    }
    if !c.files.is_empty() {
        let dirs: Vec<&str> = c.files.keys().map(String::as_str).collect();
        parts.push(format!("files({})", dirs.join(" ")));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

fn install_offline(
    file: &Path,
    bytes: &[u8],
    license: Option<&str>,
    force: bool,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    let (manifest, signature) = verify_file(bytes, &config.runtime())
        .with_context(|| format!("{} refused", file.display()))?;
    if let Some(text) = license {
        verify_license_file(text, &manifest, &config.runtime())
            .with_context(|| format!("{} refused", file.display()))?;
    }
    let target = config.plugins_dir().join(format!("{}.wasm", manifest.id));
    let status = signing::verify(bytes).with_context(|| format!("{} refused", file.display()))?;
    let signer = Signer::of(&manifest, &status, &signature);
    let mut book = SignerBook::load(&config.signers_file());
    if let Some(bound) = book.get(&manifest.id)
        && let Err(why) = trust::continuity(bound, &signer)
    {
        if !force {
            anyhow::bail!(
                "{} refused: plugin id \"{}\" is bound to {bound}; this file is {signer}: {why}, and \
                 its settings, key-value data and grants would pass to the new signer. After checking, \
                 install it again with --force to accept",
                file.display(),
                manifest.id,
            );
        }
        println!("signer change accepted (--force): {bound} -> {signer}");
    }
    if let Ok(existing) = std::fs::read(&target)
        .map_err(|_| ())
        .and_then(|b| manifest::read(&b).map_err(|_| ()))
        && manifest.version < existing.version
        && !force
    {
        anyhow::bail!(
            "{} refused: {} is older than the installed {}; downgrades need --force",
            file.display(),
            manifest.version,
            existing.version
        );
    }
    if let Some(text) = license {
        write_atomically(
            &config
                .licenses_dir()
                .join(format!("{}.license", manifest.id)),
            text.as_bytes(),
        )?;
    }
    write_atomically(&target, bytes)?;
    book.bind(&manifest.id, &signer)
        .with_context(|| format!("cannot write {}", config.signers_file().display()))?;
    println!(
        "installed {} ({}) into {} (offline; a running server with `plugins.watch` picks it up)",
        manifest.label(),
        describe_signature(&signature),
        target.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn list_offline(json: bool, config: &Config) -> anyhow::Result<ExitCode> {
    let dir = config.plugins_dir();
    let mut rows = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|e| {
            e.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_plugin_file(p))
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path)?;
        let row = match verify_file(&bytes, &config.runtime()) {
            Ok((m, signature)) => {
                let verified = match &signature {
                    SignatureState::Trusted { vendor } => Some(vendor.as_str()),
                    _ => None,
                };
                let granted = config.grants.granted(&m.id, verified);
                serde_json::json!({
                    "id": m.id, "version": m.version.to_string(), "vendor": m.vendor, "license": m.license,
                    "file": path, "signature": signature, "requested": m.capabilities,
                    "granted": granted, "effective": m.capabilities.intersect(&granted), "status": "installed",
                })
            }
            Err(e) => serde_json::json!({ "file": path, "status": format!("refused: {e}") }),
        };
        rows.push(row);
    }
    print_list(
        &serde_json::json!({ "plugins": rows, "failures": [] }),
        json,
    );
    Ok(ExitCode::SUCCESS)
}

fn remove_offline(id: &str, purge: bool, config: &Config) -> anyhow::Result<ExitCode> {
    let file = config.plugins_dir().join(format!("{id}.wasm"));
    std::fs::remove_file(&file)
        .with_context(|| format!("no plugin \"{id}\" in {}", config.plugins_dir().display()))?;
    if purge {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(async {
            let stores = crate::database::open(config).await?;
            stores.kv.purge(id).await?;
            anyhow::Ok(())
        })?;
    }
    println!(
        "removed {id}{}",
        if purge { " and its key-value data" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints `list` output (the admin API's shape) as a table or JSON.
fn print_list(value: &serde_json::Value, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        return;
    }
    let caps = |v: &serde_json::Value| -> String {
        serde_json::from_value::<Capabilities>(v.clone())
            .map(|c| describe_capabilities(&c))
            .unwrap_or_else(|_| "-".into())
    };
    println!(
        "{:<16} {:<10} {:<12} {:<26} {:<22} {:<22} STATUS",
        "ID", "VERSION", "VENDOR", "SIGNATURE", "REQUESTED", "GRANTED"
    );
    for p in value["plugins"].as_array().into_iter().flatten() {
        let signature = match p["signature"]["state"].as_str() {
            Some("trusted") => format!(
                "trusted ({})",
                p["signature"]["vendor"].as_str().unwrap_or("")
            ),
            Some("untrusted") => format!(
                "untrusted ({})",
                p["signature"]["vendor"].as_str().unwrap_or("")
            ),
            Some(other) => other.to_owned(),
            None => "-".into(),
        };
        println!(
            "{:<16} {:<10} {:<12} {:<26} {:<22} {:<22} {}",
            p["id"].as_str().unwrap_or("?"),
            p["version"].as_str().unwrap_or("?"),
            p["vendor"].as_str().unwrap_or("-"),
            signature,
            caps(&p["requested"]),
            caps(&p["effective"]),
            p["status"].as_str().unwrap_or("?"),
        );
        if let Some(error) = p["last_error"].as_str() {
            println!("{:<16} last update refused: {error}", "");
        }
        let events = &p["events"];
        if events.is_object() {
            println!(
                "{:<16} events: {} delivered, {} dropped (queue full), {} batches failed",
                "",
                events["delivered"].as_u64().unwrap_or(0),
                events["dropped"].as_u64().unwrap_or(0),
                events["failed_batches"].as_u64().unwrap_or(0),
            );
        }
    }
    for f in value["failures"].as_array().into_iter().flatten() {
        println!(
            "refused {}: {}",
            f["file"].as_str().unwrap_or("?"),
            f["error"].as_str().unwrap_or("?")
        );
    }
}

/// What an install changed, as the admin API reports it.
fn print_changes(changes: &serde_json::Value) {
    let Ok(changes) = serde_json::from_value::<InstallChanges>(changes.clone()) else {
        return;
    };
    println!(
        "  version:  {} -> {}",
        changes.version_from.as_deref().unwrap_or("(none)"),
        changes.version_to
    );
    println!(
        "  signer:   {} -> {}",
        changes.signer_from.as_deref().unwrap_or("(none)"),
        changes.signer_to
    );
    for (what, list) in [
        ("requests added", &changes.requested_added),
        ("requests removed", &changes.requested_removed),
        ("grants added", &changes.granted_added),
        ("grants removed", &changes.granted_removed),
    ] {
        if !list.is_empty() {
            println!("  {what}: {}", list.join(", "));
        }
    }
}

/// A running server's admin API, for plugin commands.
struct Remote(super::Remote);

impl Remote {
    /// The server to talk to, or `None` for offline mode: asked for, or no
    /// server answering at the configured address (an explicit --server must answer).
    fn connect(target: &Target, config: &Config) -> anyhow::Result<Option<Self>> {
        if target.offline {
            return Ok(None);
        }
        let remote = super::Remote::connect(&target.remote, config, Some(&config.plugins_dir()))?;
        Ok(remote.map(Self))
    }

    fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
        self.0.send(request)
    }

    fn install(
        &self,
        file: &Path,
        bytes: Vec<u8>,
        license: Option<String>,
        force: bool,
    ) -> anyhow::Result<ExitCode> {
        let mut form = reqwest::multipart::Form::new().part(
            "plugin",
            reqwest::multipart::Part::bytes(bytes).file_name(
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
        );
        if let Some(license) = license {
            form = form.text("license", license);
        }
        let url = format!("{}/api/admin/plugins?force={force}", self.0.base);
        let info = self
            .send(self.0.client.post(url).multipart(form))
            .with_context(|| format!("{} refused", file.display()))?;
        println!(
            "installed {}@{} on {} ({})",
            info["id"].as_str().unwrap_or("?"),
            info["version"].as_str().unwrap_or("?"),
            self.0.base,
            info["status"].as_str().unwrap_or("?")
        );
        print_changes(&info["changes"]);
        Ok(ExitCode::SUCCESS)
    }

    fn list(&self, json: bool) -> anyhow::Result<ExitCode> {
        let value = self.send(
            self.0
                .client
                .get(format!("{}/api/admin/plugins", self.0.base)),
        )?;
        print_list(&value, json);
        Ok(ExitCode::SUCCESS)
    }

    fn remove(&self, id: &str, purge: bool) -> anyhow::Result<ExitCode> {
        self.send(self.0.client.delete(format!(
            "{}/api/admin/plugins/{id}?purge={purge}",
            self.0.base
        )))?;
        println!(
            "removed {id}{}",
            if purge { " and its key-value data" } else { "" }
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// [`plugins::write_atomically`](crate::plugins::write_atomically), with the file in the error.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::plugins::write_atomically(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
