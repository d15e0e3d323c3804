//! Servers under test: in-process on `127.0.0.1:0`, or as child processes that announce the
//! addresses they bound.
//!
//! Readiness is an event, never a guess: an in-process server's socket is bound (and so accepts
//! connections into its backlog) before [`LocalServer::spawn`] returns, and a child process is
//! ready when it has printed one announcement line per listener:
//!
//! ```text
//! listening <name> <ip:port>
//! ```
//!
//! Every binary of the `examples` crate prints these lines on stdout once its sockets are bound.

use crate::{
    child::{OutputTail, read_lines},
    error::{HarnessError, Result},
};
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    process::{ExitStatus, Stdio},
    time::Duration,
};
use tokio::{
    net::TcpListener,
    process::{Child, Command},
    sync::mpsc,
    task::JoinHandle,
};

/// How long a child process may take to announce its listeners.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A server running inside the test process, on its own task; aborted when dropped.
pub struct LocalServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LocalServer {
    /// Binds `127.0.0.1:0` and runs `serve` with the bound listener on a new task.
    pub async fn spawn<F, Fut>(serve: F) -> Result<Self>
    where
        F: FnOnce(TcpListener) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding 127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("reading the bound address"))?;
        let task = tokio::spawn(serve(listener));
        Ok(Self { addr, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server under test running as a child process; killed if dropped while still running.
pub struct ServerProcess {
    program: String,
    child: Child,
    listeners: HashMap<String, SocketAddr>,
    tail: OutputTail,
}

impl ServerProcess {
    /// Starts `command` and waits until it has announced every listener named in `expect`
    /// (see the module docs), it exits, or [`READY_TIMEOUT`] passes.
    pub async fn spawn(command: Command, expect: &[&str]) -> Result<Self> {
        Self::spawn_within(command, expect, READY_TIMEOUT).await
    }

    /// [`ServerProcess::spawn`] with a readiness deadline of `timeout`.
    pub async fn spawn_within(
        mut command: Command,
        expect: &[&str],
        timeout: Duration,
    ) -> Result<Self> {
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(HarnessError::io(format!("starting {program}")))?;
        let label = short_name(&program);
        let tail = OutputTail::default();
        let (announced, mut announcements) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            read_lines(stdout, label.clone(), tail.clone(), move |line| {
                if let Some(listener) = parse_announcement(line) {
                    // The receiver is gone once the process is ready; later lines only echo.
                    let _ = announced.send(listener);
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            read_lines(stderr, label, tail.clone(), |_| {});
        }

        let mut listeners = HashMap::new();
        let wait = async {
            while !expect.iter().all(|name| listeners.contains_key(*name)) {
                match announcements.recv().await {
                    Some((name, addr)) => {
                        listeners.insert(name, addr);
                    }
                    None => return Err(()),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(())) => Ok(Self {
                program,
                child,
                listeners,
                tail,
            }),
            Ok(Err(())) => {
                // stdout closed before every listener was announced: the process is ending.
                let status = child
                    .wait()
                    .await
                    .map_err(HarnessError::io(format!("waiting for {program}")))?;
                Err(HarnessError::ProcessFailed {
                    program,
                    status,
                    output: tail.text(),
                })
            }
            Err(_) => Err(HarnessError::Timeout {
                what: format!(
                    "{program} to announce {expect:?}; last output:\n{}",
                    tail.text()
                ),
                after: timeout,
            }),
        }
    }

    /// The address announced for `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.get(name).copied()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last lines the process printed.
    pub fn output(&self) -> String {
        self.tail.text()
    }

    /// Sends SIGTERM and waits up to `grace` for the process to exit; kills it after that and
    /// reports a timeout (a server that ignores SIGTERM fails its graceful-shutdown test).
    pub async fn terminate(mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(pid) = self.child.id() {
            signal(pid, nix::sys::signal::Signal::SIGTERM)?;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status.map_err(HarnessError::io(format!("waiting for {}", self.program))),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(HarnessError::Timeout {
                    what: format!(
                        "{} to exit after SIGTERM; last output:\n{}",
                        self.program,
                        self.tail.text()
                    ),
                    after: grace,
                })
            }
        }
    }
}

pub(crate) fn signal(pid: u32, signal: nix::sys::signal::Signal) -> Result<()> {
    let pid = i32::try_from(pid).map_err(|_| HarnessError::Protocol {
        peer: "the operating system",
        detail: format!("process id {pid} does not fit a pid_t"),
    })?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(|errno| {
        HarnessError::Io {
            what: format!("sending {signal} to process {pid}"),
            source: errno.into(),
        }
    })
}

pub(crate) fn short_name(program: &str) -> String {
    program.rsplit('/').next().unwrap_or(program).to_owned()
}

/// `listening <name> <ip:port>` → `(name, addr)`.
fn parse_announcement(line: &str) -> Option<(String, SocketAddr)> {
    let mut words = line.strip_prefix("listening ")?.split_whitespace();
    let name = words.next()?;
    let addr = words.next()?.parse().ok()?;
    words.next().is_none().then(|| (name.to_owned(), addr))
}

/// Waits until something on this machine listens on TCP `port` of the loopback or any address.
///
/// For third-party programs that bind a port without saying so (ffmpeg's `-listen 1`, say) this is
/// the only readiness signal there is; it watches the kernel's socket table every 10 ms rather
/// than waiting a guessed time.
pub async fn wait_for_tcp_listener(port: u16, timeout: Duration) -> Result<()> {
    let watch = async {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
            if is_listening(port).await {
                return;
            }
        }
    };
    tokio::time::timeout(timeout, watch)
        .await
        .map_err(|_| HarnessError::Timeout {
            what: format!("a TCP listener on port {port}"),
            after: timeout,
        })
}

async fn is_listening(port: u16) -> bool {
    const LISTEN: &str = "0A";
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = tokio::fs::read_to_string(table).await else {
            continue;
        };
        for row in text.lines().skip(1) {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let (Some(local), Some(state)) = (columns.get(1), columns.get(3)) else {
                continue;
            };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            if local_port == Some(port) && *state == LISTEN {
                return true;
            }
        }
    }
    false
}

/// Reserves a free TCP port on 127.0.0.1 for a third-party program that cannot bind port 0 and
/// report it.
///
/// The port is drawn at random from below the kernel's ephemeral range, so no listener that binds
/// port 0 and no outgoing connection can be given it between this call and the program's bind;
/// only another caller of this function could, which a random draw among some twenty thousand
/// ports makes unlikely. Use this only where no announcement is possible.
pub fn free_port() -> Result<u16> {
    let (low, high) = unassigned_range();
    let mut rng = rand::rng();
    for _ in 0..64 {
        let port = rand::Rng::random_range(&mut rng, low..high);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let taken = std::io::Error::new(std::io::ErrorKind::AddrInUse, "64 random ports were taken");
    Err(HarnessError::io(
        "finding a free port below the ephemeral range",
    )(taken))
}

/// The ports below the kernel's ephemeral range and above the well-known ones, which nothing on a
/// test machine hands out by itself.
fn unassigned_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (10_000, ephemeral_low.max(12_000))
}

#[cfg(test)]
mod announcements {
    use super::parse_announcement;

    #[test]
    fn well_formed_lines_are_parsed() {
        let (name, addr) = parse_announcement("listening landing 127.0.0.1:8123").expect("parsed");
        assert_eq!(name, "landing");
        assert_eq!(addr.port(), 8123);
        assert!(parse_announcement("listening rtmp [::1]:1935").is_some());
    }

    #[test]
    fn anything_else_is_ignored() {
        for line in [
            "",
            "listening",
            "listening landing",
            "listening landing localhost:80",
            "listening landing 127.0.0.1:80 extra",
            "Listening landing 127.0.0.1:80",
            "  listening landing 127.0.0.1:80",
        ] {
            assert!(parse_announcement(line).is_none(), "{line:?}");
        }
    }
}

/// What a process has used so far, from `/proc` (Linux).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessUsage {
    /// CPU time, user and system, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory, in bytes.
    pub resident_bytes: u64,
}

/// The CPU time and resident memory of process `pid`, for load generators that measure a
/// server running as a child process.
pub fn usage(pid: u32) -> std::io::Result<ProcessUsage> {
    let odd = |what: &str| std::io::Error::other(format!("/proc/{pid}: {what}"));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or_else(|| odd("stat without a command"))?
        .1
        .split_whitespace()
        .collect();
    let ticks = |index: usize| -> std::io::Result<f64> {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .ok_or_else(|| odd("stat without CPU times"))
    };
    // utime and stime, in clock ticks: USER_HZ is 100 on Linux.
    let cpu_seconds = (ticks(11)? + ticks(12)?) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let resident_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| odd("status without VmRSS"))?;
    Ok(ProcessUsage {
        cpu_seconds,
        resident_bytes: resident_kib * 1024,
    })
}
