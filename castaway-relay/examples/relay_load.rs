//! Load generator for the Castaway relay: prints numbers, asserts nothing.
//!
//! ```text
//! cargo run --release -p castaway-relay --example relay_load -- fanout [LISTENERS] [CHUNKS] [CHUNK_KIB]
//! cargo run --release -p castaway-relay --example relay_load -- idle [LISTENERS]
//! ```
//! `fanout` (defaults 1,000 listeners, 200 chunks of 80 KiB): one streamer uploads as fast as
//! the relay acknowledges (one upload in flight), and every listener counts what it gets; it
//! reports chunks/s, MB/s delivered in total, and the time from an upload to its receipt by the
//! last listener, and how much the server allocated per chunk and listener (its allocator counts,
//! so a chunk copied for each listener would show as its size). `idle` (default 10,000
//! listeners): the server's resident memory per connected
//! listener. The server runs in a child process (this program with `serve`) so that its CPU and
//! memory are measured alone from /proc; the clients are minimal Socket.IO-over-WebSocket
//! clients in this process, on the same cores.

use castaway_relay::{
    CastawayConfig, CastawayServer, StaticTokens,
    store::{LivestreamStore, MemoryStore, NewLivestream},
};
use futures::{SinkExt as _, StreamExt as _};
use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::Command,
    sync::Notify,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Bytes, Message},
};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The system allocator, counting what it hands out (in the server, read at `/allocated`).
#[global_allocator]
static COUNTING: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| -> Result<usize, Failure> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    match args.first().map(String::as_str) {
        Some("serve") => serve().await,
        Some("fanout") => fanout(number(1, 1000)?, number(2, 200)?, number(3, 80)?).await,
        Some("idle") => idle(number(1, 10_000)?).await,
        _ => Err(
            "usage: relay_load fanout [LISTENERS] [CHUNKS] [CHUNK_KIB] | idle [LISTENERS]".into(),
        ),
    }
}

/// The server under measurement, with limits that do not get in the way of a benchmark.
async fn serve() -> Result<(), Failure> {
    let mut config = CastawayConfig::default();
    config.listen = "127.0.0.1:0".parse()?;
    config.uploads_per_second = 100_000;
    config.upload_burst = 100_000;
    config.listener_queue_chunks = 64;
    config.max_listeners_per_livestream = 100_000;
    let store = Arc::new(MemoryStore::new());
    let new = NewLivestream {
        title: "load".into(),
        description: String::new(),
        artist_name: "load".into(),
    };
    let livestream = store.create("artist", &new).await?;
    let tokens = StaticTokens::new()
        .allow("artist-token", "artist")
        .allow("fan-token", "fan");
    let server = CastawayServer::bind(config, Arc::new(tokens), store).await?;
    println!("listening {} {}", server.local_addr()?, livestream.id);
    // Runs until the load generator, its parent, kills it.
    let allocated = axum::Router::new().route(
        "/allocated",
        axum::routing::get(async || {
            // Fresh allocations, and what reallocations grew (net of what they shrank).
            let stats = COUNTING.stats();
            (stats.bytes_allocated as i64 + stats.bytes_reallocated as i64).to_string()
        }),
    );
    server.run(allocated, std::future::pending()).await?;
    Ok(())
}

struct Server {
    _child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
    livestream: String,
}

async fn start_server() -> Result<Server, Failure> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the server exited")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix("listening ") {
            let (addr, livestream) = rest.split_once(' ').ok_or("odd announcement")?;
            return Ok(Server {
                _child: child,
                pid,
                addr: addr.parse()?,
                livestream: livestream.to_owned(),
            });
        }
    }
    Err("the server never announced its address".into())
}

/// CPU seconds and resident bytes of the server.
fn usage(pid: u32) -> Result<(f64, u64), Failure> {
    let usage = harness::usage(pid)?;
    Ok((usage.cpu_seconds, usage.resident_bytes))
}

/// Opens a Socket.IO connection to `namespace` and waits until it is admitted.
async fn join(server: &Server, namespace: &str, token: &str) -> Result<Ws, Failure> {
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    let auth = format!(
        r#"40{namespace},{{"idToken":"{token}","livestreamId":"{}"}}"#,
        server.livestream
    );
    let mut sent = false;
    while let Some(frame) = ws.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        let text = text.as_str();
        if text.starts_with('0') && !sent {
            ws.send(Message::text(auth.clone())).await?;
            sent = true;
        } else if text == "2" {
            ws.send(Message::text("3")).await?;
        } else if text.starts_with(&format!("40{namespace},")) {
            return Ok(ws);
        } else if text.starts_with(&format!("44{namespace},")) || text.contains("\"error\"") {
            return Err(format!("refused: {text}").into());
        }
    }
    Err("closed while joining".into())
}

/// One listener: counts chunks and records, per chunk, the latest receipt of all listeners.
async fn listen(
    mut ws: Ws,
    chunks: usize,
    started: Instant,
    last_receipt: Arc<Vec<AtomicU64>>,
    bytes: Arc<AtomicU64>,
) -> usize {
    let mut got = 0;
    let mut binary_next = false;
    while let Some(Ok(frame)) = ws.next().await {
        match frame {
            Message::Text(text) if text.as_str() == "2" => {
                let Ok(()) = ws.send(Message::text("3")).await else {
                    break;
                };
            }
            Message::Text(text) => {
                binary_next = text.as_str().starts_with("451-/listener,[\"audio\"")
            }
            Message::Binary(chunk) if binary_next => {
                binary_next = false;
                let at = started.elapsed().as_nanos() as u64;
                let seq = chunk
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(usize::MAX, |b: [u8; 8]| u64::from_be_bytes(b) as usize);
                if let Some(slot) = last_receipt.get(seq) {
                    slot.fetch_max(at, Ordering::Relaxed);
                }
                bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                got += 1;
                if got == chunks {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    got
}

async fn fanout(listeners: usize, chunks: usize, chunk_kib: usize) -> Result<(), Failure> {
    let server = start_server().await?;
    let mut streamer = join(&server, "/streamer", "artist-token").await?;
    let mut joined = Vec::with_capacity(listeners);
    for _ in 0..listeners {
        joined.push(join(&server, "/listener", "fan-token").await?);
    }
    println!("relay_load fanout: {listeners} listeners, {chunks} chunks of {chunk_kib} KiB");
    let started = Instant::now();
    let last_receipt: Arc<Vec<AtomicU64>> =
        Arc::new((0..chunks).map(|_| AtomicU64::new(0)).collect());
    let bytes = Arc::new(AtomicU64::new(0));
    let done = Arc::new((AtomicUsize::new(0), Notify::new()));
    let complete = Arc::new(AtomicUsize::new(0));
    for ws in joined {
        let (last_receipt, bytes, done, complete) = (
            last_receipt.clone(),
            bytes.clone(),
            done.clone(),
            complete.clone(),
        );
        tokio::spawn(async move {
            if listen(ws, chunks, started, last_receipt, bytes).await == chunks {
                complete.fetch_add(1, Ordering::Relaxed);
            }
            if done.0.fetch_add(1, Ordering::AcqRel) + 1 == listeners {
                done.1.notify_one();
            }
        });
    }
    let (cpu_before, _) = usage(server.pid)?;
    let allocated_before = allocated(&server).await?;
    let mut uploaded = Vec::with_capacity(chunks);
    let body = vec![0x5au8; chunk_kib << 10];
    for seq in 0..chunks {
        let mut chunk = body.clone();
        chunk[..8].copy_from_slice(&(seq as u64).to_be_bytes());
        uploaded.push(started.elapsed().as_nanos() as u64);
        streamer
            .send(Message::text(
                r#"451-/streamer,["upload",{"_placeholder":true,"num":0}]"#,
            ))
            .await?;
        streamer.send(Message::Binary(Bytes::from(chunk))).await?;
        // One upload in flight: wait for its acknowledgement.
        loop {
            match streamer
                .next()
                .await
                .ok_or("the streamer was disconnected")??
            {
                Message::Text(text) if text.as_str() == "2" => {
                    streamer.send(Message::text("3")).await?;
                }
                Message::Text(text) if text.as_str().contains("Packet received") => break,
                Message::Text(text) if text.as_str().contains("\"error\"") => {
                    return Err(format!("upload refused: {text}").into());
                }
                _ => {}
            }
        }
    }
    let uploading = started.elapsed();
    tokio::time::timeout(Duration::from_secs(600), done.1.notified())
        .await
        .map_err(|_| "listeners did not finish within 10 minutes")?;
    let elapsed = started.elapsed();
    let (cpu_after, rss) = usage(server.pid)?;
    let allocated_during = allocated(&server).await?.saturating_sub(allocated_before);
    let delivered = bytes.load(Ordering::Relaxed) as f64;
    let mut latencies: Vec<f64> = uploaded
        .iter()
        .zip(last_receipt.iter())
        .filter_map(|(up, last)| {
            let last = last.load(Ordering::Relaxed);
            (last >= *up).then(|| (last - up) as f64 / 1e6)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "uploads: {chunks} in {:.2} s ({:.0} chunks/s)",
        uploading.as_secs_f64(),
        chunks as f64 / uploading.as_secs_f64()
    );
    println!(
        "delivered: {:.0} MB in {:.2} s = {:.0} MB/s to {} of {listeners} listeners complete",
        delivered / 1e6,
        elapsed.as_secs_f64(),
        delivered / 1e6 / elapsed.as_secs_f64(),
        complete.load(Ordering::Relaxed)
    );
    if !latencies.is_empty() {
        println!(
            "upload → last listener: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    println!(
        "server: {:.2} CPU s ({:.0} % of one core), {} MiB resident",
        cpu_after - cpu_before,
        (cpu_after - cpu_before) / elapsed.as_secs_f64() * 100.0,
        rss >> 20
    );
    println!(
        "server heap: {:.0} MB allocated while relaying, {:.0} bytes per chunk per listener (a chunk is {} bytes)",
        allocated_during as f64 / 1e6,
        allocated_during as f64 / (chunks * listeners) as f64,
        chunk_kib << 10
    );
    Ok(())
}

/// What the server's allocator has handed out so far, in bytes.
async fn allocated(server: &Server) -> Result<u64, Failure> {
    let text = harness::http::get_text(&format!("http://{}/allocated", server.addr)).await?;
    Ok(text.trim().parse()?)
}

async fn idle(listeners: usize) -> Result<(), Failure> {
    let server = start_server().await?;
    let _streamer = join(&server, "/streamer", "artist-token").await?;
    let (_, before) = usage(server.pid)?;
    let mut held = Vec::with_capacity(listeners);
    for _ in 0..listeners {
        held.push(join(&server, "/listener", "fan-token").await?);
    }
    let (_, after) = usage(server.pid)?;
    println!(
        "relay_load idle: {listeners} listeners: server resident {} MiB → {} MiB, {:.1} KiB per listener",
        before >> 20,
        after >> 20,
        (after.saturating_sub(before)) as f64 / 1024.0 / listeners as f64
    );
    Ok(())
}
