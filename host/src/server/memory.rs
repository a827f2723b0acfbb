//! The plugin instance budget: `max_concurrent_instances` instances, each
//! allowed its largest memory limit, must fit in the memory the machine (or
//! the container's cgroup) gives the process.

use anyhow::bail;

use crate::config::PluginsConfig;

/// Lowers `max_concurrent_instances` (with a warning) so that every instance
/// at its memory limit fits the budget: `plugins.memory_budget_mib`, or half
/// the memory available to the process. Refuses to start when not even one
/// instance fits.
pub(super) fn fit_instances(plugins: &mut PluginsConfig) -> anyhow::Result<()> {
    let budget = match plugins.memory_budget_mib {
        Some(mib) => mib.saturating_mul(1 << 20),
        None => match available_memory() {
            Some(bytes) => bytes / 2,
            None => {
                tracing::debug!(
                    "cannot tell the machine's memory: the instance budget is not checked"
                );
                return Ok(());
            }
        },
    };
    let per_instance = (plugins.max_memory_bytes() as u64).max(1);
    let fit = budget / per_instance;
    let mib = |b: u64| b >> 20;
    if fit == 0 {
        bail!(
            "one plugin instance may grow to {} MiB (plugins.limits.memory_mib or an override), \
             more than the plugin memory budget of {} MiB (plugins.memory_budget_mib, by default \
             half of this machine's memory): lower the memory limit",
            mib(per_instance),
            mib(budget)
        );
    }
    let wanted = u64::from(plugins.max_concurrent_instances);
    if wanted > fit {
        let fit = u32::try_from(fit).unwrap_or(u32::MAX);
        tracing::warn!(
            "plugins.max_concurrent_instances = {wanted} instances of up to {} MiB need {} MiB, \
             more than the plugin memory budget of {} MiB (plugins.memory_budget_mib, by default \
             half of this machine's memory): serving with {fit} instances",
            mib(per_instance),
            mib(per_instance.saturating_mul(wanted)),
            mib(budget),
        );
        plugins.max_concurrent_instances = fit;
    }
    Ok(())
}

/// The memory this process may use: the machine's total, or the cgroup's
/// limit when that is lower. `None` where neither can be read.
fn available_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib.saturating_mul(1024));
    // cgroup v2, then v1 (which reports a huge number when unlimited).
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|f| std::fs::read_to_string(f).ok())
    .and_then(|v| v.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}
