//! The daemon: builds every part from the settings ([`components`]), puts
//! discovery, each collector and rotation on their cron schedules, serves
//! HTTP, and runs until the cancellation token fires. On a reload request
//! (SIGHUP) it reads the settings again and puts what can change without a
//! restart in force ([`reload`]); it tells the service manager where it
//! stands and feeds its watchdog only while the engine makes progress
//! ([`notify`]): the scheduler ticks, no background task has died, and no
//! discovery or collector run has gone quiet beyond its bound.

mod components;
mod notify;
mod reload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use components::{Components, DaemonError};
pub use notify::Notifier;
pub use reload::{compare, Changes, Reload, ReloadError};

use crate::collect::engine::{Engine, EngineSettings};
use crate::config::{RotationSettings, Settings};
use crate::exposition::Publisher;
use crate::metrics::Metrics;
use crate::rotation::Rotator;
use crate::store::Source;
use crate::web::connections::{Connections, Limits};
use crate::web::serve::WebConfigSource;
use crate::web::server::{self, AppState, ScrapeLimit};
use tenantwatch_common::sync::lock;

/// How long shutdown waits for tasks before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The scheduler's own heartbeat, which the watchdog checks.
const HEARTBEAT_SCHEDULE: &str = "* * * * * *";
/// How long the scheduler may go without its heartbeat before the engine
/// counts as stuck: no cron job would fire either.
const HEARTBEAT_BOUND: Duration = Duration::from_secs(30);
/// How often progress is checked and the status line renewed when no
/// watchdog asks for more often.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// A cron job that only signals `tx`; the worker loop does the work. A full
/// channel means the previous run is still going, so the tick is skipped and counted.
fn signal_job(
    schedule: &str,
    job: &'static str,
    tx: mpsc::Sender<()>,
    metrics: &Metrics,
) -> Result<Job, JobSchedulerError> {
    let skipped = metrics.skipped_runs.clone();
    Job::new_async(schedule, move |_, _| {
        let (tx, skipped) = (tx.clone(), skipped.clone());
        Box::pin(async move {
            if tx.try_send(()).is_err() {
                skipped.with_label_values(&[job]).inc();
                tracing::warn!(
                    job,
                    "previous run still going at the next scheduled time; skipping this run"
                );
            }
        })
    })
}

/// The scheduler's jobs by name, with the schedule each was added with, so
/// a reload replaces only the jobs whose schedule changed.
struct Schedules {
    scheduler: JobScheduler,
    jobs: HashMap<&'static str, (uuid::Uuid, String)>,
    metrics: Arc<Metrics>,
}

impl Schedules {
    /// Makes job `name` signal `tx` on `schedule`, or never (`None`).
    async fn set(
        &mut self,
        name: &'static str,
        schedule: Option<&str>,
        tx: &mpsc::Sender<()>,
    ) -> Result<(), JobSchedulerError> {
        if self.jobs.get(name).map(|(_, s)| s.as_str()) == schedule {
            return Ok(());
        }
        if let Some((id, _)) = self.jobs.remove(name) {
            self.scheduler.remove(&id).await?;
        }
        if let Some(schedule) = schedule {
            let job = signal_job(schedule, name, tx.clone(), &self.metrics)?;
            let id = self.scheduler.add(job).await?;
            self.jobs.insert(name, (id, schedule.to_string()));
        }
        Ok(())
    }
}

/// What a reload reaches into.
struct Running {
    /// The settings in force.
    settings: Settings,
    engine: Arc<Engine>,
    schedules: Schedules,
    discover_tx: mpsc::Sender<()>,
    /// By collector slot.
    collector_tx: Vec<mpsc::Sender<()>>,
    rotation_tx: mpsc::Sender<()>,
    rotation: Arc<Mutex<RotationSettings>>,
    web: Arc<WebConfigSource>,
    connections: Arc<Connections>,
    scrapes: ScrapeLimit,
}

impl Running {
    /// Schedules every job as the settings in force say.
    async fn schedule(&mut self) -> Result<(), JobSchedulerError> {
        let s = &self.settings;
        self.schedules
            .set("discover", Some(&s.tenants.schedule), &self.discover_tx)
            .await?;
        let plan = self.engine.settings();
        for (idx, (c, cs)) in plan.collectors.iter().enumerate() {
            if let Some(tx) = self.collector_tx.get(idx) {
                self.schedules
                    .set(c.name(), cs.enabled.then_some(cs.schedule.as_str()), tx)
                    .await?;
            }
        }
        let rotation = s.rotation.enabled.then_some(s.rotation.schedule.as_str());
        self.schedules
            .set("rotate", rotation, &self.rotation_tx)
            .await
    }

    /// Reads the settings again and puts them in force; an invalid config
    /// is logged with every problem and changes nothing.
    async fn reload(&mut self, load: &(dyn Fn() -> Result<Settings, ReloadError> + Send + Sync)) {
        tracing::info!("reloading configuration");
        let new = match load() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(
                    "configuration not reloaded: {}; the previous configuration stays in force",
                    e.one_line()
                );
                return;
            }
        };
        let (changes, new) = compare(&self.settings, new);
        for key in &changes.restart {
            tracing::warn!(key, "{key} changed; restart to apply");
        }
        let rotation_enabled = !self.settings.rotation.enabled && new.rotation.enabled;
        let server_changed = Limits::new(&self.settings.server) != Limits::new(&new.server);
        let level_changed = self.settings.log.level != new.log.level;
        *lock(&self.rotation) = new.rotation.clone();
        self.scrapes.set(new.server.max_requests);
        self.connections.set_limits(Limits::new(&new.server));
        self.web.replace(new.server.web.clone());
        let applied = self.engine.apply(EngineSettings::new(&new)).await;
        self.settings = new;
        if let Err(e) = self.schedule().await {
            tracing::error!(error = %e, "cannot reschedule after the reload; some jobs keep their old schedule");
        }
        // What would have run at start runs now: discovery when the tenants
        // in scope may differ, a collector or rotation just switched on.
        if applied.rediscover {
            let _ = self.discover_tx.try_send(());
        }
        for idx in &applied.run {
            if let Some(tx) = self.collector_tx.get(*idx) {
                let _ = tx.try_send(());
            }
        }
        if rotation_enabled {
            let _ = self.rotation_tx.try_send(());
        }
        if server_changed {
            let l = self.connections.limits();
            tracing::info!(
                header_read_timeout = ?l.header_read_timeout,
                idle_timeout = ?l.idle_timeout,
                "HTTP connections capped at {}",
                l.max_connections
            );
        }
        if level_changed {
            if let Err(why) = crate::logging::set_level(&self.settings.log.level) {
                tracing::warn!("log.level changed but not applied: {why}");
            }
        }
        let changed = if changes.live.is_empty() {
            "nothing".to_string()
        } else {
            changes.live.join(", ")
        };
        tracing::info!(%changed, "configuration reloaded");
    }
}

/// Whether the engine makes progress: why not, if it does not.
fn health(failed: &AtomicBool, heartbeat: &Mutex<Instant>, engine: &Engine) -> Result<(), String> {
    if failed.load(Ordering::Relaxed) {
        return Err("a background task failed".into());
    }
    let quiet = lock(heartbeat).elapsed();
    if quiet > HEARTBEAT_BOUND {
        return Err(format!(
            "the scheduler has not ticked for {}s",
            quiet.as_secs()
        ));
    }
    match engine.liveness.stuck() {
        Some(stuck) => Err(stuck.to_string()),
        None => Ok(()),
    }
}

/// The service manager's one-line status: tenants, readiness, trouble.
fn summary(publisher: &Publisher, health: &Result<(), String>) -> String {
    let s = publisher.snapshot();
    let mut out = if !s.discovery.done {
        "discovering tenants".to_string()
    } else {
        let up = s.tenants.iter().filter(|t| t.up).count();
        format!(
            "{} tenants, {up} up; {}",
            s.discovered,
            if s.ready {
                "ready"
            } else {
                "first collection in progress"
            }
        )
    };
    if publisher.refresh().valid == Some(false) {
        out.push_str("; refresh token refused: run tenantwatch consent");
    }
    if let Err(why) = health {
        out.push_str("; stuck: ");
        out.push_str(why);
    }
    out
}

/// The next reload request; never, once there can be none.
async fn next_request(reload: &mut Option<Reload>) -> bool {
    match reload {
        Some(r) => r.requests.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// Runs the daemon on `listener` until `shutdown` is cancelled; with
/// `reload`, re-reads its settings at each request.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
    mut reload: Option<Reload>,
) -> Result<(), DaemonError> {
    let notify = Notifier::from_env();
    let Components {
        metrics,
        publisher,
        http,
        broker,
        ..
    } = Components::build(&settings)?;
    let engine = Arc::new(Engine::new(
        crate::outbound::request::ApiClient::new(
            http,
            metrics.clone(),
            settings.collection.limits.clone(),
        ),
        settings.cloud.clone(),
        broker.clone(),
        publisher.clone(),
        EngineSettings::new(&settings),
        settings.partner.tenant_id.clone(),
        settings.partner.client_id.clone(),
    ));

    let failed = Arc::new(AtomicBool::new(false));
    let tracker = TaskTracker::new();
    let server_error = Arc::new(std::sync::Mutex::new(None));
    let web = WebConfigSource::new(settings.server.web.clone());
    let connections = Connections::new(Limits::new(&settings.server), &metrics);
    let scrapes = ScrapeLimit::new(settings.server.max_requests);
    {
        let state = AppState {
            publisher: publisher.clone(),
            failed: failed.clone(),
            scrapes: scrapes.clone(),
        };
        let (shutdown, failed, server_error) =
            (shutdown.clone(), failed.clone(), server_error.clone());
        let (web, connections) = (web.clone(), connections.clone());
        tracker.spawn(async move {
            if let Err(e) = server::serve(listener, state, web, connections, shutdown.clone()).await
            {
                tracing::error!(error = %e, "HTTP server failed; shutting down");
                failed.store(true, Ordering::Relaxed);
                if let Ok(mut slot) = server_error.lock() {
                    *slot = Some(e);
                }
                shutdown.cancel();
            }
        });
    }

    let scheduler = JobScheduler::new().await?;
    let heartbeat = Arc::new(Mutex::new(Instant::now()));
    {
        let beat = heartbeat.clone();
        scheduler
            .add(Job::new_async(HEARTBEAT_SCHEDULE, move |_, _| {
                *lock(&beat) = Instant::now();
                Box::pin(async {})
            })?)
            .await?;
    }
    let (discover_tx, discover_rx) = mpsc::channel::<()>(1);
    let slots = engine.settings().collectors.len();
    let (collector_tx, collector_rx): (Vec<_>, Vec<_>) =
        (0..slots).map(|_| mpsc::channel::<()>(1)).unzip();
    let (rotation_tx, rotation_rx) = mpsc::channel::<()>(1);
    let rotation = Arc::new(Mutex::new(settings.rotation.clone()));
    let mut running = Running {
        settings,
        engine: engine.clone(),
        schedules: Schedules {
            scheduler,
            jobs: HashMap::new(),
            metrics: metrics.clone(),
        },
        discover_tx,
        collector_tx,
        rotation_tx,
        rotation: rotation.clone(),
        web,
        connections,
        scrapes,
    };
    running.schedule().await?;
    running.schedules.scheduler.start().await?;
    {
        let s = &running.settings;
        tracing::info!(
            partner = %s.partner_name,
            store = %broker.store().describe(),
            discovery = %s.tenants.schedule,
            collectors = engine.settings().enabled().count(),
            rotation = %if s.rotation.enabled { s.rotation.schedule.as_str() } else { "off" },
            concurrency = s.collection.concurrency,
            "tenantwatch started"
        );
    }

    // Collectors start once the first discovery has listed the tenants.
    let (discovered_tx, discovered_rx) = tokio::sync::watch::channel(false);
    {
        let e = engine.clone();
        let handle = tracker.spawn(worker(shutdown.clone(), discover_rx, move || {
            let (e, tx) = (e.clone(), discovered_tx.clone());
            async move {
                e.discover().await;
                let _ = tx.send(true);
            }
        }));
        watch(&tracker, "discovery loop", handle, failed.clone());
    }
    // Every built-in collector has a loop; a disabled one's gets no ticks
    // (and its first run does nothing) until a reload switches it on.
    for (idx, rx) in collector_rx.into_iter().enumerate() {
        let (e, mut discovered) = (engine.clone(), discovered_rx.clone());
        let stop = shutdown.clone();
        let handle = tracker.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => return,
                r = discovered.wait_for(|d| *d) => if r.is_err() { return },
            }
            worker(stop, rx, move || {
                let e = e.clone();
                async move { e.run_collector(idx).await }
            })
            .await
        });
        watch(&tracker, "collector loop", handle, failed.clone());
    }
    {
        let (broker, metrics, stop) = (broker.clone(), metrics.clone(), shutdown.clone());
        let handle = tracker.spawn(worker(shutdown.clone(), rotation_rx, move || {
            let settings = lock(&rotation).clone();
            let rotator = Rotator {
                broker: broker.clone(),
                metrics: metrics.clone(),
                rotate_after: settings.rotate_after,
                source: Source::Rotation,
            };
            let stop = stop.clone();
            async move {
                if settings.enabled {
                    rotator.scheduled(&stop).await
                }
            }
        }));
        watch(&tracker, "rotation loop", handle, failed.clone());
    }

    // The control loop: readiness, reloads, progress checks.
    let check_every = notify
        .watchdog()
        .map(|w| (w / 2).max(Duration::from_millis(100)))
        .unwrap_or(CHECK_EVERY);
    let mut ticker = tokio::time::interval(check_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut ready, mut last_status, mut stuck) = (false, String::new(), None::<String>);
    let mut discovered = discovered_rx;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ok = async { discovered.wait_for(|d| *d).await.is_ok() }, if !ready => {
                if !ok {
                    break;
                }
                ready = true;
                last_status = summary(&publisher, &Ok(()));
                notify.ready(&last_status);
                tracing::debug!(status = %last_status, "ready: first discovery finished");
            }
            more = next_request(&mut reload), if ready => {
                match (more, &reload) {
                    (true, Some(r)) => {
                        notify.reloading();
                        running.reload(&*r.load).await;
                        last_status = summary(&publisher, &Ok(()));
                        notify.ready(&last_status);
                    }
                    _ => reload = None,
                }
            }
            _ = ticker.tick() => {
                let h = health(&failed, &heartbeat, &engine);
                match (&h, &stuck) {
                    (Err(why), None) => {
                        if notify.watchdog().is_some() {
                            tracing::error!("engine not making progress: {why}; the service manager's watchdog is no longer fed");
                        } else {
                            tracing::error!("engine not making progress: {why}");
                        }
                        stuck = Some(why.clone());
                    }
                    (Ok(()), Some(_)) => {
                        tracing::info!("engine making progress again");
                        stuck = None;
                    }
                    _ => {}
                }
                if h.is_ok() {
                    notify.watchdog_alive();
                }
                if ready {
                    let status = summary(&publisher, &h);
                    if status != last_status {
                        notify.status(&status);
                        last_status = status;
                    }
                }
            }
        }
    }
    notify.stopping();
    tracing::info!("shutting down");
    if let Err(e) = running.schedules.scheduler.shutdown().await {
        tracing::warn!(error = %e, "scheduler did not stop cleanly");
    }
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("tasks still running after {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    let server_error = server_error.lock().ok().and_then(|mut s| s.take());
    match server_error {
        Some(e) => Err(DaemonError::Server(e)),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Runs `work` once at start, then on every tick, until shutdown; shutdown also
/// interrupts a run in progress.
async fn worker<F, Fut>(shutdown: CancellationToken, mut ticks: mpsc::Receiver<()>, work: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                tick = ticks.recv() => if tick.is_none() { break },
            }
        }
        first = false;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = work() => {}
        }
    }
}

/// Watches a task: a panic is logged and turns `/readyz` red instead of vanishing.
fn watch(
    tracker: &TaskTracker,
    name: &'static str,
    handle: tokio::task::JoinHandle<()>,
    failed: Arc<AtomicBool>,
) {
    tracker.spawn(async move {
        if let Err(e) = handle.await {
            if e.is_panic() {
                tracing::error!(task = name, error = %e, "background task panicked; /readyz now fails");
                failed.store(true, Ordering::Relaxed);
            }
        }
    });
}
