//! The plain-HTTP accept loop, for the listeners that are plain HTTP in
//! Azure too (IMDS at 169.254.169.254, App Service's local identity
//! endpoint) and for the admin API, and the per-connection serving that the
//! TLS listeners share.

use std::net::SocketAddr;

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
            let Some((tcp, peer)) =
                tenantwatch_common::accept::next_connection(&listener, &cancel).await
            else {
                break;
            };
            tokio::spawn(serve_connection(tcp, router.clone(), peer, cancel.clone()));
        }
    })
}

/// Serves one accepted connection (plain or after a TLS handshake) until it
/// ends or `cancel` fires; its errors only end that connection.
pub(crate) async fn serve_connection<I>(
    io: I,
    router: Router,
    peer: SocketAddr,
    cancel: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::select! {
        res = conn => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "sim: connection ended with an error");
            }
        }
        _ = cancel.cancelled() => {}
    }
}
