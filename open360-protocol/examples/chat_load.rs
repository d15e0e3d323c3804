//! Load generator for the Open360 chat: prints numbers, asserts nothing.
//!
//! ```text
//! cargo run --release -p open360-protocol --example chat_load -- [CLIENTS] [MESSAGES]
//! ```
//! CLIENTS (default 1,000) join one room; one of them posts MESSAGES (default 200) as fast as
//! the chat takes them; every client counts what it receives. Reports deliveries per second
//! (messages × receivers) and the chat's resident memory per connected client. The chat runs in
//! a child process (this program with `serve`) so that its CPU and memory are measured alone;
//! the clients are minimal Socket.IO-over-WebSocket clients in this process, on the same cores.

use futures::{SinkExt as _, StreamExt as _};
use open360_protocol::{Chat, ChatConfig};
use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::Command,
    sync::Notify,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve().await;
    }
    let number = |i: usize, default: usize| -> Result<usize, Failure> {
        Ok(args
            .get(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    run(number(0, 1000)?, number(1, 200)?).await
}

async fn serve() -> Result<(), Failure> {
    let mut config = ChatConfig::default();
    config.listen = "127.0.0.1:0".parse()?;
    config.messages_per_second = 1_000_000;
    config.message_burst = 1_000_000;
    let chat = Chat::bind(config, None).await?;
    println!("listening {}", chat.local_addr()?);
    chat.run(axum::Router::new(), std::future::pending())
        .await?;
    Ok(())
}

async fn join(addr: &str, user: usize) -> Result<Ws, Failure> {
    let url =
        format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&channel=bench&user=u{user}");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    while let Some(frame) = ws.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        match text.as_str() {
            t if t.starts_with('0') => ws.send(Message::text("40")).await?,
            "2" => ws.send(Message::text("3")).await?,
            t if t.starts_with("40") => return Ok(ws),
            t if t.starts_with("44") => return Err(format!("refused: {t}").into()),
            _ => {}
        }
    }
    Err("closed while joining".into())
}

async fn run(clients: usize, messages: usize) -> Result<(), Failure> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the chat exited")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or("the chat never announced itself")?;
        if let Some(addr) = line.strip_prefix("listening ") {
            break addr.to_owned();
        }
    };
    let before = harness::usage(pid)?.resident_bytes;
    let mut joined = Vec::with_capacity(clients);
    for n in 0..clients {
        joined.push(join(&addr, n).await?);
    }
    let after = harness::usage(pid)?.resident_bytes;
    println!(
        "chat_load: {clients} clients in one room: chat resident {} MiB → {} MiB, {:.1} KiB per client",
        before >> 20,
        after >> 20,
        after.saturating_sub(before) as f64 / 1024.0 / clients as f64
    );
    let mut poster = joined.pop().ok_or("no clients")?;
    let received = Arc::new(AtomicUsize::new(0));
    let done = Arc::new((AtomicUsize::new(0), Notify::new()));
    let readers = joined.len();
    for mut ws in joined {
        let (received, done) = (received.clone(), done.clone());
        tokio::spawn(async move {
            let mut got = 0;
            while got < messages {
                // Five quiet seconds: the rest is not coming.
                let Ok(next) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await else {
                    break;
                };
                match next {
                    Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                        let _ = ws.send(Message::text("3")).await;
                    }
                    Some(Ok(Message::Text(t))) if t.as_str().starts_with("42[\"chat-message\"") => {
                        got += 1;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            received.fetch_add(got, Ordering::Relaxed);
            if done.0.fetch_add(1, Ordering::AcqRel) + 1 == readers {
                done.1.notify_one();
            }
        });
    }
    let cpu_before = harness::usage(pid)?.cpu_seconds;
    let started = Instant::now();
    for n in 0..messages {
        let event = format!(r#"42["chat-message",{{"message":"message number {n}"}}]"#);
        poster.send(Message::text(event)).await?;
    }
    tokio::time::timeout(Duration::from_secs(300), done.1.notified())
        .await
        .map_err(|_| "the clients did not finish within 5 minutes")?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = harness::usage(pid)?.cpu_seconds - cpu_before;
    let deliveries = received.load(Ordering::Relaxed);
    println!(
        "chat_load: {messages} messages to {readers} readers: {deliveries} of {} delivered in {elapsed:.2} s = {:.0} deliveries/s; chat {cpu:.2} CPU s ({:.0} % of one core)",
        messages * readers,
        deliveries as f64 / elapsed,
        cpu / elapsed * 100.0
    );
    child.kill().await?;
    Ok(())
}
