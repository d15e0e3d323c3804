//! Load generator for the RTMP server: prints numbers, asserts nothing.
//!
//! ```text
//! cargo run --release -p media-ingest --example fanout_load -- players [MAX]      # 1 publisher → N players
//! cargo run --release -p media-ingest --example fanout_load -- publishers [N]     # N publishers, HLS on
//! ```
//! The server runs in a child process (this program with `serve`), so its CPU and memory are
//! measured alone from /proc. ffmpeg publishes a looped 2 Mbps 640x360 stream (`-c copy`). The
//! players are Rust RTMP clients that play and then only count bytes; they run on the same
//! machine, so they take CPU from the server's cores too.

use media_ingest::{
    HlsConfig, HlsOutput, IngestConfig, IngestEvent, IngestServer, danger::AcceptAnyKey,
};
use rml_rtmp::{
    handshake::{Handshake, HandshakeProcessResult, PeerType},
    sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult},
};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, ChildStdout, Command},
    sync::mpsc,
};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(args.get(1).map(PathBuf::from)).await,
        Some("publishers") => publishers(args.get(1).map_or(Ok(50), |n| n.parse())?).await,
        _ => players(args.get(1).map_or(Ok(2000), |n| n.parse())?).await,
    }
}

/// The server under measurement: every key accepted; HLS for every stream when `hls` is given.
/// It prints `listening rtmp <addr>`, then `published <key>` for each accepted publisher.
async fn serve(hls: Option<PathBuf>) -> Result<(), Failure> {
    let mut config = IngestConfig::default();
    config.rtmp_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.max_connections = 10_000;
    let server = IngestServer::bind(config, Arc::new(AcceptAnyKey)).await?;
    if let Some(root) = hls {
        let mut reports = server
            .handle()
            .package_every_stream(HlsConfig::default(), move |stream, _, _| {
                Some(HlsOutput::new(root.join(&stream.key)))
            });
        tokio::spawn(async move { while reports.recv().await.is_some() {} });
    }
    let mut events = server.handle().events();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let IngestEvent::PostPublish { stream, .. } = event {
                println!("published {}", stream.key);
            }
        }
    });
    println!("listening rtmp {}", server.local_addr());
    // Until the parent closes our stdin (or dies).
    let stop = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    server.run(stop).await?;
    Ok(())
}

struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Server {
    /// Waits until the server has announced `count` accepted publishers.
    async fn published(&mut self, count: usize) -> Result<(), Failure> {
        let mut seen = 0;
        while seen < count {
            match tokio::time::timeout(Duration::from_secs(60), self.lines.next_line()).await {
                Ok(Ok(Some(line))) if line.starts_with("published ") => seen += 1,
                Ok(Ok(Some(_))) => {}
                Ok(_) => return Err("the server ended".into()),
                Err(_) => {
                    return Err(format!("{seen} of {count} publishers accepted within 60 s").into());
                }
            }
        }
        Ok(())
    }
}

async fn start_server(hls: Option<&Path>) -> Result<Server, Failure> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("serve");
    if let Some(dir) = hls {
        command.arg(dir);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the server exited")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(addr) = line.strip_prefix("listening rtmp ") {
            return Ok(Server {
                child,
                pid,
                addr: addr.parse()?,
                lines,
            });
        }
    }
    Err("the server never announced its address".into())
}

async fn make_input(dir: &Path) -> Result<PathBuf, Failure> {
    let input = dir.join("input.flv");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=20",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=20",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "1900k", "-maxrate",
            "2000k", "-bufsize", "4000k",
        ])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv"])
        .arg(&input)
        .status()
        .await?;
    if status.success() {
        Ok(input)
    } else {
        Err("ffmpeg could not make the input".into())
    }
}

fn publish(input: &Path, url: &str) -> Result<Child, Failure> {
    Ok(Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(input)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

/// CPU seconds and resident bytes of the server.
fn usage(pid: u32) -> Result<(f64, u64), Failure> {
    let usage = harness::usage(pid)?;
    Ok((usage.cpu_seconds, usage.resident_bytes))
}

async fn players(max: usize) -> Result<(), Failure> {
    let dir = tempdir()?;
    let input = make_input(&dir).await?;
    let mut server = start_server(None).await?;
    let url = format!("rtmp://{}/live/load", server.addr);
    let _publisher = publish(&input, &url)?;
    server.published(1).await?;

    let received = Arc::new(AtomicU64::new(0));
    let playing = Arc::new(AtomicUsize::new(0));
    // Each player says once whether it got to play.
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<bool>();
    let mut failed = 0;
    println!(
        "players  playing  server CPU %  delivered Mbps  per player kbps  CPU % per Gbps  server RSS MiB"
    );
    let mut started = 0;
    for target in [50, 100, 250, 500, 1000, 1500, 2000, 3000]
        .into_iter()
        .filter(|n| *n <= max)
    {
        let new = target - started;
        while started < target {
            let (received, playing, started_tx) = (
                Arc::clone(&received),
                Arc::clone(&playing),
                started_tx.clone(),
            );
            let addr = server.addr;
            tokio::spawn(
                async move { player(addr, "load", &received, &playing, &started_tx).await },
            );
            started += 1;
        }
        // Measure once every new player is playing (or has failed to).
        for _ in 0..new {
            match tokio::time::timeout(Duration::from_secs(60), started_rx.recv()).await {
                Ok(Some(true)) => {}
                Ok(Some(false)) => failed += 1,
                _ => return Err("players did not answer within 60 s".into()),
            }
        }
        // The measurement window.
        let (cpu_before, _) = usage(server.pid)?;
        let bytes_before = received.load(Ordering::Relaxed);
        let window = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let seconds = window.elapsed().as_secs_f64();
        let (cpu_after, rss) = usage(server.pid)?;
        let cpu = (cpu_after - cpu_before) / seconds * 100.0;
        let mbps = (received.load(Ordering::Relaxed) - bytes_before) as f64 * 8.0 / seconds / 1e6;
        let now_playing = playing.load(Ordering::Relaxed);
        println!(
            "{target:>7}  {now_playing:>7}  {cpu:>12.1}  {mbps:>14.1}  {:>15.0}  {:>14.1}  {:>14.1}",
            mbps * 1000.0 / now_playing.max(1) as f64,
            cpu / (mbps / 1000.0).max(1e-9),
            rss as f64 / (1 << 20) as f64
        );
        if cpu > 160.0 || failed > 0 {
            println!(
                "stopping: server CPU above 80 % of both cores, or players failing ({failed} failed)"
            );
            break;
        }
    }
    drop(server.child);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A player of `key`: it plays, says so on `started`, then only counts what arrives.
async fn player(
    addr: SocketAddr,
    key: &str,
    received: &AtomicU64,
    playing: &AtomicUsize,
    started: &mpsc::UnboundedSender<bool>,
) {
    let Ok((mut stream, mut buffer)) = play(addr, key).await else {
        let _ = started.send(false);
        return;
    };
    playing.fetch_add(1, Ordering::Relaxed);
    let _ = started.send(true);
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        received.fetch_add(read as u64, Ordering::Relaxed);
    }
    playing.fetch_sub(1, Ordering::Relaxed);
}

/// Connects, completes the handshake, connects to `live` and plays `key`.
async fn play(addr: SocketAddr, key: &str) -> Result<(TcpStream, Vec<u8>), Failure> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut handshake = Handshake::new(PeerType::Client);
    stream
        .write_all(
            &handshake
                .generate_outbound_p0_and_p1()
                .map_err(|e| format!("{e:?}"))?,
        )
        .await?;
    let mut buffer = vec![0u8; 64 << 10];
    let leftover = loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Err("closed during the handshake".into());
        }
        match handshake
            .process_bytes(&buffer[..read])
            .map_err(|e| format!("{e:?}"))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream.write_all(&response_bytes).await?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                stream.write_all(&response_bytes).await?;
                break remaining_bytes;
            }
        }
    };
    let (mut session, initial) =
        ClientSession::new(ClientSessionConfig::new()).map_err(|e| format!("{e:?}"))?;
    send(&mut stream, initial).await?;
    let mut pending = session
        .handle_input(&leftover)
        .map_err(|e| format!("{e:?}"))?;
    let connect = session
        .request_connection("live".into())
        .map_err(|e| format!("{e:?}"))?;
    pending.push(connect);
    await_event(&mut stream, &mut session, pending, |e| {
        matches!(e, ClientSessionEvent::ConnectionRequestAccepted)
    })
    .await?;
    let play = session
        .request_playback(key.into())
        .map_err(|e| format!("{e:?}"))?;
    await_event(&mut stream, &mut session, vec![play], |e| {
        matches!(e, ClientSessionEvent::PlaybackRequestAccepted)
    })
    .await?;
    Ok((stream, buffer))
}

async fn send(stream: &mut TcpStream, results: Vec<ClientSessionResult>) -> Result<(), Failure> {
    for result in results {
        if let ClientSessionResult::OutboundResponse(packet) = result {
            stream.write_all(&packet.bytes).await?;
        }
    }
    Ok(())
}

async fn await_event(
    stream: &mut TcpStream,
    session: &mut ClientSession,
    mut results: Vec<ClientSessionResult>,
    wanted: impl Fn(&ClientSessionEvent) -> bool,
) -> Result<(), Failure> {
    let mut buffer = vec![0u8; 16 << 10];
    loop {
        let found = results
            .iter()
            .any(|r| matches!(r, ClientSessionResult::RaisedEvent(e) if wanted(e)));
        send(stream, results).await?;
        if found {
            return Ok(());
        }
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Err("closed before the expected answer".into());
        }
        results = session
            .handle_input(&buffer[..read])
            .map_err(|e| format!("{e:?}"))?;
    }
}

async fn publishers(count: usize) -> Result<(), Failure> {
    let dir = tempdir()?;
    let input = make_input(&dir).await?;
    let hls = dir.join("hls");
    let mut server = start_server(Some(&hls)).await?;
    let mut children = Vec::new();
    for n in 0..count {
        children.push(publish(
            &input,
            &format!("rtmp://{}/live/publisher-{n}", server.addr),
        )?);
    }
    server.published(count).await?;
    println!("{count} publishers at ~2 Mbps each accepted, HLS packaging on; measuring 10 s …");
    // The measurement window.
    let (cpu_before, _) = usage(server.pid)?;
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let seconds = window.elapsed().as_secs_f64();
    let (cpu_after, rss) = usage(server.pid)?;
    let cpu = (cpu_after - cpu_before) / seconds * 100.0;
    let streams = std::fs::read_dir(&hls).map(|d| d.count()).unwrap_or(0);
    println!("streams packaging: {streams}");
    println!(
        "server CPU: {cpu:.1} % in all, {:.2} % per stream",
        cpu / count as f64
    );
    println!(
        "server RSS: {:.1} MiB in all, {:.0} KiB per stream",
        rss as f64 / (1 << 20) as f64,
        rss as f64 / 1024.0 / count as f64
    );
    drop(children);
    drop(server.child);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempdir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("fanout-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
