//! `callboard token ...`: API tokens of service principals, through a
//! running server's admin API (`/api/admin/tokens`), as whoever the
//! credential names (it needs `callboard.tokens.manage`).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Remote, ServerArgs};
use crate::config::Config;

/// API token commands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token for a service principal and print its secret (shown
    /// only this once: the server keeps a digest).
    Create {
        /// The service principal's name: 1 to 64 characters of [A-Za-z0-9._-].
        name: String,
        /// Days until it stops working (1 to 3650).
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
        expires_days: i64,
        /// Restrict it to this permission (repeatable); without any, it may
        /// do what the policy grants `token:<name>`.
        #[arg(long = "permission", value_name = "PERMISSION")]
        permissions: Vec<String>,
        /// Print JSON (the secret included) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: ServerArgs,
    },
    /// List tokens (never their secrets): state, expiry, last use.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: ServerArgs,
    },
    /// Revoke a token by id; it stops working at once.
    Revoke {
        /// The token's id (from `callboard token list`).
        id: String,
        #[command(flatten)]
        remote: ServerArgs,
    },
}

/// Runs a token command.
pub fn run(command: TokenCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let connect = |remote: &ServerArgs| -> anyhow::Result<Remote> {
        Remote::connect(remote, config, None)?
            .ok_or_else(|| anyhow::anyhow!("no Callboard server answers"))
    };
    match command {
        TokenCommand::Create {
            name,
            expires_days,
            permissions,
            json,
            remote,
        } => {
            let remote = connect(&remote)?;
            let body = json!({
                "name": name,
                "expiresInDays": expires_days,
                "permissions": permissions,
            });
            let created = remote.send(
                remote
                    .client
                    .post(format!("{}/api/admin/tokens", remote.base))
                    .json(&body),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                let secret = created["token"].as_str().unwrap_or_default();
                eprintln!(
                    "created token {} (id {}), expires {}; restricted to: {}",
                    text(&created["name"]),
                    text(&created["id"]),
                    text(&created["expiresAt"]),
                    list_or(&created["permissions"], "nothing (what the policy grants)"),
                );
                eprintln!("copy the token now: it is not shown again");
                // The secret alone on stdout, so `$(callboard token create ...)` is it.
                println!("{secret}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { json, remote } => {
            let remote = connect(&remote)?;
            let value = remote.send(
                remote
                    .client
                    .get(format!("{}/api/admin/tokens", remote.base)),
            )?;
            let items = value["items"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(ExitCode::SUCCESS);
            }
            if items.is_empty() {
                println!("no tokens");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<36}  {:<24}  {:<8}  {:<20}  {:<20}  PERMISSIONS",
                "ID", "NAME", "STATE", "EXPIRES", "LAST USED"
            );
            for t in &items {
                println!(
                    "{:<36}  {:<24}  {:<8}  {:<20}  {:<20}  {}",
                    text(&t["id"]),
                    text(&t["name"]),
                    text(&t["state"]),
                    short_time(&t["expiresAt"]),
                    short_time(&t["lastUsedAt"]),
                    list_or(&t["permissions"], "(policy)"),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id, remote } => {
            let remote = connect(&remote)?;
            let url = reqwest::Url::parse(&format!("{}/api/admin/tokens/", remote.base))
                .and_then(|base| base.join(&encode_segment(&id)))?;
            remote.send(remote.client.delete(url))?;
            println!("revoked {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A JSON string's text, `-` for anything else.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// An RFC 3339 time to the second (`-` for none).
fn short_time(value: &Value) -> String {
    value.as_str().map_or_else(
        || "-".to_owned(),
        |t| t.get(..19).unwrap_or(t).replace('T', " "),
    )
}

/// A JSON array of strings joined by commas, or `empty` for none.
fn list_or(value: &Value, empty: &str) -> String {
    let items: Vec<&str> = value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(",")
    }
}

/// `id` as one URL path segment.
fn encode_segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}
