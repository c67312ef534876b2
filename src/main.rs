//! The `tenantwatch` binary: parse the command line and hand over to [`cli::main`].
//!
//! # Layout
//!
//! - [`cli`]: the arguments, the exit codes and the dispatch to a command.
//! - [`commands`]: one file per subcommand (`run`, `check`, `consent`,
//!   `rotate`, `healthcheck`, `completions` and `man`, and with the `sim`
//!   feature `demo` and `sim`); each turns its arguments into calls to the
//!   daemon library and its outcome into an exit code.
//! - [`signals`]: SIGTERM and SIGINT as the cancellation token every task
//!   watches; SIGHUP as reload requests.

mod cli;
mod commands;
mod signals;

use clap::Parser;

/// jemalloc rather than glibc malloc: with scrapes arriving during a cycle,
/// glibc kept freed memory spread over its arenas (93 MiB resident for a
/// 38 MB live heap at 5,000 tenants); jemalloc returns it within a second.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it first allocates (`_RJEM_MALLOC_CONF`
/// overrides them): one arena per CPU this process may run on, plus one for
/// the low-priority encoder thread, and freed pages back to the system after
/// a second instead of ten.
///
/// The runtime starts one worker per available CPU (Tokio's default, which
/// also honours a cgroup CPU quota, so it is never more than the CPUs of the
/// affinity mask counted here): each worker and the encoder get an arena of
/// their own instead of queueing on a shared arena's lock, as they did
/// behind the fixed two arenas this replaced on machines with more cores.
/// Arenas are created only when a thread first needs one, so the count is
/// an upper bound that costs nothing unused.
///
/// The count is written before `main`, by a constructor that allocates
/// nothing, since jemalloc reads its settings once, at its first allocation.
#[cfg(feature = "jemalloc")]
mod allocator_conf {
    use std::cell::UnsafeCell;

    const LEN: usize = 96;
    const TAIL: &[u8] = b",dirty_decay_ms:1000,muzzy_decay_ms:0\0";

    /// The settings text, NUL-terminated.
    pub struct Conf(UnsafeCell<[u8; LEN]>);
    // SAFETY: written once by the constructor before any thread or
    // allocation exists, only read afterwards.
    unsafe impl Sync for Conf {}

    pub static CONF: Conf = Conf(UnsafeCell::new(initial()));

    /// Two arenas, as before, should the constructor not run.
    const fn initial() -> [u8; LEN] {
        let mut buf = [0u8; LEN];
        let text = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
        let mut i = 0;
        while i < text.len() {
            buf[i] = text[i];
            i += 1;
        }
        buf
    }

    /// A pointer jemalloc reads as `const char *malloc_conf`.
    #[repr(transparent)]
    pub struct ConfPtr(*const u8);
    // SAFETY: points at `CONF`, which is never written after start-up.
    unsafe impl Sync for ConfPtr {}

    #[export_name = "_rjem_malloc_conf"]
    pub static MALLOC_CONF: ConfPtr = ConfPtr(CONF.0.get() as *const u8);

    #[used]
    #[link_section = ".init_array"]
    static WRITE_CONF: extern "C" fn() = write_conf;

    /// CPUs in this process's affinity mask (at least 1), without allocating.
    pub fn affinity_cpus() -> usize {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity writes into ours.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return 1;
        }
        // SAFETY: reads the set just filled in.
        (unsafe { libc::CPU_COUNT(&set) } as usize).max(1)
    }

    /// `narenas:N,…` for `arenas` into `buf`, NUL-terminated; no allocation.
    pub fn format(arenas: usize, buf: &mut [u8; LEN]) {
        let mut digits = [0u8; 20];
        let (mut n, mut i) = (arenas, digits.len());
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let parts: [&[u8]; 3] = [b"narenas:", &digits[i..], TAIL];
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
    }

    extern "C" fn write_conf() {
        // SAFETY: runs before main, single-threaded, before jemalloc has
        // read the settings (nothing has allocated through it yet).
        format(affinity_cpus() + 1, unsafe { &mut *CONF.0.get() });
    }
}

fn main() -> std::process::ExitCode {
    cli::main(cli::Cli::parse())
}

#[cfg(all(test, feature = "jemalloc"))]
mod tests {
    extern "C" {
        fn _rjem_mallctl(
            name: *const libc::c_char,
            oldp: *mut libc::c_void,
            oldlenp: *mut libc::size_t,
            newp: *mut libc::c_void,
            newlen: libc::size_t,
        ) -> libc::c_int;
    }

    fn opt_narenas() -> u32 {
        let mut v: u32 = 0;
        let mut len = std::mem::size_of::<u32>();
        // SAFETY: reads a u32 setting into `v`, whose size is passed.
        let rc = unsafe {
            _rjem_mallctl(
                c"opt.narenas".as_ptr(),
                (&mut v as *mut u32).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, 0);
        v
    }

    #[test]
    fn jemalloc_has_an_arena_for_every_runtime_worker_and_the_encoder() {
        let cpus = super::allocator_conf::affinity_cpus();
        let workers = std::thread::available_parallelism().unwrap().get();
        let arenas = opt_narenas() as usize;
        assert_eq!(arenas, cpus + 1, "one per CPU plus the encoder's");
        assert!(arenas > workers, "{arenas} arenas for {workers} workers");
    }

    #[test]
    fn the_settings_text_is_formatted_without_allocating() {
        let mut buf = [0u8; 96];
        super::allocator_conf::format(129, &mut buf);
        let end = buf.iter().position(|b| *b == 0).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..end]).unwrap(),
            "narenas:129,dirty_decay_ms:1000,muzzy_decay_ms:0"
        );
    }
}
