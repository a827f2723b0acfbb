//! Who the operator trusts, and the signature policy:
//!
//! - a signature that does not match the file's bytes is always refused;
//! - a signed plugin must be signed by the vendor its manifest names;
//! - a `commercial` plugin loads only if signed by a trusted vendor;
//! - an unsigned open-source plugin loads unless `require_signatures` is set,
//!   and so does one signed by a vendor the operator has not listed.

use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

use super::{
    manifest::Manifest,
    signing::{PublicKeyFile, SignatureStatus},
};
use crate::config::TrustConfig;

/// Trusted vendor keys, by vendor id.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    vendors: BTreeMap<String, String>,
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
        Self { vendors }
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
