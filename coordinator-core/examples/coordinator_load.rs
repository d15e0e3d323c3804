//! Load generator for the coordinator: prints numbers, asserts nothing.
//!
//! ```text
//! cargo run --release -p coordinator-core --example coordinator_load -- [REQUESTS] [SERVER_LINKS] [BACKLOG]
//! ```
//! First, BACKLOG events (default 20,000) are put in the outbox before the coordinator starts,
//! as after a receiver outage, and the time to deliver them all is measured.
//! A coordinator (SQLite outbox in a temporary directory) runs in this process with a local
//! key-verification webhook and callback receiver (axum, answering 200). One encoder link with
//! unlimited capacity closes each stream as soon as it is told to stop. SERVER_LINKS streaming
//! server links (default 8) each publish in a loop: PUBLISH-REQUEST, wait for PUBLISH-ACCEPT
//! (the round trip measured: link → coordinator → webhook → coordinator → store → link), then
//! PUBLISH-END. Every stream produces one stream-closed callback through the durable outbox;
//! the run ends when all are delivered. Everything shares this machine's cores. `OUTBOX=memory`
//! runs the same with the in-memory store.

use axum::{Router, extract::State, http::StatusCode, routing::post};
use coordinator_core::{
    Coordinator, CoordinatorConfig, Secret, Webhook, WebhookAuth,
    peers::control_token,
    proto::{ControlMessage, LinkRole, StreamEvent},
    store::{Change, SqlStore},
};
use futures::{SinkExt as _, StreamExt as _};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{net::TcpStream, sync::Notify};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest},
};

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &str = "load-secret";

#[derive(Default)]
struct Receiver {
    verifications: AtomicU64,
    callbacks: AtomicU64,
    all_delivered: Notify,
    expected: AtomicU64,
}

async fn verify(State(state): State<Arc<Receiver>>) -> StatusCode {
    state.verifications.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

async fn event(State(state): State<Arc<Receiver>>) -> StatusCode {
    let delivered = state.callbacks.fetch_add(1, Ordering::Relaxed) + 1;
    if delivered == state.expected.load(Ordering::Relaxed) {
        state.all_delivered.notify_one();
    }
    StatusCode::OK
}

async fn link(addr: SocketAddr, role: LinkRole, segment: &str) -> Result<Socket, Failure> {
    let mut request = format!("ws://{addr}/ws/control/{segment}").into_client_request()?;
    let token = control_token(&Secret::new(SECRET), role)?;
    request
        .headers_mut()
        .insert("x-control-auth-token", token.parse()?);
    // TCP_NODELAY, as the coordinator's own peers do.
    Ok(
        tokio_tungstenite::connect_async_with_config(request, None, true)
            .await?
            .0,
    )
}

async fn next_message(socket: &mut Socket) -> Result<ControlMessage, Failure> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message = ControlMessage::parse(text.as_str())?;
                if message.method() != "HEARTBEAT" {
                    return Ok(message);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => return Err("link closed".into()),
        }
    }
}

/// The encoder: closes each stream when told to stop.
async fn encoder(mut socket: Socket) -> Result<(), Failure> {
    socket
        .send(Message::text("REGISTER\nCapacity: 0".to_owned()))
        .await?;
    loop {
        let message = next_message(&mut socket).await?;
        if message.method() == "ENCODE-STOP" {
            let closed = format!(
                "STREAM-CLOSED\nStream-Channel: {}\nStream-ID: {}",
                message.header("Stream-Channel").unwrap_or_default(),
                message.header("Stream-ID").unwrap_or_default()
            );
            socket.send(Message::text(closed)).await?;
        }
    }
}

/// One streaming server: `count` publishes, one at a time; returns each round trip.
async fn server(mut socket: Socket, id: usize, count: usize) -> Result<Vec<Duration>, Failure> {
    let mut round_trips = Vec::with_capacity(count);
    for n in 0..count {
        let channel = format!("c{id}-{n}");
        let request = format!(
            "PUBLISH-REQUEST\nRequest-ID: {n}\nStream-Channel: {channel}\nStream-Key: k\nUser-IP: 127.0.0.1"
        );
        let started = Instant::now();
        socket.send(Message::text(request)).await?;
        let answer = next_message(&mut socket).await?;
        round_trips.push(started.elapsed());
        if answer.method() != "PUBLISH-ACCEPT" {
            return Err(format!("expected PUBLISH-ACCEPT, got {answer:?}").into());
        }
        let end = format!(
            "PUBLISH-END\nStream-Channel: {channel}\nStream-ID: {}",
            answer.header("Stream-ID").unwrap_or_default()
        );
        socket.send(Message::text(end)).await?;
    }
    Ok(round_trips)
}

async fn wait_for_callbacks(receiver: &Receiver) -> Result<(), Failure> {
    tokio::time::timeout(Duration::from_secs(600), receiver.all_delivered.notified())
        .await
        .map_err(|_| "callbacks not all delivered within 10 minutes".into())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let links: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let backlog: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| "a crypto provider was installed already")?;

    let receiver = Arc::new(Receiver::default());
    let per_link = requests.div_ceil(links);
    let total = per_link * links;
    receiver.expected.store(backlog as u64, Ordering::Relaxed);
    let app = Router::new()
        .route("/verify", post(verify))
        .route("/events", post(event))
        .with_state(receiver.clone());
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_addr = app_listener.local_addr()?;
    tokio::spawn(async move { axum::serve(app_listener, app).await });

    let dir = tempfile::tempdir()?;
    // OUTBOX=memory compares with the store out of the way.
    let memory = std::env::var("OUTBOX").is_ok_and(|v| v == "memory");
    let store: Arc<dyn coordinator_core::store::Store> = if memory {
        Arc::new(coordinator_core::store::MemoryStore::new())
    } else {
        Arc::new(SqlStore::sqlite(dir.path().join("coordinator.sqlite3")).await?)
    };
    let mut config = CoordinatorConfig::default();
    config.http_port = 0;
    config.bind_address = [127, 0, 0, 1].into();
    config.control_secret = Some(Secret::new(SECRET));
    config.log_requests = false;
    config.key_verification = Some(Webhook {
        url: format!("http://{app_addr}/verify"),
        auth: WebhookAuth::None,
    });
    config.event_callback = Some(Webhook {
        url: format!("http://{app_addr}/events"),
        auth: WebhookAuth::None,
    });
    let events: Vec<Change> = (0..backlog)
        .map(|n| {
            Change::Event(StreamEvent::Closed {
                channel: "backlog".into(),
                stream_id: format!("s{n}"),
            })
        })
        .collect();
    for chunk in events.chunks(1000) {
        store.record(chunk, 0).await?;
    }
    let coordinator = Coordinator::bind(config, store).await?;
    let draining = Instant::now();
    let addr = coordinator.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(coordinator.run(Router::new(), async move {
        let _ = stopped.await;
    }));

    if backlog > 0 {
        wait_for_callbacks(&receiver).await?;
        let drained = draining.elapsed().as_secs_f64();
        println!(
            "outbox backlog: {backlog} events delivered in {drained:.2} s ({:.0}/s)",
            backlog as f64 / drained
        );
    }
    receiver.callbacks.store(0, Ordering::Relaxed);
    receiver.expected.store(total as u64, Ordering::Relaxed);

    let mut encoder_link = link(addr, LinkRole::Encoder, "hls").await?;
    // REGISTER, then a message that gets an answer: the registration is in once it arrives.
    encoder_link
        .send(Message::text("REGISTER\nCapacity: 0".to_owned()))
        .await?;
    encoder_link.send(Message::text("SYNC".to_owned())).await?;
    next_message(&mut encoder_link).await?;
    tokio::spawn(encoder(encoder_link));
    let mut sockets = Vec::new();
    for _ in 0..links {
        sockets.push(link(addr, LinkRole::RtmpServer, "rtmp").await?);
    }

    let outbox = if memory { "memory" } else { "SQLite" };
    println!("coordinator_load: {total} publishes over {links} server links, {outbox} outbox");
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(id, socket)| tokio::spawn(server(socket, id, per_link)))
        .collect();
    let mut round_trips = Vec::with_capacity(total);
    for task in tasks {
        round_trips.extend(task.await??);
    }
    let publishing = started.elapsed();
    tokio::time::timeout(Duration::from_secs(600), receiver.all_delivered.notified())
        .await
        .map_err(|_| "callbacks not all delivered within 10 minutes")?;
    let delivering = started.elapsed();
    round_trips.sort();

    let rate = total as f64 / publishing.as_secs_f64();
    println!(
        "PUBLISH-REQUEST → PUBLISH-ACCEPT: {rate:.0}/s ({total} in {:.2} s)",
        publishing.as_secs_f64()
    );
    println!(
        "round trip: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&round_trips, 0.50).as_secs_f64() * 1e3,
        percentile(&round_trips, 0.99).as_secs_f64() * 1e3,
        percentile(&round_trips, 1.0).as_secs_f64() * 1e3
    );
    println!(
        "verification webhook calls: {}",
        receiver.verifications.load(Ordering::Relaxed)
    );
    println!(
        "stream-closed callbacks through the outbox: {} delivered, {:.0}/s overall; the last {:.2} s after the last accept",
        receiver.callbacks.load(Ordering::Relaxed),
        total as f64 / delivering.as_secs_f64(),
        (delivering - publishing).as_secs_f64()
    );
    let _ = stop.send(());
    running.await??;
    Ok(())
}
