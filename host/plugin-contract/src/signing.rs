//! Vendor keys (ed25519) and plugin signatures.
//!
//! A signature travels inside the plugin file, in a custom section named
//! [`SECTION`] that must be the file's last section. It signs everything
//! before it, so any changed byte of the plugin invalidates it, and the file
//! stays one file.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasm_encoder::Section as _;

use crate::sections::{self, NotComponent};

/// Name of the custom section holding the signature.
pub const SECTION: &str = "callboard-signature";

/// Domain separation: a plugin signature can never be replayed as a licence
/// signature or anything else.
const CONTEXT: &[u8] = b"callboard plugin signature v1\n";

/// Why signing or verifying failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key file is unreadable or malformed.
    #[error("invalid key file {file}: {reason}")]
    KeyFile {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The plugin bytes are not a component.
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    /// The signature section is malformed or not last.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The signature does not match the bytes.
    #[error("the signature does not match the file: it was changed after signing")]
    Mismatch,
}

/// A vendor's secret key file (`<vendor>.key`, TOML). Keep it secret.
#[derive(Serialize, Deserialize)]
struct SecretKeyFile {
    vendor: String,
    secret_key: String,
}

/// A vendor's public key file (`<vendor>.pub`, TOML), what operators trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyFile {
    /// Vendor id, as plugin manifests name it.
    pub vendor: String,
    /// ed25519 public key, hex.
    pub public_key: String,
}

/// A vendor's signing key.
pub struct VendorKey {
    /// Vendor id.
    pub vendor: String,
    key: SigningKey,
}

impl VendorKey {
    /// A fresh random key for `vendor`.
    pub fn generate(vendor: &str) -> Result<Self, SignError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SignError::KeyFile {
            file: "(random)".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            vendor: vendor.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads a `.key` file.
    pub fn read(path: &Path) -> Result<Self, SignError> {
        let bad = |reason: String| SignError::KeyFile {
            file: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: SecretKeyFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let bytes: [u8; 32] = hex::decode(&file.secret_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("secret_key must be 64 hex digits".into()))?;
        Ok(Self {
            vendor: file.vendor,
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// The secret key file's text.
    pub fn secret_file(&self) -> String {
        let file = SecretKeyFile {
            vendor: self.vendor.clone(),
            secret_key: hex::encode(self.key.to_bytes()),
        };
        format!(
            "# Callboard vendor signing key. Keep it secret.\n{}",
            toml::to_string(&file).expect("plain strings")
        )
    }

    /// The public key, as operators put it in their trust store.
    pub fn public(&self) -> PublicKeyFile {
        PublicKeyFile {
            vendor: self.vendor.clone(),
            public_key: hex::encode(self.key.verifying_key().to_bytes()),
        }
    }

    /// Signs `message` under `context` (domain separation).
    pub fn sign_raw(&self, context: &[u8], message: &[u8]) -> String {
        hex::encode(self.key.sign(&contextual(context, message)).to_bytes())
    }

    /// Returns `plugin` signed: any previous signature removed, this one appended.
    pub fn sign_plugin(&self, plugin: &[u8]) -> Result<Vec<u8>, SignError> {
        let unsigned = strip(plugin)?;
        let section = SignatureSection {
            vendor: self.vendor.clone(),
            public_key: self.public().public_key,
            signature: self.sign_raw(CONTEXT, &Sha256::digest(unsigned)),
        };
        let mut out = unsigned.to_vec();
        let json = serde_json::to_vec(&section).expect("plain strings");
        wasm_encoder::CustomSection {
            name: SECTION.into(),
            data: json.into(),
        }
        .append_to(&mut out);
        Ok(out)
    }
}

/// Verifies `signature` (hex) of `message` under `context` with `public_key` (hex).
pub fn verify_raw(public_key: &str, context: &[u8], message: &[u8], signature: &str) -> bool {
    let Some(key) = hex::decode(public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    else {
        return false;
    };
    let Some(signature) = hex::decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
    else {
        return false;
    };
    key.verify(
        &contextual(context, message),
        &Signature::from_bytes(&signature),
    )
    .is_ok()
}

fn contextual(context: &[u8], message: &[u8]) -> Vec<u8> {
    [context, message].concat()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureSection {
    vendor: String,
    public_key: String,
    signature: String,
}

/// A plugin file's signature, checked against its bytes (not yet against
/// the trust store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// No signature section.
    Unsigned,
    /// The bytes match the signature made with `public_key`.
    Valid {
        /// The vendor the signer claims to be.
        vendor: String,
        /// The key that signed, hex.
        public_key: String,
    },
}

/// Checks the signature of `plugin`, if it has one. A signature that does not
/// match the bytes is an error, never "unsigned".
pub fn verify(plugin: &[u8]) -> Result<SignatureStatus, SignError> {
    let Some((offset, data)) = signature_section(plugin)? else {
        return Ok(SignatureStatus::Unsigned);
    };
    let section: SignatureSection =
        serde_json::from_slice(data).map_err(|e| SignError::Malformed(e.to_string()))?;
    let digest = Sha256::digest(&plugin[..offset]);
    if !verify_raw(&section.public_key, CONTEXT, &digest, &section.signature) {
        return Err(SignError::Mismatch);
    }
    Ok(SignatureStatus::Valid {
        vendor: section.vendor,
        public_key: section.public_key,
    })
}

/// The bytes without their signature section.
fn strip(plugin: &[u8]) -> Result<&[u8], SignError> {
    Ok(match signature_section(plugin)? {
        Some((offset, _)) => &plugin[..offset],
        None => plugin,
    })
}

/// Finds the signature section: `(offset of its first byte, its data)`.
/// Errors if it is not the last section.
fn signature_section(plugin: &[u8]) -> Result<Option<(usize, &[u8])>, SignError> {
    let sections = sections::top_level(plugin).map_err(|e| match e {
        NotComponent::CoreModule => SignError::NotWasm("a core module, not a component".into()),
        NotComponent::Invalid(why) => SignError::NotWasm(why),
    })?;
    let count = sections.len();
    for (i, section) in sections.iter().enumerate() {
        if let Some((SECTION, data)) = section.custom() {
            if i + 1 != count {
                return Err(SignError::Malformed(
                    "the signature must be the last section".into(),
                ));
            }
            return Ok(Some((section.start, data)));
        }
    }
    Ok(None)
}
