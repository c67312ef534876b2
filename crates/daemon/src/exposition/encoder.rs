//! One low-priority thread for CPU-heavy work that nobody waits on, such as
//! encoding a collector's families for `/metrics`.
//!
//! At thousands of tenants an encoding takes a good part of a second of CPU.
//! On Tokio's blocking pool it competed on equal terms with the runtime's
//! workers answering scrapes, and on a two-core machine that was the tail of
//! `/metrics` latency. Here it runs at nice 10, so it only gets the CPU the
//! scrapes and collectors leave.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use tenantwatch_common::sync::lock;

type Job = Box<dyn FnOnce() + Send>;

/// How much nicer than the process the thread asks to be.
const NICENESS: libc::c_int = 10;

fn queue() -> &'static Mutex<Option<mpsc::Sender<Job>>> {
    static QUEUE: OnceLock<Mutex<Option<mpsc::Sender<Job>>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("tenantwatch-background".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    // A panicking job loses its own result, not the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        match started {
            Ok(_) => Mutex::new(Some(tx)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the background thread; encoding on the blocking pool");
                Mutex::new(None)
            }
        }
    })
}

/// Lowers this thread's priority; on Linux `setpriority` with id 0 applies to
/// the calling thread only. A sandbox that refuses it (systemd's
/// `SystemCallFilter=~@resources`) leaves it at normal priority.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread with valid arguments.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, current.saturating_add(NICENESS)) };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "background thread keeps normal priority");
    }
}

/// The background work could not be run (a bug: the job panicked).
#[derive(Debug, thiserror::Error)]
#[error("background job did not finish")]
pub struct Lost;

/// Runs `f` on the background thread and waits for its result.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Lost> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let sender = lock(queue()).clone();
    // No thread (it could not start, or is gone): the blocking pool runs it.
    let unsent = match sender {
        Some(s) => s.send(job).err().map(|mpsc::SendError(job)| job),
        None => Some(job),
    };
    if let Some(job) = unsent {
        let _ = tokio::task::spawn_blocking(job).await;
    }
    rx.await.map_err(|_| Lost)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn runs_jobs_off_the_runtime_at_lower_priority() {
        let (name, nice) = super::run(|| {
            let name = std::thread::current().name().map(str::to_string);
            // SAFETY: reads the calling thread's priority.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            (name, nice)
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("tenantwatch-background"));
        // SAFETY: as above, for the test's own thread.
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert!(nice > ours, "background nice {nice}, test thread {ours}");
        assert!(super::run(|| -> u8 { panic!("boom") }).await.is_err());
        assert_eq!(
            super::run(|| 7).await.unwrap(),
            7,
            "a panicked job does not stop later ones"
        );
    }
}
