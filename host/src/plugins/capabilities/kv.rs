//! `callboard:plugin/kv`: per-plugin key-value storage, through the
//! backend's [`KvStore`] (a SQLite file single-node, PostgreSQL shared by
//! every replica).
//!
//! Every row is keyed by (plugin id, key), and the glue only ever passes the
//! calling plugin's own id, so one plugin cannot name another's keys. Usage
//! (key bytes + value bytes) is kept per plugin in the same transaction as the
//! write, so the quota holds under concurrent requests. The store's calls are
//! async (SQLite runs on its own bounded blocking pool), so a plugin waiting
//! on storage never holds an async worker.

use std::sync::Arc;

pub use callboard_store::kv::{KvError, KvStore, MAX_KEY_BYTES, Quota};

/// One plugin's access to the store, as its calls see it.
#[derive(Clone)]
pub struct KvAccess {
    pub(crate) store: Arc<dyn KvStore>,
    /// The plugin id: the namespace of every key it touches.
    pub(crate) plugin: Arc<str>,
    /// Whether the plugin requested and was granted storage.
    pub(crate) granted: bool,
    pub(crate) quota: Quota,
}

/// Runs one storage call under the plugins' host-call budget.
pub(in crate::plugins) async fn host_call<R, E: From<KvError>>(
    budgets: &crate::plugins::admission::Budgets,
    name: &'static str,
    call: impl std::future::Future<Output = Result<R, KvError>>,
) -> Result<R, E> {
    match budgets.host_call(name, call).await {
        Ok(result) => result.map_err(E::from),
        Err(e) => Err(E::from(KvError::Store(
            callboard_store::StoreError::Unavailable(e),
        ))),
    }
}

/// What the `kv` glue sees of a call: the plugin's own store access and
/// the host-call budget (projected from the store's data by [`Kv`]).
pub struct KvView<'a> {
    pub(in crate::plugins) access: &'a KvAccess,
    pub(in crate::plugins) budgets: &'a crate::plugins::admission::Budgets,
}

/// The linker's projection onto [`KvView`].
pub struct Kv;

impl wasmtime::component::HasData for Kv {
    type Data<'a> = KvView<'a>;
}

impl KvAccess {
    /// `None` unless granted: the glue turns that into a typed `denied`
    /// error, never a trap.
    pub(in crate::plugins) fn check(&self) -> Option<&Self> {
        if !self.granted {
            crate::telemetry::metrics::plugin_denied(&self.plugin);
        }
        self.granted.then_some(self)
    }
}

/// The WIT glue, identical for every API version that has this interface
/// (each version's bindings are distinct types).
macro_rules! kv_glue {
    ($wit:path) => {
        const _: () = {
            use $crate::plugins::capabilities::kv::{KvError, KvView, MAX_KEY_BYTES, host_call};
            use $wit as wit;

            impl From<KvError> for wit::Error {
                fn from(e: KvError) -> Self {
                    match e {
                        KvError::QuotaExceeded { used, limit } => {
                            wit::Error::QuotaExceeded(wit::Quota {
                                used_bytes: used,
                                limit_bytes: limit,
                            })
                        }
                        KvError::ValueTooLarge(max) => wit::Error::ValueTooLarge(max),
                        KvError::InvalidKey => {
                            wit::Error::InvalidKey(u32::try_from(MAX_KEY_BYTES).unwrap_or(u32::MAX))
                        }
                        KvError::NotAnInteger => wit::Error::NotAnInteger,
                        KvError::Store(e) => {
                            tracing::error!(error = %e, "key-value storage failed");
                            wit::Error::Unavailable("storage failed; see the host log".into())
                        }
                    }
                }
            }

            impl wit::Host for KvView<'_> {
                async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, wit::Error> {
                    let kv = self.access.check().ok_or(wit::Error::Denied)?;
                    host_call(self.budgets, "kv.get", kv.store.get(&kv.plugin, &key)).await
                }

                async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), wit::Error> {
                    let kv = self.access.check().ok_or(wit::Error::Denied)?;
                    host_call(
                        self.budgets,
                        "kv.set",
                        kv.store.set(&kv.plugin, &key, &value, kv.quota),
                    )
                    .await
                }

                async fn delete(&mut self, key: String) -> Result<bool, wit::Error> {
                    let kv = self.access.check().ok_or(wit::Error::Denied)?;
                    host_call(self.budgets, "kv.delete", kv.store.delete(&kv.plugin, &key)).await
                }

                async fn increment(&mut self, key: String, delta: i64) -> Result<i64, wit::Error> {
                    let kv = self.access.check().ok_or(wit::Error::Denied)?;
                    host_call(
                        self.budgets,
                        "kv.increment",
                        kv.store.increment(&kv.plugin, &key, delta, kv.quota),
                    )
                    .await
                }

                async fn list_keys(
                    &mut self,
                    prefix: String,
                    limit: u32,
                ) -> Result<Vec<String>, wit::Error> {
                    let kv = self.access.check().ok_or(wit::Error::Denied)?;
                    host_call(
                        self.budgets,
                        "kv.list_keys",
                        kv.store.list_keys(&kv.plugin, &prefix, limit.min(10_000)),
                    )
                    .await
                }

                async fn usage(&mut self) -> Result<wit::Quota, wit::Error> {
                    let kv = self.access.check().ok_or(wit::Error::Denied)?;
                    let limit = kv.quota.bytes;
                    let used = host_call::<_, wit::Error>(
                        self.budgets,
                        "kv.usage",
                        kv.store.usage(&kv.plugin),
                    )
                    .await?;
                    Ok(wit::Quota {
                        used_bytes: used,
                        limit_bytes: limit,
                    })
                }
            }
        };
    };
}

pub(in crate::plugins) use kv_glue;
