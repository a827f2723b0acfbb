//! `callboard vendor ...` and `callboard license ...`: what a vendor of
//! premium plugins runs.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use jiff::{Timestamp, ToSpan as _, civil::Date, tz::TimeZone};

use crate::plugins::{
    license::{self, LicenseTerms},
    signing::VendorKey,
};

/// Vendor key commands.
#[derive(Debug, clap::Subcommand)]
pub enum VendorCommand {
    /// Create an ed25519 signing key: `<vendor>.key` (secret) and
    /// `<vendor>.pub` (give it to operators for their trust store).
    Keygen {
        /// Vendor id, as your plugin manifests name it.
        #[arg(long)]
        vendor: String,
        /// Folder to write the two files to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Licence commands.
#[derive(Debug, clap::Subcommand)]
pub enum LicenseCommand {
    /// Write a licence file for one customer, signed with your vendor key.
    Issue {
        /// Your vendor secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The plugin id it licenses.
        #[arg(long)]
        plugin: String,
        /// The customer organisation, exactly as its portal's `organization` setting.
        #[arg(long)]
        customer: String,
        /// Last day of validity (`YYYY-MM-DD`, through the end of that day UTC)
        /// or an exact RFC 3339 time.
        #[arg(long)]
        expires: String,
        /// First day of validity; default now.
        #[arg(long)]
        not_before: Option<String>,
        /// Licensed features, comma-separated.
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
        /// Where to write it; default `<plugin>-<customer>.license`.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// Runs a vendor command.
pub fn run_vendor(command: VendorCommand) -> anyhow::Result<ExitCode> {
    match command {
        VendorCommand::Keygen { vendor, out } => {
            let key = VendorKey::generate(&vendor)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let secret = out.join(format!("{vendor}.key"));
            let public = out.join(format!("{vendor}.pub"));
            if secret.exists() {
                anyhow::bail!("{} exists; refusing to overwrite a key", secret.display());
            }
            write_private(&secret, key.secret_file().as_bytes())?;
            std::fs::write(&public, toml::to_string(&key.public())?)
                .with_context(|| format!("cannot write {}", public.display()))?;
            println!(
                "wrote {} (keep it secret) and {} (for operators' trust stores)",
                secret.display(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a licence command.
pub fn run_license(command: LicenseCommand) -> anyhow::Result<ExitCode> {
    match command {
        LicenseCommand::Issue {
            key,
            plugin,
            customer,
            expires,
            not_before,
            features,
            out,
        } => {
            let key = VendorKey::read(&key)?;
            let now = Timestamp::now();
            let terms = LicenseTerms {
                plugin: plugin.clone(),
                vendor: key.vendor.clone(),
                customer: customer.clone(),
                features: features.into_iter().filter(|f| !f.is_empty()).collect(),
                issued: now,
                not_before: not_before
                    .as_deref()
                    .map(|d| parse_time(d, false))
                    .transpose()?
                    .unwrap_or(now),
                expires: parse_time(&expires, true)?,
            };
            if terms.expires <= terms.not_before {
                anyhow::bail!("--expires must be after the start of validity");
            }
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{plugin}-{customer}.license")));
            std::fs::write(&out, license::issue(&key, &terms))
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote {} for {plugin}, customer \"{customer}\", valid until {}",
                out.display(),
                terms.expires.strftime("%Y-%m-%d %H:%M UTC")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `YYYY-MM-DD` (start of the day, or with `end_of_day` the start of the
/// next) or RFC 3339.
fn parse_time(text: &str, end_of_day: bool) -> anyhow::Result<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let date: Date = text
        .parse()
        .with_context(|| format!("{text:?} is neither YYYY-MM-DD nor an RFC 3339 time"))?;
    let date = if end_of_day {
        date.checked_add(1.day())?
    } else {
        date
    };
    Ok(date.to_zoned(TimeZone::UTC)?.timestamp())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}
