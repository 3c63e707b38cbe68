//! A process's memory as the kernel counts it, for tests that bound a member's memory.

/// `RssAnon` of process `pid` in bytes: its resident anonymous memory (heap, stacks), without
/// the LMDB map and the binary, which are file-backed. `None` if the process is gone.
pub fn rss_anon_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: u64 = line
        .trim_start_matches("RssAnon:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
