//! The plain-HTTP accept loop, for the listeners that are plain HTTP in
//! Azure too (IMDS at 169.254.169.254, App Service's local identity
//! endpoint) and for the admin API.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` until `cancel` fires. A failed connection
/// only ends that connection.
pub(crate) fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Some((tcp, peer)) = crate::accept::next_connection(&listener, &cancel).await else {
                break;
            };
            let router = router.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let service = TowerToHyperService::new(router);
                let builder = Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(tcp), service);
                tokio::select! {
                    res = conn => {
                        if let Err(e) = res {
                            tracing::debug!(%peer, error = %e, "sim: connection ended with an error");
                        }
                    }
                    _ = cancel.cancelled() => {}
                }
            });
        }
    })
}
