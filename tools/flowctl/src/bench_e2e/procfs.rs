//! CPU time and memory of a process from Linux' /proc, without any dependency: the
//! benchmark samples the five services and the emulators it runs against.

use std::fs;

/// CPU seconds (user + system) of `pid`, or None when it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = after_comm(&stat)?;
    // Fields 14 and 15 of stat(5) (utime, stime); fields[0] here is field 3 (state).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Process group of `pid`.
pub fn process_group(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    after_comm(&stat)?.get(2)?.parse().ok()
}

/// CPU seconds of every process in process group `pgid`: an emulator may be a launcher
/// with the server as its child (npm, a Python entry point), started in its own group.
pub fn group_cpu_seconds(pgid: u32) -> f64 {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group(*pid) == Some(pgid))
        .filter_map(cpu_seconds)
        .sum()
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in bytes.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024))
}

/// The fields after `pid (comm)`: comm may hold spaces and parentheses, so split after
/// the last `)`.
fn after_comm(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a system setting.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        // Burn a little CPU so the figure is not trivially zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_seconds(pid).unwrap() > 0.0);
        let (rss, peak) = memory(pid).unwrap();
        assert!(rss > 0 && peak >= rss);
        let pgid = process_group(pid).unwrap();
        // This process's figure first: it only grows, so the group's, read after, covers it.
        let own = cpu_seconds(pid).unwrap();
        assert!(group_cpu_seconds(pgid) >= own);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn comm_with_spaces_and_parentheses() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 0 0 0 0 0 250 50 0 0";
        let f = after_comm(stat).unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(f[2], "42");
        assert_eq!(f[11], "250");
        assert_eq!(f[12], "50");
    }
}
