//! Open-loop load generator for `/metrics`, used by `benches/run`.
//!
//! Sends GET requests at a fixed rate whether or not earlier ones have been
//! answered (a closed-loop tool such as wrk slows down with the server and hides
//! its stalls), with `Accept-Encoding: gzip` as Prometheus sends it, and measures
//! each latency from the request's intended send time, so queueing in the client
//! counts against the server as it would for a real scraper. Stops when stdin
//! closes (or after `--seconds`) and prints one JSON line.
//!
//! `loadgen URL [--rate 200] [--seconds S]`

use std::time::{Duration, Instant};

use std::io::Read;

#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
    bytes: usize,
    encoding: Option<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: loadgen URL [--rate R] [--seconds S]")?;
    let (mut rate, mut seconds) = (200.0_f64, f64::INFINITY);
    while let Some(a) = args.next() {
        let v: f64 = args.next().ok_or("flag needs a value")?.parse()?;
        match a.as_str() {
            "--rate" => rate = v,
            "--seconds" => seconds = v,
            _ => return Err(format!("unknown flag {a}").into()),
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // A plain thread: the crate's Tokio has no `io-std`, and a blocking read is all this needs.
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = stop_tx.send(true);
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate);
    let deadline = start + Duration::from_secs_f64(seconds.min(86_400.0));
    let mut sent = 0u64;
    loop {
        let intended = start + period * sent as u32;
        if intended >= deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(intended) => {}
            _ = stop_rx.wait_for(|s| *s) => break,
        }
        sent += 1;
        let (client, url, tx) = (client.clone(), url.clone(), tx.clone());
        tokio::spawn(async move {
            let r = async {
                let resp = client
                    .get(&url)
                    .header("Accept-Encoding", "gzip")
                    .send()
                    .await?
                    .error_for_status()?;
                let enc = resp
                    .headers()
                    .get("content-encoding")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((body.len(), enc))
            }
            .await;
            let _ = tx.send((Instant::now() - intended.into_std(), r));
        });
    }
    drop(tx);
    let mut out = Outcome::default();
    while let Some((latency, r)) = rx.recv().await {
        match r {
            Ok((bytes, enc)) => {
                out.latencies.push(latency);
                out.bytes = bytes;
                out.encoding = enc;
            }
            Err(_) => out.errors += 1,
        }
    }
    out.latencies.sort();
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent\":{sent},\"ok\":{},\"errors\":{},\"seconds\":{elapsed:.3},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"bytes\":{},\"encoding\":\"{}\"}}",
        out.latencies.len(),
        out.errors,
        percentile(&out.latencies, 0.50),
        percentile(&out.latencies, 0.99),
        out.latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        out.bytes,
        out.encoding.as_deref().unwrap_or("identity"),
    );
    Ok(())
}
