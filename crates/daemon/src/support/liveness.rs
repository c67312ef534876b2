//! Whether long-running jobs are making progress, for the service manager's
//! watchdog: each job (discovery, a collector) is a [`Job`] that marks when
//! a run starts and ends and reports progress while it runs;
//! [`Liveness::stuck`] names a job whose run has shown no progress for
//! longer than its bound.
//!
//! Work running inside [`Job::run`] reports progress with [`progress`] from
//! wherever it is (the outbound request path calls it when a request ends),
//! through a task-local, so the job need not be passed down every call.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tenantwatch_common::sync::lock;

tokio::task_local! {
    static CURRENT: Arc<Job>;
}

/// Reports progress for the job the calling task runs under, if any.
pub fn progress() {
    let _ = CURRENT.try_with(|job| job.progress());
}

/// Every registered job.
#[derive(Default)]
pub struct Liveness {
    jobs: Mutex<Vec<Arc<Job>>>,
}

/// A job whose run shows no progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// The job's name (`discovery`, `collector licenses`).
    pub job: String,
    /// Time since its last progress.
    pub quiet: Duration,
    /// How long it may go without.
    pub bound: Duration,
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} has shown no progress for {}s (bound {}s)",
            self.job,
            self.quiet.as_secs(),
            self.bound.as_secs()
        )
    }
}

impl Liveness {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The job called `name`, registered on first use; `bound` replaces its
    /// bound (a reload may change the timeouts it derives from).
    pub fn job(&self, name: &str, bound: Duration) -> Arc<Job> {
        let mut jobs = lock(&self.jobs);
        if let Some(j) = jobs.iter().find(|j| j.name == name) {
            lock(&j.state).bound = bound;
            return j.clone();
        }
        let j = Arc::new(Job {
            name: name.to_string(),
            state: Mutex::new(JobState {
                bound,
                running: None,
                last_progress: Instant::now(),
            }),
        });
        jobs.push(j.clone());
        j
    }

    /// The first job whose run in progress has been quiet for longer than its bound.
    pub fn stuck(&self) -> Option<Stuck> {
        self.stuck_at(Instant::now())
    }

    fn stuck_at(&self, now: Instant) -> Option<Stuck> {
        let jobs = lock(&self.jobs).clone();
        jobs.iter().find_map(|j| {
            let s = lock(&j.state);
            s.running?;
            let quiet = now.saturating_duration_since(s.last_progress);
            (quiet > s.bound).then(|| Stuck {
                job: j.name.clone(),
                quiet,
                bound: s.bound,
            })
        })
    }
}

/// One job's runs.
pub struct Job {
    name: String,
    state: Mutex<JobState>,
}

struct JobState {
    bound: Duration,
    /// When the run in progress started; `None` between runs.
    running: Option<Instant>,
    last_progress: Instant,
}

impl Job {
    /// Marks progress of the run in progress.
    pub fn progress(&self) {
        lock(&self.state).last_progress = Instant::now();
    }

    /// Runs `work` as one run of this job: started now, ended when it
    /// finishes or is dropped, and [`progress`] inside it counts for this job.
    pub async fn run<F: Future>(self: &Arc<Self>, work: F) -> F::Output {
        struct Running<'a>(&'a Job);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                lock(&self.0.state).running = None;
            }
        }
        {
            let mut s = lock(&self.state);
            let now = Instant::now();
            s.running = Some(now);
            s.last_progress = now;
        }
        let _running = Running(self);
        CURRENT.scope(self.clone(), work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_quiet_run_is_stuck_a_progressing_or_idle_one_is_not() {
        let l = Liveness::new();
        let job = l.job("collector x", Duration::from_secs(10));
        assert_eq!(l.stuck(), None, "idle");
        let later = Instant::now() + Duration::from_secs(11);
        assert_eq!(l.stuck_at(later), None, "idle jobs are never stuck");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let j = job.clone();
        let run = tokio::spawn(async move {
            j.run(async {
                progress();
                let _ = rx.await;
            })
            .await
        });
        while lock(&job.state).running.is_none() {
            tokio::task::yield_now().await;
        }
        assert_eq!(l.stuck(), None, "just started");
        let stuck = l
            .stuck_at(Instant::now() + Duration::from_secs(11))
            .unwrap();
        assert_eq!(stuck.job, "collector x");
        assert!(stuck.to_string().contains("no progress for 1"), "{stuck}");
        // A reload lengthens the bound.
        l.job("collector x", Duration::from_secs(60));
        assert_eq!(l.stuck_at(Instant::now() + Duration::from_secs(11)), None);
        tx.send(()).unwrap();
        run.await.unwrap();
        assert_eq!(
            l.stuck_at(Instant::now() + Duration::from_secs(120)),
            None,
            "finished"
        );
    }

    #[tokio::test]
    async fn progress_outside_a_job_is_ignored_and_a_dropped_run_ends() {
        progress();
        let l = Liveness::new();
        let job = l.job("discovery", Duration::from_secs(1));
        let fut = job.run(std::future::pending::<()>());
        let _ = tokio::time::timeout(Duration::from_millis(10), fut).await;
        assert_eq!(l.stuck_at(Instant::now() + Duration::from_secs(5)), None);
    }
}
