//! The daemon: builds every part from the settings ([`components`]): per
//! partner (each `[[partners]]` entry, or the one `[partner]`) a broker,
//! store, API client and engine, sharing the metrics, the HTTP client, the
//! publisher and the server. It puts each partner's discovery, collectors
//! and rotation on their cron schedules, serves HTTP, and runs until the
//! cancellation token fires. On a reload request (SIGHUP) it reads the
//! settings again and puts what can change without a restart in force, per
//! partner ([`reload`]); it tells the service manager where it stands and
//! feeds its watchdog only while every engine makes progress ([`notify`]):
//! the scheduler ticks, no background task has died, and no discovery or
//! collector run has gone quiet beyond its bound.

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

/// The scheduler's jobs by key (`partner/job`), with the schedule each was
/// added with, so a reload replaces only the jobs whose schedule changed.
struct Schedules {
    scheduler: JobScheduler,
    jobs: HashMap<String, (uuid::Uuid, String)>,
    metrics: Arc<Metrics>,
}

impl Schedules {
    /// Makes partner `partner`'s job `name` signal `tx` on `schedule`, or never (`None`).
    async fn set(
        &mut self,
        partner: &str,
        name: &'static str,
        schedule: Option<&str>,
        tx: &mpsc::Sender<()>,
    ) -> Result<(), JobSchedulerError> {
        let key = format!("{partner}/{name}");
        if self.jobs.get(&key).map(|(_, s)| s.as_str()) == schedule {
            return Ok(());
        }
        if let Some((id, _)) = self.jobs.remove(&key) {
            self.scheduler.remove(&id).await?;
        }
        if let Some(schedule) = schedule {
            let job = signal_job(schedule, name, tx.clone(), &self.metrics)?;
            let id = self.scheduler.add(job).await?;
            self.jobs.insert(key, (id, schedule.to_string()));
        }
        Ok(())
    }
}

/// One partner's engine, broker and the channels its jobs signal.
struct PartnerRun {
    /// Its settings in force.
    settings: Settings,
    engine: Arc<Engine>,
    broker: Arc<crate::tokens::broker::TokenBroker>,
    discover_tx: mpsc::Sender<()>,
    /// By collector slot.
    collector_tx: Vec<mpsc::Sender<()>>,
    rotation_tx: mpsc::Sender<()>,
    rotation: Arc<Mutex<RotationSettings>>,
}

/// What a reload reaches into.
struct Running {
    /// The settings in force for what every partner shares (server, log).
    shared: Settings,
    /// Every partner, in config order.
    partners: Vec<PartnerRun>,
    schedules: Schedules,
    web: Arc<WebConfigSource>,
    connections: Arc<Connections>,
    scrapes: ScrapeLimit,
}

impl Running {
    /// Schedules every job of every partner as the settings in force say.
    async fn schedule(&mut self) -> Result<(), JobSchedulerError> {
        for p in &self.partners {
            let (s, name) = (&p.settings, p.settings.partner_name.as_str());
            self.schedules
                .set(name, "discover", Some(&s.tenants.schedule), &p.discover_tx)
                .await?;
            let plan = p.engine.settings();
            for (idx, (c, cs)) in plan.collectors.iter().enumerate() {
                if let Some(tx) = p.collector_tx.get(idx) {
                    self.schedules
                        .set(
                            name,
                            c.name(),
                            cs.enabled.then_some(cs.schedule.as_str()),
                            tx,
                        )
                        .await?;
                }
            }
            let rotation = s.rotation.enabled.then_some(s.rotation.schedule.as_str());
            self.schedules
                .set(name, "rotate", rotation, &p.rotation_tx)
                .await?;
        }
        Ok(())
    }

    /// Reads the settings again and puts them in force; an invalid config
    /// is logged with every problem and changes nothing. Partners added,
    /// removed or reordered need a restart; the others reload.
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
        let mut views = new.views();
        let running: Vec<String> = self
            .partners
            .iter()
            .map(|p| p.settings.partner_name.clone())
            .collect();
        if new.partner_names() != running {
            tracing::warn!(
                running = %running.join(", "),
                configured = %new.partner_names().join(", "),
                "[[partners]] changed; restart to apply: the partners running reload, none is added or removed"
            );
        }
        let mut live: Vec<String> = Vec::new();
        let mut restart: Vec<&'static str> = Vec::new();
        let mut rediscover = Vec::new();
        let mut run = Vec::new();
        let mut rotation_on = Vec::new();
        for (i, p) in self.partners.iter_mut().enumerate() {
            let Some(at) = views
                .iter()
                .position(|v| v.partner_name == p.settings.partner_name)
            else {
                continue;
            };
            let (changes, view) = compare(&p.settings, views.swap_remove(at));
            for key in changes.live {
                if !live.contains(&key) {
                    live.push(key);
                }
            }
            for key in changes.restart {
                if !restart.contains(&key) {
                    restart.push(key);
                }
            }
            if !p.settings.rotation.enabled && view.rotation.enabled {
                rotation_on.push(i);
            }
            *lock(&p.rotation) = view.rotation.clone();
            let applied = p.engine.apply(EngineSettings::new(&view)).await;
            if applied.rediscover {
                rediscover.push(i);
            }
            run.push((i, applied.run));
            p.settings = view;
        }
        for key in &restart {
            tracing::warn!(key, "{key} changed; restart to apply");
        }
        // The shared sections come from the new file itself, whichever
        // partners it lists; those needing a restart keep their values.
        let (_, shared) = compare(&self.shared, new);
        let server_changed = Limits::new(&self.shared.server) != Limits::new(&shared.server);
        let level_changed = self.shared.log.level != shared.log.level;
        self.scrapes.set(shared.server.max_requests);
        self.connections.set_limits(Limits::new(&shared.server));
        self.web.replace(shared.server.web.clone());
        if let Err(e) = self.schedule().await {
            tracing::error!(error = %e, "cannot reschedule after the reload; some jobs keep their old schedule");
        }
        // What would have run at start runs now: discovery when the tenants
        // in scope may differ, a collector or rotation just switched on.
        for i in rediscover {
            let _ = self.partners[i].discover_tx.try_send(());
        }
        for (i, idxs) in run {
            for idx in idxs {
                if let Some(tx) = self.partners[i].collector_tx.get(idx) {
                    let _ = tx.try_send(());
                }
            }
        }
        for i in rotation_on {
            let _ = self.partners[i].rotation_tx.try_send(());
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
            if let Err(why) = crate::logging::set_level(&shared.log.level) {
                tracing::warn!("log.level changed but not applied: {why}");
            }
        }
        self.shared = shared;
        let changed = if live.is_empty() {
            "nothing".to_string()
        } else {
            live.join(", ")
        };
        tracing::info!(%changed, "configuration reloaded");
    }
}

/// Whether every engine makes progress: why not, if one does not.
fn health(
    failed: &AtomicBool,
    heartbeat: &Mutex<Instant>,
    partners: &[PartnerRun],
) -> Result<(), String> {
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
    let several = partners.len() > 1;
    for p in partners {
        if let Some(stuck) = p.engine.liveness.stuck() {
            return Err(if several {
                format!("partner {}: {stuck}", p.settings.partner_name)
            } else {
                stuck.to_string()
            });
        }
    }
    Ok(())
}

/// The service manager's one-line status: tenants, readiness, trouble.
fn summary(publisher: &Publisher, health: &Result<(), String>) -> String {
    let all = publisher.snapshots();
    let mut out = if !all.iter().all(|s| s.discovery.done) {
        "discovering tenants".to_string()
    } else {
        let discovered: usize = all.iter().map(|s| s.discovered).sum();
        let up: usize = all
            .iter()
            .map(|s| s.tenants.iter().filter(|t| t.up).count())
            .sum();
        let partners = if all.len() > 1 {
            format!(" of {} partners", all.len())
        } else {
            String::new()
        };
        format!(
            "{discovered} tenants{partners}, {up} up; {}",
            if publisher.ready() {
                "ready"
            } else {
                "first collection in progress"
            }
        )
    };
    let several = all.len() > 1;
    for (name, r) in publisher.refresh() {
        if r.valid == Some(false) {
            if several {
                out.push_str(&format!(
                    "; partner {name}'s refresh token refused: run tenantwatch consent --partner {name}"
                ));
            } else {
                out.push_str("; refresh token refused: run tenantwatch consent");
            }
        }
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
/// `reload`, re-reads its settings at each request. Every partner of
/// `settings` gets its own engine, broker and jobs; they share the metrics,
/// the HTTP client and the server.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
    mut reload: Option<Reload>,
) -> Result<(), DaemonError> {
    let notify = Notifier::from_env();
    let (publisher, http) = Components::shared(&settings)?;
    let metrics = publisher.metrics().clone();
    let views = settings.views();
    let mut built = Vec::with_capacity(views.len());
    for view in views {
        let c = Components::for_partner(&view, publisher.clone(), http.clone())?;
        let engine = Arc::new(Engine::new(
            c.api(&view),
            view.cloud.clone(),
            c.broker.clone(),
            publisher.clone(),
            EngineSettings::new(&view),
            view.partner.tenant_id.clone(),
            view.partner.client_id.clone(),
        ));
        built.push((view, engine, c.broker));
    }

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
    // How many partners have finished their first discovery: the daemon is
    // ready (for the service manager) once all have.
    let (discovered_tx, discovered_rx) = tokio::sync::watch::channel(0usize);
    let mut partners = Vec::with_capacity(built.len());
    for (view, engine, broker) in built {
        let (discover_tx, discover_rx) = mpsc::channel::<()>(1);
        let slots = engine.settings().collectors.len();
        let (collector_tx, collector_rx): (Vec<_>, Vec<_>) =
            (0..slots).map(|_| mpsc::channel::<()>(1)).unzip();
        let (rotation_tx, rotation_rx) = mpsc::channel::<()>(1);
        let rotation = Arc::new(Mutex::new(view.rotation.clone()));
        spawn_partner(
            &tracker,
            &shutdown,
            &failed,
            &engine,
            &broker,
            &metrics,
            (discover_rx, collector_rx, rotation_rx),
            rotation.clone(),
            discovered_tx.clone(),
        );
        partners.push(PartnerRun {
            settings: view,
            engine,
            broker,
            discover_tx,
            collector_tx,
            rotation_tx,
            rotation,
        });
    }
    drop(discovered_tx);
    let mut running = Running {
        shared: settings.clone(),
        partners,
        schedules: Schedules {
            scheduler,
            jobs: HashMap::new(),
            metrics: metrics.clone(),
        },
        web,
        connections,
        scrapes,
    };
    running.schedule().await?;
    running.schedules.scheduler.start().await?;
    for p in &running.partners {
        let s = &p.settings;
        tracing::info!(
            partner = %s.partner_name,
            store = %p.broker.store().describe(),
            discovery = %s.tenants.schedule,
            collectors = p.engine.settings().enabled().count(),
            rotation = %if s.rotation.enabled { s.rotation.schedule.as_str() } else { "off" },
            concurrency = s.collection.concurrency,
            "tenantwatch started"
        );
    }
    let partner_count = running.partners.len();

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
            ok = async { discovered.wait_for(|n| *n >= partner_count).await.is_ok() }, if !ready => {
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
                let h = health(&failed, &heartbeat, &running.partners);
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

/// The receivers of one partner's jobs: discovery, each collector slot, rotation.
type Ticks = (
    mpsc::Receiver<()>,
    Vec<mpsc::Receiver<()>>,
    mpsc::Receiver<()>,
);

/// Starts one partner's loops: discovery (which counts in `discovered` once,
/// after its first run), each collector once that partner's tenants are
/// known, and rotation. Each loop runs only that partner's work, so one
/// partner's slow or failing run never holds up another's.
#[allow(clippy::too_many_arguments)]
fn spawn_partner(
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    failed: &Arc<AtomicBool>,
    engine: &Arc<Engine>,
    broker: &Arc<crate::tokens::broker::TokenBroker>,
    metrics: &Arc<Metrics>,
    (discover_rx, collector_rx, rotation_rx): Ticks,
    rotation: Arc<Mutex<RotationSettings>>,
    discovered: tokio::sync::watch::Sender<usize>,
) {
    // Collectors start once the first discovery has listed the tenants.
    let (listed_tx, listed_rx) = tokio::sync::watch::channel(false);
    {
        let e = engine.clone();
        let handle = tracker.spawn(worker(shutdown.clone(), discover_rx, move || {
            let (e, listed, discovered) = (e.clone(), listed_tx.clone(), discovered.clone());
            async move {
                e.discover().await;
                if !*listed.borrow() {
                    let _ = listed.send(true);
                    discovered.send_modify(|n| *n += 1);
                }
            }
        }));
        watch(tracker, "discovery loop", handle, failed.clone());
    }
    // Every built-in collector has a loop; a disabled one's gets no ticks
    // (and its first run does nothing) until a reload switches it on.
    for (idx, rx) in collector_rx.into_iter().enumerate() {
        let (e, mut listed) = (engine.clone(), listed_rx.clone());
        let stop = shutdown.clone();
        let handle = tracker.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => return,
                r = listed.wait_for(|d| *d) => if r.is_err() { return },
            }
            worker(stop, rx, move || {
                let e = e.clone();
                async move { e.run_collector(idx).await }
            })
            .await
        });
        watch(tracker, "collector loop", handle, failed.clone());
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
        watch(tracker, "rotation loop", handle, failed.clone());
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
