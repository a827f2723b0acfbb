//! The one shared wasmtime [`Engine`]: pooling allocator, epoch interruption,
//! and the on-disk cache of compiled components.

use std::{path::Path, time::Duration};

use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};

use super::settings::PluginsConfig;

/// How often the engine's epoch advances: the resolution of request deadlines
/// and how often a busy plugin yields its thread back to the server.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine and starts its epoch ticker. Compiled code is cached in
/// `cache_dir`, keyed by a hash of the component bytes and the engine settings,
/// so a restart does not recompile.
pub fn build(plugins: &PluginsConfig, cache_dir: &Path) -> anyhow::Result<(Engine, Cache)> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);

    let instances = plugins.max_concurrent_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // A Rust wasm32-wasip2 component has a handful of core instances
        // (the program, wit-bindgen shims); leave room for other toolchains.
        .max_core_instances_per_component(32)
        .total_core_instances(instances * 8)
        .max_memories_per_component(4)
        .total_memories(instances * 2)
        .max_tables_per_component(8)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(plugins.max_memory_bytes())
        // Reset a returning slot by restoring only the pages it dirtied
        // (PAGEMAP_SCAN, Linux 6.7+; otherwise memset of the low pages) rather
        // than madvise: the next request then takes no page faults on them.
        // Measured: p50 of a trivial call falls from ~45 to ~17 µs (BENCHMARKS.md).
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .decommit_batch_size(16);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    let mut cache = CacheConfig::new();
    cache.with_directory(cache_dir);
    // The clone shares hit/miss counters with the engine's, which is how a
    // load learns whether it came from the cache.
    let cache = Cache::new(cache)?;
    config.cache(Some(cache.clone()));

    let engine = Engine::new(&config)?;
    start_ticker(&engine);
    Ok((engine, cache))
}

fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("callboard-epoch".into())
        .spawn(move || {
            // Ends with the engine, so a test that drops its server leaves no thread behind.
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

/// Niceness of the threads that compile plugins: below the threads that
/// serve requests, so a cold compile takes idle cores only and a busy
/// portal's requests are not starved while a plugin swaps in.
const COMPILE_NICE: i32 = 10;

/// Runs `compile` (a `Component::new`) on the compile pool: as many threads
/// as cores, each at lower priority ([`COMPILE_NICE`]); wasmtime's parallel
/// compilation (rayon) runs on the pool it is called from.
pub fn compiling<T: Send>(compile: impl FnOnce() -> T + Send) -> T {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("plugin-compile-{i}"))
            .start_handler(|_| {
                // Per thread on Linux: `setpriority` with a thread id.
                let tid = rustix::thread::gettid();
                if let Err(e) = rustix::process::setpriority_process(Some(tid), COMPILE_NICE) {
                    tracing::debug!("cannot lower the compile thread's priority: {e}");
                }
            })
            .build()
            .map_err(|e| tracing::warn!("no compile pool, compiling on the caller's: {e}"))
            .ok()
    });
    match pool {
        Some(pool) => pool.install(compile),
        None => compile(),
    }
}
