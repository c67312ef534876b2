//! The daemon: builds every part from the settings ([`components`]), puts
//! discovery, each collector and rotation on their cron schedules, serves
//! HTTP, and runs until the cancellation token fires.

mod components;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use components::{Components, DaemonError};

use crate::collect::engine::Engine;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::rotation::Rotator;
use crate::store::Source;
use crate::web::server::{self, AppState};

/// How long shutdown waits for tasks before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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

/// Runs the daemon on `listener` until `shutdown` is cancelled.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let Components {
        metrics,
        publisher,
        http,
        broker,
        ..
    } = Components::build(&settings)?;
    let collectors: Vec<_> = crate::collect::collector::builtin(settings.custom_queries.clone())
        .into_iter()
        .filter_map(|c| {
            let cs = settings.collectors.get(c.name())?.clone();
            cs.enabled.then_some((c, cs))
        })
        .collect();
    let engine = Arc::new(Engine::new(
        crate::outbound::request::ApiClient::new(
            http,
            metrics.clone(),
            settings.collection.limits.clone(),
        ),
        settings.cloud.clone(),
        broker.clone(),
        publisher.clone(),
        settings.tenants.clone(),
        settings.collection.clone(),
        collectors,
        settings.partner.tenant_id.clone(),
        settings.partner.client_id.clone(),
    ));

    let failed = Arc::new(AtomicBool::new(false));
    let tracker = TaskTracker::new();
    let server_error = Arc::new(std::sync::Mutex::new(None));
    {
        let state = AppState {
            publisher: publisher.clone(),
            failed: failed.clone(),
            scrapes: (settings.server.max_requests > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(settings.server.max_requests))),
        };
        let (shutdown, failed, server_error) =
            (shutdown.clone(), failed.clone(), server_error.clone());
        let web = settings
            .server
            .web
            .clone()
            .map(|(path, config)| crate::web::serve::WebConfigSource::new(path, config));
        let limits = crate::web::connections::Limits::new(&settings.server);
        tracker.spawn(async move {
            if let Err(e) = server::serve(listener, state, web, limits, shutdown.clone()).await {
                tracing::error!(error = %e, "HTTP server failed; shutting down");
                failed.store(true, Ordering::Relaxed);
                if let Ok(mut slot) = server_error.lock() {
                    *slot = Some(e);
                }
                shutdown.cancel();
            }
        });
    }

    let mut scheduler = JobScheduler::new().await?;
    let (discover_tx, discover_rx) = mpsc::channel::<()>(1);
    scheduler
        .add(signal_job(
            &settings.tenants.schedule,
            "discover",
            discover_tx,
            &metrics,
        )?)
        .await?;
    let mut collector_rx = Vec::new();
    for (c, cs) in &engine.collectors {
        let (tx, rx) = mpsc::channel::<()>(1);
        scheduler
            .add(signal_job(&cs.schedule, c.name(), tx, &metrics)?)
            .await?;
        collector_rx.push(rx);
    }
    let rotation_rx = if settings.rotation.enabled {
        let (tx, rx) = mpsc::channel::<()>(1);
        scheduler
            .add(signal_job(
                &settings.rotation.schedule,
                "rotate",
                tx,
                &metrics,
            )?)
            .await?;
        Some(rx)
    } else {
        None
    };
    scheduler.start().await?;
    tracing::info!(
        store = %broker.store().describe(),
        discovery = %settings.tenants.schedule,
        collectors = engine.collectors.len(),
        rotation = %if settings.rotation.enabled { settings.rotation.schedule.as_str() } else { "off" },
        concurrency = settings.collection.concurrency,
        "tenantwatch started"
    );

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
    if let Some(rx) = rotation_rx {
        let rotator = Arc::new(Rotator {
            broker: broker.clone(),
            metrics: metrics.clone(),
            rotate_after: settings.rotation.rotate_after,
            source: Source::Rotation,
        });
        let stop = shutdown.clone();
        let handle = tracker.spawn(worker(shutdown.clone(), rx, move || {
            let (r, stop) = (rotator.clone(), stop.clone());
            async move { r.scheduled(&stop).await }
        }));
        watch(&tracker, "rotation loop", handle, failed.clone());
    }

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    if let Err(e) = scheduler.shutdown().await {
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
