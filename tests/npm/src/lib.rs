//! The npm packages a test talks to (Backstage's catalog client, the OIDC
//! provider, OpenAI's client), installed from a locked folder into a cache
//! outside the clone: once, and again when the folder's `package.json` or
//! `package-lock.json` changes. Node and npm are required: without them the
//! test fails and says which test needs them, rather than passing without
//! checking anything.
//!
//! Shared by the tests crate and `demo/llm-server`'s tests (a demo crate
//! cannot depend on the tests crate), so it depends on nothing.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A folder of locked npm packages a test needs.
pub struct Packages<'a> {
    /// Holds `package.json` and `package-lock.json`.
    pub dir: &'a Path,
    /// The cache's folder under `~/.cache/callboard/`.
    pub cache: &'a str,
    /// An environment variable naming another cache folder.
    pub cache_env: &'a str,
    /// A package whose `package.json` marks a finished install.
    pub probe: &'a str,
    /// Who needs them, for the message when node or npm is missing:
    /// "the OpenID Connect sign-in tests need a real provider (npm package
    /// oidc-provider)".
    pub needed_by: &'a str,
}

impl Packages<'_> {
    /// The cache folder this install uses.
    pub fn cache_dir(&self) -> PathBuf {
        std::env::var_os(self.cache_env)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").expect("HOME is not set");
                PathBuf::from(home)
                    .join(".cache/callboard")
                    .join(self.cache)
            })
    }

    /// Installs the locked packages into the cache with `npm ci` unless the
    /// same ones are there, and returns its `node_modules`. A file lock
    /// keeps concurrent test processes from installing over each other.
    /// Blocking: call it from `spawn_blocking` in async tests.
    pub fn install(&self) -> PathBuf {
        for tool in ["node", "npm"] {
            let found = Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "\n\n*** `{tool}` is not installed: {}. Install Node.js 20+ with npm. ***\n\n",
                self.needed_by
            );
        }
        let cache = self.cache_dir();
        fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("creating {}: {e}", cache.display()));
        let lock_path = cache.join(".install-lock");
        let lock = File::create(&lock_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
        let read = |name: &str| {
            let path = self.dir.join(name);
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        };
        let files = [
            ("package.json", read("package.json")),
            ("package-lock.json", read("package-lock.json")),
        ];
        let installed = cache
            .join("node_modules")
            .join(self.probe)
            .join("package.json")
            .is_file();
        let same = files
            .iter()
            .all(|(name, text)| fs::read_to_string(cache.join(name)).is_ok_and(|t| t == *text));
        if !(installed && same) {
            for (name, text) in &files {
                let path = cache.join(name);
                fs::write(&path, text)
                    .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            }
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&cache)
                .output()
                .expect("running npm");
            assert!(
                out.status.success(),
                "npm ci of {} ({}) into {} failed:\n{}{}",
                self.dir.display(),
                self.probe,
                cache.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cache.join("node_modules")
    }
}
