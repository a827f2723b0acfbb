//! An uploaded plugin file's bytes before wasmtime sees them: the top-level
//! sections, the manifest section, the signature section and the trust
//! policy (what `loader::verify` does on upload and install).

use std::path::Path;
use std::sync::OnceLock;

use callboard::config::{TrustConfig, TrustedVendor};
use callboard::plugins::manifest;
use callboard::plugins::signing::{self, SignatureStatus};
use callboard::plugins::trust::{self, TrustStore};

/// One input: the whole file.
pub fn run(data: &[u8]) {
    check(data);
}

/// The demo vendor (demo/vendor/lanternfish.pub) is trusted, so a seed
/// signed with its demo key reaches the "trusted" path.
fn trust_store() -> &'static TrustStore {
    static TRUST: OnceLock<TrustStore> = OnceLock::new();
    TRUST.get_or_init(|| {
        let config = TrustConfig {
            vendors: vec![TrustedVendor {
                id: "lanternfish".into(),
                public_key: "1cf5285b5cd781d7f048ab6efd1ecd4fed4f6db04143fc9787b55ecc89dbdaea"
                    .into(),
            }],
            ..TrustConfig::default()
        };
        TrustStore::load(&config, Path::new("/nonexistent/trusted-vendors"))
    })
}

/// Verifies `bytes` as the host does, then checks that packing them again
/// keeps the manifest and drops the signature.
pub fn check(bytes: &[u8]) {
    let read = manifest::read(bytes);
    let signature = signing::verify(bytes);
    let Ok(manifest) = read else {
        return;
    };
    if let Ok(signature) = signature {
        for require in [false, true] {
            let _ = trust::check(&manifest, signature.clone(), trust_store(), require);
        }
    }
    let packed = manifest::embed(bytes, &manifest)
        .unwrap_or_else(|e| panic!("a file whose manifest reads can be packed: {e}"));
    let again =
        manifest::read(&packed).unwrap_or_else(|e| panic!("a packed manifest reads back: {e}"));
    assert_eq!(again, manifest, "packing changed the manifest");
    assert_eq!(
        signing::verify(&packed).ok(),
        Some(SignatureStatus::Unsigned),
        "packing drops the signature"
    );
}
