//! Load generator for the Open360 hub: prints numbers, asserts nothing.
//!
//! ```text
//! cargo run --release -p open360-protocol --example hub_load -- [SENDERS] [MESSAGES] [RATE]
//! ```
//! The hub runs in a child process (this program with `serve`, logging to memory) so that its
//! CPU is measured alone from /proc; the services are our `SocketIoTransport` links in this
//! process, sharing the cores. Two runs:
//! - throughput: SENDERS services (default 4) each send MESSAGES (default 50,000) one-way
//!   `api-message`s to one receiving service as fast as they can; relayed messages per second;
//! - latency: one sender paced at RATE messages per second (default 10,000) for 5 s; the time
//!   from sending to receipt, p50/p99/max.

use open360_protocol::{
    ApiMessage, Hub, HubConfig, Link, Package, SocketIoTransport, Transport, log::MemoryLog,
};
use serde_json::json;
use std::{
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

type Failure = Box<dyn std::error::Error + Send + Sync>;

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
    let (senders, messages, rate) = (number(0, 4)?, number(1, 50_000)?, number(2, 10_000)?);
    let (mut child, url, pid) = start_hub().await?;
    throughput(&url, pid, senders, messages).await?;
    latency(&url, rate).await?;
    child.kill().await?;
    Ok(())
}

async fn serve() -> Result<(), Failure> {
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse()?;
    let hub = Hub::bind(config, Arc::new(MemoryLog::new())).await?;
    println!("listening {}", hub.local_addr()?);
    hub.run(axum::Router::new(), std::future::pending()).await?;
    Ok(())
}

async fn start_hub() -> Result<(tokio::process::Child, String, u32), Failure> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the hub exited")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(addr) = line.strip_prefix("listening ") {
            return Ok((child, format!("http://{addr}"), pid));
        }
    }
    Err("the hub never announced its address".into())
}

async fn link(url: &str, label: &str) -> Result<Link, Failure> {
    Ok(SocketIoTransport::new(url, None).connect(label).await?)
}

fn message(from: &str, sent_ns: u64) -> ApiMessage {
    let package = Package::new("load", json!({ "sentNs": sent_ns }));
    ApiMessage::message(from, "sink-api", package)
}

async fn throughput(url: &str, pid: u32, senders: usize, messages: usize) -> Result<(), Failure> {
    let mut sink = link(url, "sink-api").await?;
    let mut links = Vec::new();
    for n in 0..senders {
        links.push(link(url, &format!("source-{n}")).await?);
    }
    let total = senders * messages;
    let cpu_before = harness::usage(pid)?.cpu_seconds;
    let started = Instant::now();
    for (n, source) in links.iter().enumerate() {
        let send = source.send.clone();
        let from = format!("source-{n}");
        tokio::spawn(async move {
            for _ in 0..messages {
                if send.send(message(&from, 0)).await.is_err() {
                    return;
                }
            }
        });
    }
    let mut received = 0;
    while received < total {
        match tokio::time::timeout(Duration::from_secs(10), sink.receive.recv()).await {
            Ok(Some(_)) => received += 1,
            _ => break,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = harness::usage(pid)?.cpu_seconds - cpu_before;
    println!(
        "hub_load throughput: {senders} senders × {messages}: {received} of {total} relayed in {elapsed:.2} s = {:.0} messages/s; hub {cpu:.2} CPU s ({:.0} % of one core)",
        received as f64 / elapsed,
        cpu / elapsed * 100.0
    );
    Ok(())
}

async fn latency(url: &str, rate: usize) -> Result<(), Failure> {
    let mut sink = link(url, "sink-api").await?;
    let source = link(url, "paced").await?;
    let seconds = 5;
    let total = rate * seconds;
    let origin = Instant::now();
    let send = source.send.clone();
    tokio::spawn(async move {
        // Sends in 1 ms batches, each when its time comes.
        let per_tick = rate.div_ceil(1000).max(1);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut sent = 0;
        while sent < total {
            tick.tick().await;
            for _ in 0..per_tick.min(total - sent) {
                let now = origin.elapsed().as_nanos() as u64;
                if send.send(message("paced", now)).await.is_err() {
                    return;
                }
                sent += 1;
            }
        }
    });
    let mut latencies = Vec::with_capacity(total);
    while latencies.len() < total {
        match tokio::time::timeout(Duration::from_secs(10), sink.receive.recv()).await {
            Ok(Some(message)) => {
                let sent = message.package.data["sentNs"].as_u64().unwrap_or(0);
                let now = origin.elapsed().as_nanos() as u64;
                latencies.push(now.saturating_sub(sent) as f64 / 1e6);
            }
            _ => break,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    if latencies.is_empty() {
        return Err("nothing arrived".into());
    }
    println!(
        "hub_load latency at {rate}/s for {seconds} s: {} of {total} relayed; send → receipt p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
