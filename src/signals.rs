//! Turns SIGTERM and SIGINT into a cancellation token every task watches, and
//! (for the commands that can reload) SIGHUP into reload requests.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Exit code when a second SIGTERM or SIGINT cuts shutdown short.
pub const EXIT_SECOND_SIGNAL: u8 = 130;

/// A token cancelled on the first SIGTERM or SIGINT. A second signal exits at once,
/// for an operator whose first Ctrl-C is stuck behind a slow request.
pub fn on_signals() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let t = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        t.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(EXIT_SECOND_SIGNAL.into());
    });
    Ok(token)
}

/// [`on_signals`], and a reload request per SIGHUP instead of SIGHUP's
/// default action (which ends the process without a word, and which systemd
/// counts as a clean exit, so `Restart=on-failure` left the daemon down).
/// SIGHUPs that arrive while one reload waits to be handled make one more.
pub fn with_reload() -> std::io::Result<(CancellationToken, mpsc::Receiver<()>)> {
    let mut hup = signal(SignalKind::hangup())?;
    let token = on_signals()?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received");
            if tx.try_send(()).is_err() && tx.is_closed() {
                break;
            }
        }
    });
    Ok((token, rx))
}
