//! The `process_*` families every Prometheus client library exports, named
//! as client_golang names them, read from `/proc/self` at each scrape:
//! CPU time, resident and virtual memory, open and allowed file
//! descriptors, threads and the start time.
//!
//! Read here rather than through the `prometheus` crate's `process`
//! feature: that collector counts CPU time in whole seconds (an
//! `IntCounter`), which hides a daemon using a tenth of a core, and brings
//! `procfs` and its dependencies for four small files. The start time is
//! derived from the boot-time clock rather than `/proc/stat`, which systemd's
//! `ProcSubset=pid` hides.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Opts};

/// One collector for the `process_*` families.
pub struct ProcessCollector {
    cpu: Counter,
    open_fds: Gauge,
    max_fds: Gauge,
    virtual_memory: Gauge,
    virtual_memory_max: Gauge,
    resident_memory: Gauge,
    start_time: Gauge,
    threads: Gauge,
    descs: Vec<Desc>,
}

/// What `/proc/self/stat` says, in the units the metrics use.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: f64,
    /// Since boot, in seconds.
    started_after_boot: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
}

impl ProcessCollector {
    /// The families, not read yet.
    pub fn new() -> Result<Self, prometheus::Error> {
        let gauge = |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help));
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))?;
        let open_fds = gauge("process_open_fds", "Number of open file descriptors.")?;
        let max_fds = gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
        )?;
        let virtual_memory = gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
        )?;
        let virtual_memory_max = gauge(
            "process_virtual_memory_max_bytes",
            "Maximum amount of virtual memory available in bytes.",
        )?;
        let resident_memory = gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        )?;
        let start_time = gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        )?;
        let threads = gauge("process_threads", "Number of OS threads in the process.")?;
        let mut descs = Vec::new();
        descs.extend(cpu.desc().into_iter().cloned());
        for g in [
            &open_fds,
            &max_fds,
            &virtual_memory,
            &virtual_memory_max,
            &resident_memory,
            &start_time,
            &threads,
        ] {
            descs.extend(g.desc().into_iter().cloned());
        }
        Ok(Self {
            cpu,
            open_fds,
            max_fds,
            virtual_memory,
            virtual_memory_max,
            resident_memory,
            start_time,
            threads,
            descs,
        })
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = Vec::with_capacity(8);
        if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_stat(&s, clock_ticks(), page_size()))
        {
            // A counter only goes up: add what was used since the last scrape.
            let delta = stat.cpu_seconds - self.cpu.get();
            if delta > 0.0 {
                self.cpu.inc_by(delta);
            }
            out.extend(self.cpu.collect());
            self.threads.set(stat.threads);
            self.virtual_memory.set(stat.virtual_bytes);
            self.resident_memory.set(stat.resident_bytes);
            if let Some(boot) = boot_time() {
                self.start_time.set(boot + stat.started_after_boot);
                out.extend(self.start_time.collect());
            }
            out.extend(self.threads.collect());
            out.extend(self.virtual_memory.collect());
            out.extend(self.resident_memory.collect());
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle being read is one of them.
            self.open_fds.set(dir.count().saturating_sub(1) as f64);
            out.extend(self.open_fds.collect());
        }
        if let Some(n) = crate::support::host::open_file_limit() {
            self.max_fds.set(n as f64);
            out.extend(self.max_fds.collect());
        }
        self.virtual_memory_max.set(address_space_limit());
        out.extend(self.virtual_memory_max.collect());
        out
    }
}

/// Fields of `/proc/self/stat` (proc(5)), after the command name in
/// parentheses, which may itself hold spaces and parentheses.
fn parse_stat(text: &str, ticks: f64, page: f64) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // f[0] is field 3 (state), so field n is f[n - 3].
    let num = |n: usize| f.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (num(14)? + num(15)?) / ticks,
        threads: num(20)?,
        started_after_boot: num(22)? / ticks,
        virtual_bytes: num(23)?,
        resident_bytes: num(24)? * page,
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> f64 {
    // SAFETY: sysconf reads a constant.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as f64
    } else {
        4096.0
    }
}

/// When the machine booted, in unix seconds: the wall clock less the time
/// since boot (the clock `/proc/self/stat`'s start time counts on).
fn boot_time() -> Option<f64> {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes into the struct it is given.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
    };
    Some(read(libc::CLOCK_REALTIME)? - read(libc::CLOCK_BOOTTIME)?)
}

/// `RLIMIT_AS`'s soft limit; unlimited is reported as the largest value,
/// as client_golang does.
fn address_space_limit() -> f64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) };
    if rc != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX as f64
    } else {
        r.rlim_cur as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_command_name_with_spaces_and_parens() {
        // proc(5)'s layout; the name is "tw (x) y".
        let line = "4242 (tw (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line, 100.0, 4096.0).unwrap();
        assert_eq!(
            s,
            Stat {
                cpu_seconds: 3.0,
                threads: 7.0,
                started_after_boot: 123.45,
                virtual_bytes: 104857600.0,
                resident_bytes: 2560.0 * 4096.0,
            }
        );
        assert_eq!(parse_stat("4242 (tw) S 1", 100.0, 4096.0), None);
    }

    #[test]
    fn the_families_client_golang_exports_with_this_process_values() {
        let r = prometheus::Registry::new();
        r.register(Box::new(ProcessCollector::new().unwrap()))
            .unwrap();
        let burn = std::time::Instant::now();
        while burn.elapsed() < std::time::Duration::from_millis(30) {
            std::hint::black_box(0u64);
        }
        let families = r.gather();
        let value = |name: &str| {
            let f = families
                .iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            let m = &f.get_metric()[0];
            if f.get_field_type() == prometheus::proto::MetricType::COUNTER {
                m.get_counter().get_value()
            } else {
                m.get_gauge().get_value()
            }
        };
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_cpu_seconds_total") > 0.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_virtual_memory_max_bytes") > 0.0);
        let now = tenantwatch_common::time::unix_now();
        let started = value("process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
    }
}
