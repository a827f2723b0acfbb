//! Licences for commercial plugins: a small JSON file a vendor signs per
//! customer. The host checks plugin id, vendor, customer (the operator's
//! `organization`), validity window and signature at install, at start-up and
//! periodically; a plugin whose licence fails the check is disabled, not
//! unloaded, and a new licence re-enables it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    signing::{VendorKey, verify_raw},
    trust::TrustStore,
};

/// Domain separation from plugin signatures.
const CONTEXT: &[u8] = b"callboard licence v1\n";
const FORMAT: &str = "callboard-license-v1";

/// What a licence grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseTerms {
    /// Plugin id.
    pub plugin: String,
    /// Vendor id (must match the plugin's manifest).
    pub vendor: String,
    /// The customer organisation.
    pub customer: String,
    /// Licensed features (entitlements).
    pub features: Vec<String>,
    /// When it was issued.
    pub issued: Timestamp,
    /// Valid from.
    pub not_before: Timestamp,
    /// Valid until.
    pub expires: Timestamp,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseFile {
    format: String,
    /// The terms as the exact JSON text that was signed.
    terms: String,
    signature: String,
}

/// Why a licence does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenseError {
    /// Not a licence file.
    #[error("not a valid licence file: {0}")]
    Malformed(String),
    /// For another plugin.
    #[error("the licence is for plugin \"{licensed}\", not \"{plugin}\"")]
    WrongPlugin {
        /// The licence's plugin.
        licensed: String,
        /// The plugin it was offered for.
        plugin: String,
    },
    /// From another vendor than the plugin's.
    #[error(
        "the licence for {plugin} is from vendor \"{licensed}\" but the plugin is from \"{vendor}\""
    )]
    WrongVendor {
        /// Plugin id.
        plugin: String,
        /// The licence's vendor.
        licensed: String,
        /// The plugin's vendor.
        vendor: String,
    },
    /// For another customer.
    #[error(
        "the licence for {plugin} is issued to \"{customer}\", but this portal is \"{organization}\""
    )]
    WrongCustomer {
        /// Plugin id.
        plugin: String,
        /// The licence's customer.
        customer: String,
        /// The configured organisation.
        organization: String,
    },
    /// The vendor is not trusted.
    #[error(
        "the licence for {plugin} is signed by vendor \"{vendor}\", which is not in the trust store"
    )]
    UnknownVendor {
        /// Plugin id.
        plugin: String,
        /// The vendor.
        vendor: String,
    },
    /// The signature does not match.
    #[error("the licence for {plugin} has an invalid signature (changed or forged)")]
    BadSignature {
        /// Plugin id.
        plugin: String,
    },
    /// Not valid yet.
    #[error("licence for {plugin} is not valid before {from}")]
    NotYetValid {
        /// Plugin id.
        plugin: String,
        /// Start of validity.
        from: Timestamp,
    },
    /// Expired.
    #[error("licence for {plugin} expired on {}", .on.strftime("%Y-%m-%d %H:%M UTC"))]
    Expired {
        /// Plugin id.
        plugin: String,
        /// When.
        on: Timestamp,
    },
}

/// Writes a signed licence file's text.
pub fn issue(key: &VendorKey, terms: &LicenseTerms) -> String {
    let text = serde_json::to_string(terms).expect("plain data");
    let file = LicenseFile {
        format: FORMAT.into(),
        signature: key.sign_raw(CONTEXT, text.as_bytes()),
        terms: text,
    };
    serde_json::to_string_pretty(&file).expect("plain data") + "\n"
}

/// Reads a licence file's terms without checking anything.
pub fn parse(text: &str) -> Result<LicenseTerms, LicenseError> {
    Ok(parse_file(text)?.1)
}

fn parse_file(text: &str) -> Result<(LicenseFile, LicenseTerms), LicenseError> {
    let file: LicenseFile =
        serde_json::from_str(text).map_err(|e| LicenseError::Malformed(e.to_string()))?;
    if file.format != FORMAT {
        return Err(LicenseError::Malformed(format!(
            "unknown format \"{}\"",
            file.format
        )));
    }
    let terms =
        serde_json::from_str(&file.terms).map_err(|e| LicenseError::Malformed(e.to_string()))?;
    Ok((file, terms))
}

/// Checks a licence for `plugin` from `vendor` at `now`.
pub fn verify(
    text: &str,
    plugin: &str,
    vendor: &str,
    organization: &str,
    trust: &TrustStore,
    now: Timestamp,
) -> Result<LicenseTerms, LicenseError> {
    let (file, terms) = parse_file(text)?;
    if terms.plugin != plugin {
        return Err(LicenseError::WrongPlugin {
            licensed: terms.plugin,
            plugin: plugin.into(),
        });
    }
    if terms.vendor != vendor {
        return Err(LicenseError::WrongVendor {
            plugin: plugin.into(),
            licensed: terms.vendor,
            vendor: vendor.into(),
        });
    }
    let Some(key) = trust.key_for(vendor) else {
        return Err(LicenseError::UnknownVendor {
            plugin: plugin.into(),
            vendor: vendor.into(),
        });
    };
    if !verify_raw(key, CONTEXT, file.terms.as_bytes(), &file.signature) {
        return Err(LicenseError::BadSignature {
            plugin: plugin.into(),
        });
    }
    if terms.customer != organization {
        return Err(LicenseError::WrongCustomer {
            plugin: plugin.into(),
            customer: terms.customer,
            organization: organization.into(),
        });
    }
    check_window(&terms, now)?;
    Ok(terms)
}

/// Checks only the validity window (the rest was checked when it was loaded).
pub fn check_window(terms: &LicenseTerms, now: Timestamp) -> Result<(), LicenseError> {
    if now < terms.not_before {
        return Err(LicenseError::NotYetValid {
            plugin: terms.plugin.clone(),
            from: terms.not_before,
        });
    }
    if now >= terms.expires {
        return Err(LicenseError::Expired {
            plugin: terms.plugin.clone(),
            on: terms.expires,
        });
    }
    Ok(())
}
