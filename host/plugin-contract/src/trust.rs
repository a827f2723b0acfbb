//! Who the operator trusts, and the signature policy:
//!
//! - a signature that does not match the file's bytes is always refused;
//! - a signed plugin must be signed by the vendor its manifest names;
//! - a `commercial` plugin loads only if signed by a trusted vendor;
//! - an unsigned open-source plugin loads unless `require_signatures` is set,
//!   and so does one signed by a vendor the operator has not listed;
//! - an update keeps its signer: the same vendor, signed at least as
//!   strongly as the id was bound to ([`continuity`], [`SignerBook`]), unless
//!   the operator forces it (admin API and CLI only, never a dropped file).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    manifest::{Capabilities, Manifest},
    signing::{PublicKeyFile, SignatureStatus},
};

/// `[trust]`: vendor keys and the signature policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustConfig {
    /// Refuse every plugin not signed by a trusted vendor (commercial plugins
    /// always need one). Default false.
    pub require_signatures: bool,
    /// Trusted vendors: `[[trust.vendors]] id = "acme" public_key = "<hex>"`.
    pub vendors: Vec<TrustedVendor>,
    /// Folder of trusted vendor public key files (`*.pub`, as written by
    /// `callboard vendor keygen`). Default `<data_dir>/trusted-vendors`.
    pub dir: Option<PathBuf>,
    /// Plugin ids bound to a vendor: `[trust.pins] ci = "acme"` loads plugin
    /// `ci` only when signed by trusted vendor `acme`, forced or not, so its
    /// settings (e.g. a token) and data never reach another signer. Default:
    /// none (an id is bound to the signer it was first installed with, and
    /// a change needs `--force`).
    pub pins: BTreeMap<String, String>,
}

/// One trusted vendor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedVendor {
    /// Vendor id, as plugin manifests name it.
    pub id: String,
    /// ed25519 public key, hex.
    pub public_key: String,
}

/// Trusted vendor keys, by vendor id.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    vendors: BTreeMap<String, String>,
    /// Plugin id -> the vendor that must sign it (`trust.pins`).
    pins: BTreeMap<String, String>,
}

impl TrustStore {
    /// Vendors from the config plus every `*.pub` file in `dir` (a vendor's
    /// public key file, as `callboard vendor keygen` writes it). Unreadable
    /// files are logged and skipped.
    pub fn load(config: &TrustConfig, dir: &Path) -> Self {
        let mut vendors: BTreeMap<String, String> = config
            .vendors
            .iter()
            .map(|v| (v.id.clone(), v.public_key.to_ascii_lowercase()))
            .collect();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if path.extension().is_none_or(|e| e != "pub") {
                    continue;
                }
                match std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| toml::from_str::<PublicKeyFile>(&t).map_err(|e| e.to_string()))
                {
                    Ok(key) => {
                        vendors.insert(key.vendor, key.public_key.to_ascii_lowercase());
                    }
                    Err(e) => {
                        tracing::error!(file = %path.display(), "ignoring trusted-vendor key file: {e}")
                    }
                }
            }
        }
        Self {
            vendors,
            pins: config.pins.clone(),
        }
    }

    /// The trusted public key of `vendor`.
    pub fn key_for(&self, vendor: &str) -> Option<&str> {
        self.vendors.get(vendor).map(String::as_str)
    }
}

/// How a loaded plugin's signature stands with the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SignatureState {
    /// Not signed.
    Unsigned,
    /// Signed by a vendor in the trust store.
    Trusted {
        /// The vendor.
        vendor: String,
    },
    /// Validly signed, by a vendor the operator has not listed.
    Untrusted {
        /// The vendor it claims to be.
        vendor: String,
    },
}

/// Applies the policy. `Err` says why the plugin is refused.
pub fn check(
    manifest: &Manifest,
    signature: SignatureStatus,
    trust: &TrustStore,
    require_signatures: bool,
) -> Result<SignatureState, String> {
    let state = match signature {
        SignatureStatus::Unsigned => SignatureState::Unsigned,
        SignatureStatus::Valid { vendor, public_key } => {
            if manifest.vendor.as_deref() != Some(vendor.as_str()) {
                return Err(format!(
                    "is signed by vendor \"{vendor}\" but its manifest names vendor \"{}\"",
                    manifest.vendor.as_deref().unwrap_or("(none)")
                ));
            }
            match trust.key_for(&vendor) {
                Some(key) if key.eq_ignore_ascii_case(&public_key) => {
                    SignatureState::Trusted { vendor }
                }
                Some(_) => {
                    return Err(format!(
                        "is signed with a key that is not vendor \"{vendor}\"'s trusted key"
                    ));
                }
                None => SignatureState::Untrusted { vendor },
            }
        }
    };
    if let Some(pinned) = trust.pins.get(&manifest.id)
        && !matches!(&state, SignatureState::Trusted { vendor } if vendor == pinned)
    {
        return Err(format!(
            "is pinned to vendor \"{pinned}\" (`trust.pins`) but is {}",
            match &state {
                SignatureState::Unsigned => "unsigned".to_owned(),
                SignatureState::Trusted { vendor } =>
                    format!("signed by trusted vendor \"{vendor}\""),
                SignatureState::Untrusted { vendor } =>
                    format!("signed by unknown vendor \"{vendor}\""),
            }
        ));
    }
    match (&state, manifest.is_commercial()) {
        (SignatureState::Trusted { .. }, _) => Ok(state),
        (SignatureState::Unsigned, true) => {
            Err("is a commercial plugin and is not signed; commercial plugins must be signed by their vendor".into())
        }
        (SignatureState::Untrusted { vendor }, true) => Err(format!(
            "is a commercial plugin signed by vendor \"{vendor}\", which is not in the trust store"
        )),
        (_, false) if require_signatures => Err(format!(
            "is not signed by a trusted vendor and `trust.require_signatures` is set ({})",
            match &state {
                SignatureState::Untrusted { vendor } => format!("signed by unknown vendor \"{vendor}\""),
                _ => "unsigned".to_owned(),
            }
        )),
        _ => Ok(state),
    }
}

/// Who vouches for a plugin file: what vendor grants, settings and data
/// follow from one version to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    /// The vendor the manifest names (unverified when not `signed`).
    pub vendor: Option<String>,
    /// The key of a valid signature, hex; `None` when unsigned.
    pub public_key: Option<String>,
    /// Whether the key is the trust store's key for `vendor`.
    pub trusted: bool,
}

impl Signer {
    /// The signer of a file with `manifest`, `status` and policy `state`.
    pub fn of(manifest: &Manifest, status: &SignatureStatus, state: &SignatureState) -> Self {
        Self {
            vendor: manifest.vendor.clone(),
            public_key: match status {
                SignatureStatus::Unsigned => None,
                SignatureStatus::Valid { public_key, .. } => Some(public_key.to_ascii_lowercase()),
            },
            trusted: matches!(state, SignatureState::Trusted { .. }),
        }
    }

    /// The vendor whose `[grants.vendors.X]` apply: only a trusted signature's.
    pub fn verified_vendor(&self) -> Option<&str> {
        self.vendor.as_deref().filter(|_| self.trusted)
    }

    fn rank(&self) -> u8 {
        match (&self.public_key, self.trusted) {
            (None, _) => 0,
            (Some(_), false) => 1,
            (Some(_), true) => 2,
        }
    }
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let vendor = self.vendor.as_deref().unwrap_or("(none)");
        match (&self.public_key, self.trusted) {
            (None, _) => write!(f, "unsigned (manifest vendor \"{vendor}\")"),
            (Some(_), true) => write!(f, "signed by trusted vendor \"{vendor}\""),
            (Some(key), false) => write!(
                f,
                "signed by untrusted key {}... claiming vendor \"{vendor}\"",
                &key[..key.len().min(16)]
            ),
        }
    }
}

/// Whether `new` may take over from `old` without the operator forcing it:
/// same vendor, and a signature at least as strong (unsigned < signed by an
/// unknown key < signed by the trusted key). Two untrusted keys are two
/// signers; two trusted keys of one vendor are that vendor (a rotation the
/// operator made in the trust store). `Err` says what changes.
pub fn continuity(old: &Signer, new: &Signer) -> Result<(), String> {
    if old.vendor != new.vendor {
        return Err("the vendor changes".into());
    }
    if new.rank() < old.rank() {
        return Err("the signature is weaker".into());
    }
    if old.rank() == 1 && new.rank() == 1 && old.public_key != new.public_key {
        return Err("another key signs it".into());
    }
    Ok(())
}

/// The signer each plugin id was last installed with, kept in
/// `<data_dir>/plugin-signers.json` so a restart or a removal does not
/// forget it: settings and key-value data stay bound to the signer until an
/// operator forces a change.
#[derive(Debug, Default)]
pub struct SignerBook {
    path: std::path::PathBuf,
    signers: BTreeMap<String, Signer>,
}

impl SignerBook {
    /// Reads the book; a missing file is an empty book, an unreadable one is
    /// logged and read as empty (every plugin is then bound on its next load).
    pub fn load(path: &Path) -> Self {
        let signers = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(file = %path.display(), "ignoring the unreadable plugin signer record: {e}");
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::error!(file = %path.display(), "cannot read the plugin signer record: {e}");
                BTreeMap::new()
            }
        };
        Self {
            path: path.to_owned(),
            signers,
        }
    }

    /// The signer plugin `id` is bound to.
    pub fn get(&self, id: &str) -> Option<&Signer> {
        self.signers.get(id)
    }

    /// Binds `id` to `signer` and saves the book (if it changed).
    pub fn bind(&mut self, id: &str, signer: &Signer) -> std::io::Result<()> {
        if self.signers.get(id) == Some(signer) {
            return Ok(());
        }
        self.signers.insert(id.to_owned(), signer.clone());
        let json = serde_json::to_vec_pretty(&self.signers).map_err(std::io::Error::other)?;
        crate::write_atomically(&self.path, &json)
    }
}

/// What an install changes, shown before (in a refusal) and after the swap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallChanges {
    /// The version serving before, if any.
    pub version_from: Option<String>,
    /// The version installed.
    pub version_to: String,
    /// The signer the id was bound to, if any.
    pub signer_from: Option<String>,
    /// The new file's signer.
    pub signer_to: String,
    /// Requested capabilities the new version adds (`kv`, `http:host`, ...).
    pub requested_added: Vec<String>,
    /// Requested capabilities it drops.
    pub requested_removed: Vec<String>,
    /// Capabilities it gets that the serving version did not.
    pub granted_added: Vec<String>,
    /// Capabilities the serving version had that it loses.
    pub granted_removed: Vec<String>,
}

impl InstallChanges {
    /// One line for messages and logs.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "version {} -> {}",
            self.version_from.as_deref().unwrap_or("(none)"),
            self.version_to
        )];
        parts.push(format!(
            "signer: {} -> {}",
            self.signer_from.as_deref().unwrap_or("(none)"),
            self.signer_to
        ));
        for (what, list) in [
            ("requests added", &self.requested_added),
            ("requests removed", &self.requested_removed),
            ("grants added", &self.granted_added),
            ("grants removed", &self.granted_removed),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what}: {}", list.join(", ")));
            }
        }
        parts.join("; ")
    }
}

/// Capabilities as a flat list of items, to compare two versions.
pub fn capability_items(c: &Capabilities) -> Vec<String> {
    let mut items = Vec::new();
    if c.kv {
        items.push("kv".to_owned());
    }
    if c.catalog {
        items.push("catalog".to_owned());
    }
    items.extend(c.http_hosts.iter().map(|h| format!("http:{h}")));
    items.extend(c.events.iter().map(|e| format!("events:{e}")));
    items.extend(c.files.iter().map(|(g, h)| format!("files:{g}={h}")));
    items
}

/// Items in `b` not in `a`.
pub fn added(a: &[String], b: &[String]) -> Vec<String> {
    b.iter().filter(|x| !a.contains(x)).cloned().collect()
}
