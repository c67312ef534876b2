//! Facts about the machine the daemon runs on.

/// This machine's name: the `rotated-by` tag of stored tokens, and the pod name
/// `tenants.shard = "auto"` takes its index from.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}
