//! Slow and idle HTTP clients (issue 13, point 6): connections that never
//! finish their request headers (slowloris) or sit idle on keep-alive must be
//! closed, and while they hold every connection slot — or every file
//! descriptor the process may open — `/healthz`, `/readyz` and `/metrics`
//! must still answer.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{bin, sample, spawn_daemon, start_sim, wait_for, wait_ready, Daemon};

/// What "promptly" means for a probe under attack on a loaded 2-core CI machine.
const PROMPT: Duration = Duration::from_secs(5);
/// Upper bound for anything the daemon should do by itself (close, time out).
const EVENTUALLY: Duration = Duration::from_secs(30);

/// Request headers that never end: the blank line is never sent.
pub(crate) const PARTIAL: &[u8] =
    b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n";

/// A connection that sent part of its request headers and then stalls.
pub(crate) async fn partial_headers(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(PARTIAL).await.expect("write partial headers");
    s
}

/// Sends one complete keep-alive request on `s` and reads its response.
async fn request(s: &mut TcpStream, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // /healthz answers "ok\n" with a Content-Length: the body ends the response.
    while !got.ends_with(b"\r\n\r\nok\n") {
        let n = tokio::time::timeout(PROMPT, s.read(&mut buf))
            .await
            .expect("response within the deadline")
            .expect("read");
        assert!(
            n > 0,
            "connection closed mid-response: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A keep-alive connection that completed one request and now sits idle.
async fn idle_keep_alive(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = request(&mut s, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

/// How the server ended a connection, and when (measured from `since`).
#[derive(Debug, PartialEq)]
enum End {
    /// Read EOF: the server closed its side.
    Eof(Duration),
    /// Reset: closed with data still unread (e.g. evicted before reading it).
    Reset(Duration),
    /// Still open after the deadline.
    Open,
}

/// Waits up to `within` for the server to close `s`; bytes it sends are discarded.
async fn ended(mut s: TcpStream, since: Instant, within: Duration) -> End {
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return End::Eof(since.elapsed()),
                Ok(_) => continue,
                Err(_) => return End::Reset(since.elapsed()),
            }
        }
    };
    tokio::time::timeout(within, read_all)
        .await
        .unwrap_or(End::Open)
}

/// GET `path` on a new connection; status and how long the answer took. Fails
/// the test if there is no answer within 20 s (the old server never answered).
async fn timed_get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let started = Instant::now();
    match client.get(format!("http://{addr}{path}")).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            (status, started.elapsed())
        }
        Err(e) => panic!("{path} did not answer (after {:?}): {e}", started.elapsed()),
    }
}

/// `/healthz`, `/readyz` and `/metrics` each answer 200 within [`PROMPT`];
/// returns the slowest answer.
async fn probes_answer_promptly(addr: SocketAddr, what: &str) -> Duration {
    let mut slowest = Duration::ZERO;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, took) = timed_get(addr, path).await;
        eprintln!("{what}: {path} answered {status} in {took:?}");
        assert_eq!(status, 200, "{what}: {path}");
        assert!(took < PROMPT, "{what}: {path} took {took:?}");
        slowest = slowest.max(took);
    }
    slowest
}

fn closed(metrics: &str, reason: &str) -> f64 {
    sample(
        metrics,
        &format!("tenantwatch_http_connections_closed_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or_else(|| panic!("closed_total{{reason={reason}}} missing in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed_and_never_lock_out_probes() {
    let ts = start_sim(2, Duration::ZERO).await;
    let d = spawn_daemon(
        &ts.config,
        &[
            ("TENANTWATCH__SERVER__MAX_CONNECTIONS", "20"),
            ("TENANTWATCH__SERVER__HEADER_READ_TIMEOUT", "2s"),
            ("TENANTWATCH__SERVER__IDLE_TIMEOUT", "8s"),
        ],
    )
    .await;
    wait_ready(d.addr, Duration::from_secs(60)).await;

    // Below the cap: each kind of stalled client meets its own timeout.
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push((idle_keep_alive(d.addr).await, Instant::now()));
    }
    let mut slow = Vec::new();
    for _ in 0..5 {
        slow.push(partial_headers(d.addr).await);
    }
    for s in slow {
        match ended(s, started, EVENTUALLY).await {
            End::Eof(t) => assert!(
                t >= Duration::from_millis(1500),
                "closed after {t:?}, before the 2 s header timeout"
            ),
            other => panic!("a client that never finished its headers: {other:?}"),
        }
    }
    // The header timeout has passed, the idle timeout has not: keep-alive is
    // still usable, as Prometheus reuses its connection between scrapes.
    let (mut reused, _) = idle.remove(0);
    let head = request(&mut reused, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(reused);
    let (unused, answered) = idle.remove(0);
    match ended(unused, answered, EVENTUALLY).await {
        End::Eof(t) => assert!(
            t >= Duration::from_secs(7),
            "idle connection closed after {t:?}, before the 8 s idle timeout"
        ),
        other => panic!("an idle keep-alive connection: {other:?}"),
    }

    // Beyond the cap: 10 idle and 60 slow clients for 20 slots. Probes and
    // scrapes still get through, by evicting the longest-waiting of them.
    let mut flood = Vec::new();
    for _ in 0..10 {
        flood.push(idle_keep_alive(d.addr).await);
    }
    for _ in 0..60 {
        flood.push(partial_headers(d.addr).await);
    }
    let slowest = probes_answer_promptly(d.addr, "70 stalled clients, cap 20").await;
    eprintln!("slowest probe with 70 stalled clients and a cap of 20: {slowest:?}");
    let flooded = Instant::now();
    let ends =
        futures::future::join_all(flood.into_iter().map(|s| ended(s, flooded, EVENTUALLY))).await;
    assert!(
        ends.iter().all(|e| *e != End::Open),
        "every stalled client is closed in the end: {ends:?}"
    );

    let m = wait_for(
        d.addr,
        EVENTUALLY,
        "the open-connection gauge back to this scrape alone",
        |m| sample(m, "tenantwatch_http_connections") == Some(1.0),
    )
    .await;
    let (header, idle, evicted, over) = (
        closed(&m, "header_timeout"),
        closed(&m, "idle_timeout"),
        closed(&m, "evicted"),
        closed(&m, "over_capacity"),
    );
    eprintln!("closed: header_timeout {header}, idle_timeout {idle}, evicted {evicted}, over_capacity {over}");
    assert!(header >= 5.0, "{m}");
    assert!(idle >= 1.0, "{m}");
    // 70 stalled clients, 3 probes and 20 slots: at least 50 had to make room
    // (fewer only if some timed out while the flood was still being opened).
    assert!(evicted >= 20.0, "{m}");
    assert_eq!(over, 0.0, "no request was in flight, so none was refused");
    let log = d.log();
    assert!(log.contains("HTTP connections capped at 20"), "{log}");
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}

/// The tester's case: `ulimit -n 256` and 300 slow clients. Before, the
/// slow clients took every descriptor, accept failed with EMFILE and the
/// probes were never accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_slow_clients_at_an_open_file_limit_of_256() {
    let ts = start_sim(2, Duration::ZERO).await;
    let d = spawn_with_nofile(&ts.config, 256).await;
    wait_ready(d.addr, Duration::from_secs(60)).await;

    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(partial_headers(d.addr).await);
    }
    let slowest = probes_answer_promptly(d.addr, "300 slow clients, ulimit -n 256").await;
    eprintln!("slowest probe with 300 slow clients at ulimit -n 256: {slowest:?}");
    // The daemon itself keeps working: the scrape still has every tenant.
    let (_, metrics) = crate::helpers::get(d.addr, "/metrics").await;
    assert_eq!(
        metrics.matches("tenantwatch_tenant_up{").count(),
        2,
        "{metrics}"
    );
    drop(slow);
    let log = d.log();
    assert!(
        log.contains("HTTP connections capped at 128"),
        "half of the open-file limit: {log}"
    );
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}

/// Like `helpers::spawn_daemon`, under `prlimit --nofile=N:N`, on a port
/// picked here (the wrapper keeps the daemon's own log format unchanged).
async fn spawn_with_nofile(config: &std::path::Path, nofile: u32) -> Daemon {
    let port = crate::alerting::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut child = tokio::process::Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(bin())
        .args(["run", "--config"])
        .arg(config)
        .args(["--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("prlimit (util-linux) runs the daemon");
    let stderr = child.stderr.take().expect("stderr piped");
    let log = Arc::new(Mutex::new(String::new()));
    {
        let log = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("daemon: {line}");
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log.lock().unwrap().contains("serving http://") {
        assert!(
            Instant::now() < deadline,
            "daemon did not start serving; log:\n{}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Daemon { child, addr, log }
}
