//! The HTTP server's open connections: how many may be open at once
//! (`server.max_connections`, lowered to half the open-file limit), which one
//! makes room when a new one arrives at the cap, and when each is due to be
//! closed — `server.header_read_timeout` while it owes request headers,
//! `server.idle_timeout` between keep-alive requests, never while a request
//! is in flight. [`Tracked`] (the socket), [`TrackRequests`] (the service)
//! and the response body guard keep each connection's state in step with
//! what it does; [`watch`] enforces its deadline. A configuration reload may
//! replace the limits: the cap applies at once, the timeouts to connections
//! accepted after it.
//!
//! hyper has `http1::Builder::header_read_timeout` (with a `Timer` such as
//! `hyper_util::rt::TokioTimer`), but its clock starts whenever hyper begins
//! waiting for a request head — for a keep-alive connection, right after the
//! previous response (`proto/h1/conn.rs`: going idle re-arms it for the next
//! read). It would close an idle Prometheus connection after the
//! 10 s header timeout, well inside a 15–60 s scrape interval, so connection
//! reuse would end; and it cannot say which connection to evict. So the
//! header timeout here starts at accept (TLS handshake included) and, on a
//! kept-alive connection, at the first byte of the next request, as Go's
//! `ReadHeaderTimeout` and `IdleTimeout` do; hyper's own is switched off.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use prometheus::{IntCounterVec, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use tenantwatch_common::sync::lock;

use crate::config::ServerSettings;
use crate::metrics::Metrics;

/// HTTP connections may use at most 1/FD_SHARE of the open-file soft limit:
/// the rest is for connections to Microsoft, the token store and log files.
const FD_SHARE: u64 = 2;
/// How often a server at its connection cap says so in the log.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The connection limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From accept (or the first byte of a kept-alive request) to complete headers.
    pub header_read_timeout: Duration,
    /// A kept-alive connection waiting for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once: `server.max_connections`, or less to fit the open-file limit.
    pub max_connections: usize,
    /// `server.max_connections` as configured.
    pub configured: usize,
    /// The open-file soft limit seen at start (`None`: unlimited or unreadable).
    pub open_file_limit: Option<u64>,
}

impl Limits {
    /// The settings' limits, with the cap lowered to fit this process's open-file limit.
    pub fn new(s: &ServerSettings) -> Self {
        Self::with_open_file_limit(s, crate::support::host::open_file_limit())
    }

    fn with_open_file_limit(s: &ServerSettings, nofile: Option<u64>) -> Self {
        let fit = nofile.map_or(usize::MAX, |n| {
            usize::try_from(n / FD_SHARE).unwrap_or(usize::MAX).max(1)
        });
        Self {
            header_read_timeout: s.header_read_timeout,
            idle_timeout: s.idle_timeout,
            max_connections: s.max_connections.min(fit),
            configured: s.max_connections,
            open_file_limit: nofile,
        }
    }
}

/// What a connection with no request in flight is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Request headers: since accept, or since the first byte of the next request.
    Headers,
    /// The next keep-alive request: since the last response was sent.
    Idle,
}

/// Why a connection was closed by the server (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Request headers did not arrive within `server.header_read_timeout`.
    HeaderTimeout,
    /// No request within `server.idle_timeout`.
    IdleTimeout,
    /// Closed to make room for a new connection at the cap.
    Evicted,
    /// A new connection refused at once: every open one had a request in flight.
    OverCapacity,
}

impl Closed {
    fn label(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Evicted => "evicted",
            Closed::OverCapacity => "over_capacity",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct State {
    wait: Wait,
    /// When the current wait began.
    since: Instant,
    /// Requests whose response body is not finished (HTTP/2 may have several).
    in_flight: usize,
    /// The last write found the socket full: response bytes are still queued
    /// for a slow reader, so the response is not sent yet.
    write_blocked: bool,
    /// Chosen to make room; no request may start on it any more.
    evicted: bool,
    /// HTTP/2 frames (PING, SETTINGS) arrive between requests, so a byte
    /// does not mean a request has begun.
    h2: bool,
}

impl State {
    fn busy(&self) -> bool {
        self.in_flight > 0 || self.write_blocked
    }

    fn deadline(&self, l: &Limits) -> Option<(Instant, Closed)> {
        if self.busy() {
            return None;
        }
        Some(match self.wait {
            Wait::Headers => (self.since + l.header_read_timeout, Closed::HeaderTimeout),
            Wait::Idle => (self.since + l.idle_timeout, Closed::IdleTimeout),
        })
    }

    /// Back to waiting once the last response has gone out.
    fn settle(&mut self) {
        if !self.busy() {
            self.wait = Wait::Idle;
            self.since = Instant::now();
        }
    }
}

/// One open connection, shared by its task, its socket, its requests and the registry.
pub struct Conn {
    id: u64,
    state: Mutex<State>,
    evict: CancellationToken,
}

impl Conn {
    fn new(id: u64, now: Instant) -> Self {
        Self {
            id,
            state: Mutex::new(State {
                wait: Wait::Headers,
                since: now,
                in_flight: 0,
                write_blocked: false,
                evicted: false,
                h2: false,
            }),
            evict: CancellationToken::new(),
        }
    }

    /// Bytes arrived: on an idle HTTP/1 connection the next request has begun.
    fn on_read(&self) {
        let mut s = lock(&self.state);
        if s.wait == Wait::Idle && !s.busy() && !s.h2 {
            s.wait = Wait::Headers;
            s.since = Instant::now();
        }
    }

    fn set_write_blocked(&self, blocked: bool) {
        let mut s = lock(&self.state);
        s.write_blocked = blocked;
        s.settle();
    }

    /// A request's headers are complete; `None` if the connection was just
    /// evicted (decided under the same lock, so a request is never cut off).
    fn request_started(self: &Arc<Self>, version: Version) -> Option<RequestGuard> {
        let mut s = lock(&self.state);
        if s.evicted {
            return None;
        }
        s.in_flight += 1;
        s.h2 |= version == Version::HTTP_2;
        Some(RequestGuard(self.clone()))
    }

    fn deadline(&self, l: &Limits) -> Option<(Instant, Closed)> {
        lock(&self.state).deadline(l)
    }
}

/// Held by a request until its response body is finished or dropped.
struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        s.in_flight = s.in_flight.saturating_sub(1);
        s.settle();
    }
}

/// The connection to close to make room: the one waiting (idle or for
/// headers) the longest; never one with a request in flight.
fn victim<'a>(candidates: impl Iterator<Item = (u64, &'a State)>) -> Option<u64> {
    candidates
        .filter(|(_, s)| !s.busy() && !s.evicted)
        .min_by_key(|(id, s)| (s.since, *id))
        .map(|(id, _)| id)
}

/// Every open connection, and the cap.
pub struct Connections {
    /// Replaced by a configuration reload: the cap applies at once, the
    /// timeouts to connections accepted after it.
    limits: Mutex<Limits>,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    gauge: IntGauge,
    closed: IntCounterVec,
    last_full_warning: Mutex<Option<Instant>>,
}

impl Connections {
    /// No connection yet; `metrics` gets the gauge and the close counters.
    pub fn new(limits: Limits, metrics: &Metrics) -> Arc<Self> {
        Arc::new(Self {
            limits: Mutex::new(limits),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            gauge: metrics.http_connections.clone(),
            closed: metrics.http_connections_closed.clone(),
            last_full_warning: Mutex::new(None),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        *lock(&self.limits)
    }

    /// Puts new limits in force (a configuration reload).
    pub fn set_limits(&self, limits: Limits) {
        *lock(&self.limits) = limits;
    }

    /// Registers a just-accepted connection, evicting one at the cap; `None`
    /// (counted) when every open connection has a request in flight: the
    /// caller closes the new one at once.
    pub fn admit(&self) -> Option<Arc<Conn>> {
        let max = self.limits().max_connections;
        let mut open = lock(&self.open);
        if open.len() >= max {
            self.warn_full(open.len());
            if !Self::evict_one(&mut open) {
                self.closed
                    .with_label_values(&[Closed::OverCapacity.label()])
                    .inc();
                return None;
            }
            self.closed
                .with_label_values(&[Closed::Evicted.label()])
                .inc();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(id, Instant::now()));
        open.insert(id, conn.clone());
        self.gauge.set(open.len() as i64);
        Some(conn)
    }

    /// Marks the longest-waiting connection evicted, tells its task and
    /// frees its slot; false if none can go.
    fn evict_one(open: &mut HashMap<u64, Arc<Conn>>) -> bool {
        // A connection may start a request between the scan and the mark;
        // the mark re-checks under its lock, and the scan then runs again.
        for _ in 0..open.len() {
            let states: Vec<(u64, State)> =
                open.iter().map(|(id, c)| (*id, *lock(&c.state))).collect();
            let Some(id) = victim(states.iter().map(|(id, s)| (*id, s))) else {
                return false;
            };
            let Some(conn) = open.get(&id) else {
                return false;
            };
            let mut s = lock(&conn.state);
            if s.busy() {
                continue;
            }
            s.evicted = true;
            drop(s);
            conn.evict.cancel();
            tracing::debug!(connection = id, "evicted to make room for a new connection");
            open.remove(&id);
            return true;
        }
        false
    }

    fn warn_full(&self, open: usize) {
        let mut last = lock(&self.last_full_warning);
        if last.is_none_or(|t| t.elapsed() >= FULL_WARNING_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                open,
                "HTTP connection cap reached (server.max_connections, open-file limit); closing the longest-waiting idle or slow connections to make room, see tenantwatch_http_connections_closed_total"
            );
        }
    }

    /// The connection's task has ended; `why` the server closed it, if it did.
    pub fn closed(&self, conn: &Conn, why: Option<Closed>) {
        let mut open = lock(&self.open);
        // An evicted connection has left the registry (and been counted) already.
        if open.remove(&conn.id).is_some() {
            self.gauge.set(open.len() as i64);
            if let Some(why) = why {
                self.closed.with_label_values(&[why.label()]).inc();
            }
        }
    }
}

/// How [`watch`] ended.
pub enum End<T> {
    /// The future finished by itself.
    Finished(T),
    /// The server closed the connection.
    Closed(Closed),
    /// Shutdown: the drain ended or the future could not drain.
    Shutdown,
}

/// Drives `fut` (a TLS handshake or a served connection) until it finishes,
/// its connection is evicted or due (re-read after every poll, since a poll
/// may read bytes or start or finish a request), or shutdown has given it
/// `drain` to finish. On shutdown `on_shutdown` is called once; it returns
/// false to stop at once instead of draining.
pub async fn watch<F: Future>(
    fut: F,
    conn: &Conn,
    limits: &Limits,
    shutdown: &CancellationToken,
    drain: Duration,
    mut on_shutdown: impl FnMut(Pin<&mut F>) -> bool,
) -> End<F::Output> {
    let mut fut = pin!(fut);
    let mut evicted = pin!(conn.evict.cancelled());
    let mut stop = pin!(shutdown.cancelled());
    let mut timer = pin!(tokio::time::sleep_until(Instant::now()));
    let mut drain_until: Option<Instant> = None;
    poll_fn(|cx| {
        if evicted.as_mut().poll(cx).is_ready() {
            return Poll::Ready(End::Closed(Closed::Evicted));
        }
        if drain_until.is_none() && stop.as_mut().poll(cx).is_ready() {
            if !on_shutdown(fut.as_mut()) {
                return Poll::Ready(End::Shutdown);
            }
            drain_until = Some(Instant::now() + drain);
        }
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(End::Finished(out));
        }
        let due = match (conn.deadline(limits), drain_until) {
            (Some((at, why)), Some(d)) if at < d => Some((at, Some(why))),
            (_, Some(d)) => Some((d, None)),
            (Some((at, why)), None) => Some((at, Some(why))),
            (None, None) => None,
        };
        if let Some((at, why)) = due {
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(why.map_or(End::Shutdown, End::Closed));
            }
        }
        Poll::Pending
    })
    .await
}

/// A connection's byte stream (TCP, or TLS on it), reporting to its [`Conn`]
/// when bytes arrive and when writes wait for a slow reader.
pub struct Tracked<S> {
    inner: S,
    conn: Arc<Conn>,
    blocked: bool,
}

impl<S> Tracked<S> {
    /// Wraps `inner`, the stream of `conn`.
    pub fn new(inner: S, conn: Arc<Conn>) -> Self {
        Self {
            inner,
            conn,
            blocked: false,
        }
    }

    fn wrote<T>(&mut self, r: Poll<T>) -> Poll<T> {
        let blocked = r.is_pending();
        if blocked != self.blocked {
            self.blocked = blocked;
            self.conn.set_write_blocked(blocked);
        }
        r
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.on_read();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.wrote(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A hyper service that marks each request in flight on its connection
/// until the response body is finished or dropped.
#[derive(Clone)]
pub struct TrackRequests<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S> TrackRequests<S> {
    /// Wraps `inner`, serving `conn`.
    pub fn new(inner: S, conn: Arc<Conn>) -> Self {
        Self { inner, conn }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for TrackRequests<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let Some(guard) = self.conn.request_started(req.version()) else {
            // Evicted between its last byte and this call; the task closes it.
            let mut resp = Response::new(Body::from("connection closed to make room\n"));
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return Box::pin(async move { Ok(resp) });
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|body| {
                Body::new(InFlight {
                    body,
                    _guard: guard,
                })
            }))
        })
    }
}

/// A response body that holds its request's [`RequestGuard`].
struct InFlight {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for InFlight {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: max,
            configured: max,
            open_file_limit: None,
        }
    }

    fn state(wait: Wait, since: Instant) -> State {
        State {
            wait,
            since,
            in_flight: 0,
            write_blocked: false,
            evicted: false,
            h2: false,
        }
    }

    fn closed(m: &Metrics, why: Closed) -> u64 {
        m.http_connections_closed
            .with_label_values(&[why.label()])
            .get()
    }

    #[test]
    fn the_longest_waiting_connection_without_a_request_in_flight_is_evicted() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let busy = State {
            in_flight: 1,
            ..state(Wait::Headers, at(0))
        };
        let sending = State {
            write_blocked: true,
            ..state(Wait::Idle, at(1))
        };
        let gone = State {
            evicted: true,
            ..state(Wait::Idle, at(2))
        };
        let slow = state(Wait::Headers, at(4));
        let idle = state(Wait::Idle, at(3));
        let all = [
            (1, &busy),
            (2, &sending),
            (3, &gone),
            (4, &slow),
            (5, &idle),
        ];
        assert_eq!(
            victim(all.into_iter()),
            Some(5),
            "idle since 3 s beats headers since 4 s"
        );
        assert_eq!(victim(all.into_iter().filter(|(id, _)| *id != 5)), Some(4));
        assert_eq!(
            victim(all.into_iter().take(3)),
            None,
            "in flight, still sending, already evicted"
        );
        // Equal waits: the older connection goes first.
        let twin = state(Wait::Idle, at(3));
        assert_eq!(victim([(9, &twin), (5, &idle)].into_iter()), Some(5));
    }

    #[test]
    fn each_wait_has_its_own_deadline_and_a_request_in_flight_has_none() {
        let l = limits(1);
        let t0 = Instant::now();
        let mut s = state(Wait::Headers, t0);
        assert_eq!(
            s.deadline(&l),
            Some((t0 + l.header_read_timeout, Closed::HeaderTimeout))
        );
        s.in_flight = 1;
        assert_eq!(s.deadline(&l), None);
        s.in_flight = 0;
        s.write_blocked = true;
        assert_eq!(s.deadline(&l), None, "the response is still going out");
        s.write_blocked = false;
        s.settle();
        assert_eq!(s.wait, Wait::Idle);
        assert_eq!(
            s.deadline(&l),
            Some((s.since + l.idle_timeout, Closed::IdleTimeout))
        );
    }

    #[test]
    fn the_next_request_on_a_kept_alive_connection_owes_its_headers_from_its_first_byte() {
        let conn = Arc::new(Conn::new(0, Instant::now()));
        let guard = conn.request_started(Version::HTTP_11).unwrap();
        conn.on_read();
        assert_eq!(
            conn.deadline(&limits(1)),
            None,
            "a request body is not a new request"
        );
        drop(guard);
        assert_eq!(lock(&conn.state).wait, Wait::Idle);
        conn.on_read();
        assert_eq!(lock(&conn.state).wait, Wait::Headers);

        let h2 = Arc::new(Conn::new(1, Instant::now()));
        drop(h2.request_started(Version::HTTP_2).unwrap());
        h2.on_read();
        assert_eq!(lock(&h2.state).wait, Wait::Idle, "a PING is not a request");
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_waiting_makes_room_and_in_flight_ones_never_do() {
        let m = Metrics::new().unwrap();
        let c = Connections::new(limits(2), &m);
        let first = c.admit().unwrap();
        let second = c.admit().unwrap();
        let _request = first.request_started(Version::HTTP_11).unwrap();
        assert_eq!(m.http_connections.get(), 2);

        let third = c.admit().expect("the waiting one makes room");
        assert!(second.evict.is_cancelled(), "its task is told");
        assert!(!first.evict.is_cancelled());
        assert!(
            second.request_started(Version::HTTP_11).is_none(),
            "no request starts on an evicted connection"
        );
        assert_eq!(closed(&m, Closed::Evicted), 1);
        assert_eq!(m.http_connections.get(), 2);
        // Its task ends later; it was counted once, when evicted.
        c.closed(&second, Some(Closed::Evicted));
        assert_eq!(closed(&m, Closed::Evicted), 1);

        let _another = third.request_started(Version::HTTP_11).unwrap();
        assert!(c.admit().is_none(), "every slot has a request in flight");
        assert_eq!(closed(&m, Closed::OverCapacity), 1);

        c.closed(&third, Some(Closed::IdleTimeout));
        assert_eq!(closed(&m, Closed::IdleTimeout), 1);
        assert_eq!(m.http_connections.get(), 1);
        assert!(c.admit().is_some(), "a slot is free again");
    }

    #[test]
    fn the_cap_fits_half_the_open_file_limit() {
        let s = |max| ServerSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            web: None,
            max_requests: 40,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: max,
        };
        assert_eq!(
            Limits::with_open_file_limit(&s(512), Some(256)).max_connections,
            128
        );
        assert_eq!(
            Limits::with_open_file_limit(&s(20), Some(256)).max_connections,
            20
        );
        assert_eq!(
            Limits::with_open_file_limit(&s(512), None).max_connections,
            512
        );
        assert_eq!(
            Limits::with_open_file_limit(&s(512), Some(1)).max_connections,
            1
        );
        assert!(crate::support::host::open_file_limit().is_some_and(|n| n > 0));
    }

    #[tokio::test]
    async fn watch_closes_at_the_deadline_and_evictions_at_once() {
        let l = Limits {
            header_read_timeout: Duration::from_millis(50),
            ..limits(1)
        };
        let stop = CancellationToken::new();
        let pending = std::future::pending::<()>;
        let conn = Conn::new(0, Instant::now());
        let started = Instant::now();
        let end = watch(pending(), &conn, &l, &stop, Duration::ZERO, |_| true).await;
        assert!(matches!(end, End::Closed(Closed::HeaderTimeout)));
        assert!(started.elapsed() >= l.header_read_timeout);

        let conn = Conn::new(1, Instant::now());
        lock(&conn.state).in_flight = 1;
        conn.evict.cancel();
        let end = watch(pending(), &conn, &l, &stop, Duration::ZERO, |_| true).await;
        assert!(matches!(end, End::Closed(Closed::Evicted)));

        // Shutdown: a request in flight gets the drain time, no more; a
        // future that cannot drain (a TLS handshake) stops at once.
        let conn = Conn::new(2, Instant::now());
        lock(&conn.state).in_flight = 1;
        stop.cancel();
        let drain = Duration::from_millis(100);
        let started = Instant::now();
        let end = watch(pending(), &conn, &l, &stop, drain, |_| true).await;
        assert!(matches!(end, End::Shutdown));
        assert!(started.elapsed() >= drain);
        let end = watch(pending(), &conn, &l, &stop, drain, |_| false).await;
        assert!(matches!(end, End::Shutdown));
    }
}
