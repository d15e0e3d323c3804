//! Load generator for the Camus signaling server: prints numbers, asserts nothing.
//!
//! ```text
//! cargo build --release --bin camus
//! cargo run --release -p camus-signaling --example camus_load -- [IDLE] [ROOMS] [ACTIVE] [SECONDS] [RATE]
//! ```
//!
//! The server is the release `camus` binary, run as a child process so that its CPU and memory
//! are measured alone: found next to this example's directory (`target/release/camus`), or at
//! `$CAMUS_BIN`. Its limits are raised by flags so that they do not interfere. Each phase
//! starts a server of its own, on `127.0.0.1:0` with a fresh SQLite data directory. The clients
//! are minimal WebSocket clients in this process (one task each, or two when they send), on the
//! same cores as the server: the numbers are a floor.
//!
//! 1. **Idle memory**: IDLE clients (default 10,000) in ROOMS rooms (default 1,000) each enter
//!    over HTTP (`GET /room/<slug>` for the cookie), open the room's WebSocket and read until
//!    their `room-info` lists the whole room; the server's resident memory is read before and
//!    after. Each process holds one socket per client: the default 10,000 fits a soft
//!    `ulimit -n` of 20,000; beyond that raise it in the shell.
//! 2. **Throughput**: ACTIVE clients (default 1,000) in pairs, each pair in a room of its own,
//!    each sending `text` messages to its peer as fast as they are relayed (at most
//!    [`WINDOW`] on their way per direction, so the server's per-client queue never overflows)
//!    for SECONDS (default 5): relayed messages per second and the server's CPU.
//! 3. **Latency**: the same clients paced at RATE messages per second in all (default 10,000)
//!    for SECONDS; each carries its send time (one process, one clock) and the receiver records
//!    send → receipt: p50, p99, max.
//!
//! A size of 0 skips its phase, e.g. `-- 0 0 1000` for phases 2 and 3 only, `-- 2000 200 0`
//! for a quick memory run.

use futures::{
    SinkExt as _, StreamExt as _, TryStreamExt as _,
    stream::{self, SplitSink, SplitStream},
};
use harness::ServerProcess;
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{net::TcpStream, process::Command, sync::Notify, sync::watch, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Message,
        client::IntoClientRequest as _,
        http::{HeaderValue, header::COOKIE},
        protocol::WebSocketConfig,
    },
};

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Ws, Message>;

/// Room entries (HTTP, then the WebSocket) in progress at once.
mod server;
use server::Server;

const JOINS_AT_ONCE: usize = 64;
/// Messages of one sender on their way to its peer at most, in the throughput phase; a sender
/// writes again once half of them have arrived.
const WINDOW: u64 = 128;
/// Each client's WebSocket read buffer (tungstenite's default, 128 KiB, would cost this
/// process 1.3 GB for 10,000 clients).
const CLIENT_READ_BUFFER: usize = 8 << 10;
/// How long an event (a room filling up, the last messages arriving) may take.
const PATIENCE: Duration = Duration::from_secs(120);
/// The cookie secret given to the server.
const SECRET: &str = "camus_load: a cookie secret of at least 32 characters";

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
    let (idle_clients, rooms) = (number(0, 10_000)?, number(1, 1_000)?);
    let (active_clients, seconds, rate) = (number(2, 1_000)?, number(3, 5)?, number(4, 10_000)?);
    harness::http::install_crypto_provider();
    if idle_clients > 0 {
        idle(idle_clients, rooms.clamp(1, idle_clients)).await?;
    }
    if active_clients >= 2 {
        active(
            active_clients / 2,
            Duration::from_secs(seconds.max(1) as u64),
            rate,
        )
        .await?;
    }
    Ok(())
}

/// A client whose socket is open and greeted.
struct Client {
    id: String,
    ws: Ws,
}

/// Counts events of many tasks and wakes the one waiting for all of them.
#[derive(Default)]
struct Countdown {
    done: AtomicUsize,
    all: Notify,
}

impl Countdown {
    fn tick(&self, of: usize) {
        if self.done.fetch_add(1, Ordering::AcqRel) + 1 == of {
            self.all.notify_one();
        }
    }

    async fn wait(&self, of: usize) {
        while self.done.load(Ordering::Acquire) < of {
            self.all.notified().await;
        }
    }
}

/// Phase 1: `clients` idle clients in `rooms` rooms.
async fn idle(clients: usize, rooms: usize) -> Result<(), Failure> {
    let expected = |room: usize| clients / rooms + usize::from(room < clients % rooms);
    let server = Server::start(rooms, expected(0)).await?;
    let started = server.usage()?.resident_bytes;
    let slugs = server.create_rooms("idle", rooms).await?;
    let with_rooms = server.usage()?.resident_bytes;
    let own_before = harness::usage(std::process::id())?.resident_bytes;
    let full = Arc::new(Countdown::default());
    let began = Instant::now();
    let holders: Vec<JoinHandle<()>> = stream::iter(0..clients)
        .map(|n| {
            let room = n % rooms;
            let join = server.join(&slugs[room]);
            async move { Ok::<_, Failure>((room, join.await?)) }
        })
        .buffer_unordered(JOINS_AT_ONCE)
        .map_ok(|(room, client)| {
            tokio::spawn(hold(client.ws, expected(room), full.clone(), clients))
        })
        .try_collect()
        .await?;
    let joined = began.elapsed().as_secs_f64();
    tokio::time::timeout(PATIENCE, full.wait(clients))
        .await
        .map_err(|_| "the rooms' room-info never listed every client")?;
    let after = server.usage()?.resident_bytes;
    let own_after = harness::usage(std::process::id())?.resident_bytes;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!(
        "camus_load: {clients} idle clients in {rooms} rooms: server resident {:.1} MiB (started) → {:.1} MiB ({rooms} rooms) → {:.1} MiB, {:.1} KiB per client; joined in {joined:.1} s ({:.0}/s); this generator {:.1} KiB per client ({} KiB read buffers)",
        mib(started),
        mib(with_rooms),
        mib(after),
        after.saturating_sub(with_rooms) as f64 / 1024.0 / clients as f64,
        clients as f64 / joined,
        own_after.saturating_sub(own_before) as f64 / 1024.0 / clients as f64,
        CLIENT_READ_BUFFER >> 10,
    );
    for holder in holders {
        holder.abort();
    }
    Ok(())
}

/// An idle client: answers pings, and counts once when its `room-info` lists `room_size`.
async fn hold(mut ws: Ws, room_size: usize, full: Arc<Countdown>, clients: usize) {
    let mut counted = false;
    while let Some(Ok(frame)) = ws.next().await {
        let Message::Text(text) = frame else {
            continue;
        };
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        match message["type"].as_str() {
            Some("room-info") if !counted => {
                let listed = message["data"]["clients"].as_array().map_or(0, Vec::len);
                if listed == room_size {
                    counted = true;
                    full.tick(clients);
                }
            }
            Some("ping") => {
                let pong = serde_json::json!({
                    "receiver": "ground control", "type": "pong", "data": message["data"],
                });
                if ws.send(Message::text(pong.to_string())).await.is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// One direction of a pair: what the sender sent and the receiver got.
struct Lane {
    /// The receiver's id.
    to: String,
    sent: AtomicU64,
    received: AtomicU64,
    /// Rung by the receiver when at most half the window is on its way.
    space: Notify,
    /// Send → receipt, in microseconds, of the messages that carry their send time.
    latencies: Mutex<Vec<u32>>,
    errors: AtomicU64,
    first_error: OnceLock<String>,
}

impl Lane {
    fn new(to: String) -> Arc<Self> {
        Arc::new(Self {
            to,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            space: Notify::new(),
            latencies: Mutex::new(Vec::new()),
            errors: AtomicU64::new(0),
            first_error: OnceLock::new(),
        })
    }

    fn on_the_way(&self) -> u64 {
        let received = self.received.load(Ordering::Acquire);
        self.sent.load(Ordering::Acquire).saturating_sub(received)
    }

    /// Waits until everything sent has arrived.
    async fn drained(&self) -> Result<(), Failure> {
        tokio::time::timeout(PATIENCE, async {
            while self.on_the_way() > 0 {
                self.space.notified().await;
            }
        })
        .await
        .map_err(|_| {
            let error = self.first_error.get().map_or("none", String::as_str);
            format!(
                "{} messages to {} never arrived (errors: {}; the first: {error})",
                self.on_the_way(),
                self.to,
                self.errors.load(Ordering::Relaxed),
            )
        })?;
        Ok(())
    }
}

/// Reads what the peer relays into `lane`, until the socket closes.
async fn receive(mut stream: SplitStream<Ws>, lane: Arc<Lane>, epoch: Instant) {
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else {
            continue;
        };
        let text = text.as_str();
        if text.contains(r#""type":"text""#) {
            if let Some(sent_at) = number_after(text, r#""t":"#) {
                let micros = nanos_since(epoch).saturating_sub(sent_at) / 1_000;
                let micros = u32::try_from(micros).unwrap_or(u32::MAX);
                lane.latencies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(micros);
            }
            lane.received.fetch_add(1, Ordering::AcqRel);
            if lane.on_the_way() <= WINDOW / 2 {
                lane.space.notify_one();
            }
        } else if text.contains(r#""type":"error""#) {
            lane.errors.fetch_add(1, Ordering::Relaxed);
            let _ = lane.first_error.set(text.to_owned());
        }
    }
}

/// The digits after `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Phase 2, throughput: sends to the peer while at most [`WINDOW`] messages are on their way,
/// until `stop`, then waits for the last ones to arrive.
async fn flood(
    mut sink: Sink,
    lane: Arc<Lane>,
    mut stop: watch::Receiver<bool>,
) -> Result<Sink, Failure> {
    let mut sent = 0;
    while !*stop.borrow() {
        let room = WINDOW - lane.on_the_way().min(WINDOW);
        if room < WINDOW / 2 {
            tokio::select! {
                _ = lane.space.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        for _ in 0..room {
            let message = format!(
                r#"{{"receiver":"{}","type":"text","data":{{"n":{sent}}}}}"#,
                lane.to
            );
            sink.feed(Message::text(message)).await?;
            sent += 1;
            lane.sent.store(sent, Ordering::Release);
        }
        sink.flush().await?;
    }
    lane.drained().await?;
    Ok(sink)
}

/// Phase 3, latency: `count` messages to the peer, one per `period` from `start`, each with
/// its send time; then waits for the last ones to arrive.
async fn pace(
    mut sink: Sink,
    lane: Arc<Lane>,
    epoch: Instant,
    start: Instant,
    period: Duration,
    count: u64,
) -> Result<Sink, Failure> {
    let mut ticks = tokio::time::interval_at(start.into(), period);
    for _ in 0..count {
        ticks.tick().await;
        let message = format!(
            r#"{{"receiver":"{}","type":"text","data":{{"t":{}}}}}"#,
            lane.to,
            nanos_since(epoch)
        );
        sink.send(Message::text(message)).await?;
        lane.sent.fetch_add(1, Ordering::AcqRel);
    }
    lane.drained().await?;
    Ok(sink)
}

/// Phases 2 and 3: `pairs` pairs of clients, each pair in a room of its own.
async fn active(pairs: usize, seconds: Duration, rate: usize) -> Result<(), Failure> {
    let clients = pairs * 2;
    let server = Server::start(pairs, 2).await?;
    let slugs = server.create_rooms("pair", pairs).await?;
    let joined: Vec<(Client, Client)> = stream::iter(&slugs)
        .map(|slug| async {
            let first = server.join(slug).await?;
            Ok::<_, Failure>((first, server.join(slug).await?))
        })
        .buffered(JOINS_AT_ONCE / 2)
        .try_collect()
        .await?;
    let epoch = Instant::now();
    // Each client's sink and the lane it sends on; the lanes' receivers read on tasks.
    let mut senders: Vec<(Sink, Arc<Lane>)> = Vec::with_capacity(clients);
    let mut readers = Vec::with_capacity(clients);
    for (a, b) in joined {
        let (to_b, to_a) = (Lane::new(b.id), Lane::new(a.id));
        let (a_sink, a_stream) = a.ws.split();
        let (b_sink, b_stream) = b.ws.split();
        readers.push(tokio::spawn(receive(a_stream, to_a.clone(), epoch)));
        readers.push(tokio::spawn(receive(b_stream, to_b.clone(), epoch)));
        senders.push((a_sink, to_b));
        senders.push((b_sink, to_a));
    }
    let lanes: Vec<Arc<Lane>> = senders.iter().map(|(_, lane)| lane.clone()).collect();
    let received = || -> u64 {
        lanes
            .iter()
            .map(|lane| lane.received.load(Ordering::Acquire))
            .sum()
    };

    let (stop, stopping) = watch::channel(false);
    let own = harness::usage(std::process::id())?.cpu_seconds;
    let cpu = server.usage()?.cpu_seconds;
    let began = Instant::now();
    let floods: Vec<_> = senders
        .into_iter()
        .map(|(sink, lane)| tokio::spawn(flood(sink, lane, stopping.clone())))
        .collect();
    // The measurement window: a length of time, not an event to wait for.
    tokio::time::sleep(seconds).await;
    let (relayed, elapsed) = (received(), began.elapsed().as_secs_f64());
    let cpu = server.usage()?.cpu_seconds - cpu;
    let own = harness::usage(std::process::id())?.cpu_seconds - own;
    stop.send_replace(true);
    let mut senders = Vec::with_capacity(clients);
    for flood in floods {
        senders.push(flood.await??);
    }
    // The server's own count, after the last messages arrived: a check on ours.
    let counted = server.counter("camus_messages_total").await?;
    let dropped = server.counter("camus_frames_dropped_total").await?;
    println!(
        "camus_load: {clients} clients in {pairs} pairs, each sending to its peer ({WINDOW} on their way at most) for {elapsed:.1} s: {relayed} relayed = {:.0}/s; server {:.0} % of one core, this generator {:.0} %; errors {}; the server counted {counted} messages in all and dropped {dropped} frames",
        relayed as f64 / elapsed,
        cpu / elapsed * 100.0,
        own / elapsed * 100.0,
        lanes
            .iter()
            .map(|lane| lane.errors.load(Ordering::Relaxed))
            .sum::<u64>(),
    );

    let per_client = (rate as f64 * seconds.as_secs_f64() / clients as f64).round() as u64;
    if per_client == 0 {
        return Ok(());
    }
    let period = seconds / u32::try_from(per_client)?;
    let before = received();
    let cpu = server.usage()?.cpu_seconds;
    let start = Instant::now() + Duration::from_millis(100);
    let began = Instant::now();
    let paced: Vec<_> = senders
        .into_iter()
        .zip(lanes.iter().cloned())
        .enumerate()
        .map(|(n, (sink, lane))| {
            // Spread over the period, so the rate is even rather than in bursts of `clients`.
            let offset = period.mul_f64(n as f64 / clients as f64);
            tokio::spawn(pace(sink, lane, epoch, start + offset, period, per_client))
        })
        .collect();
    let mut sinks = Vec::with_capacity(clients);
    for sender in paced {
        sinks.push(sender.await??);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = server.usage()?.cpu_seconds - cpu;
    let mut latencies: Vec<u32> = lanes
        .iter()
        .flat_map(|lane| {
            std::mem::take(
                &mut *lane
                    .latencies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            )
        })
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| -> f64 {
        let index = ((latencies.len().saturating_sub(1)) as f64 * q).round() as usize;
        latencies
            .get(index)
            .map_or(f64::NAN, |&micros| f64::from(micros) / 1000.0)
    };
    println!(
        "camus_load: {clients} clients paced at {rate}/s in all for {:.1} s: {} of {} relayed; send → receipt p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server {:.0} % of one core",
        seconds.as_secs_f64(),
        received() - before,
        per_client * clients as u64,
        at(0.5),
        at(0.99),
        at(1.0),
        cpu / elapsed * 100.0,
    );
    for reader in readers {
        reader.abort();
    }
    drop(sinks);
    Ok(())
}
