//! Launching rendering instances: the [`InstanceLauncher`] trait, the [`ProcessLauncher`]
//! that runs a command per instance, and the [`TestLauncher`] for tests.
//!
//! A launcher starts an instance and reports, through its [`InstanceEvents`], when the
//! instance is ready and when it has exited; the supervisor controls it through the
//! [`InstanceControl`] it returned.

use crate::slots::Instance;
use async_trait::async_trait;
use std::{net::SocketAddr, process::Stdio, time::Duration};
use tokio::sync::mpsc;

/// Everything an instance is launched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The slot and launch.
    pub instance: Instance,
    /// Its API WebSocket port (4682 + slot by default).
    pub api_port: u16,
    /// Its WebRTC peer id on the signaling server (the slot).
    pub webrtc_id: u32,
    /// The width to render at.
    pub width: u32,
    /// The height to render at.
    pub height: u32,
    /// The signaling server's URL.
    pub signaling_url: String,
    /// The token that lets it register `webrtc_id` with the signaling server.
    pub token: String,
}

/// What happened to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceEvent {
    /// Its readiness probe succeeded.
    Ready,
    /// It exited (or never started), with a description.
    Exited(String),
}

/// Where a launched instance reports its readiness and exit.
#[derive(Debug, Clone)]
pub struct InstanceEvents {
    instance: Instance,
    events: mpsc::UnboundedSender<(Instance, InstanceEvent)>,
}

impl InstanceEvents {
    pub(crate) fn new(
        instance: Instance,
        events: mpsc::UnboundedSender<(Instance, InstanceEvent)>,
    ) -> Self {
        Self { instance, events }
    }

    /// The instance is ready.
    pub fn ready(&self) {
        let _ = self.events.send((self.instance, InstanceEvent::Ready));
    }

    /// The instance exited.
    pub fn exited(&self, how: impl Into<String>) {
        let _ = self
            .events
            .send((self.instance, InstanceEvent::Exited(how.into())));
    }
}

/// Controls a launched instance. Each call returns at once; the outcome shows as events.
pub trait InstanceControl: Send {
    /// Asks it to end (SIGTERM).
    fn terminate(&mut self);
    /// Ends it now (SIGKILL).
    fn kill(&mut self);
    /// Renders at `width` × `height` from now on.
    fn resize(&mut self, width: u32, height: u32);
}

/// Starts rendering instances.
#[async_trait]
pub trait InstanceLauncher: Send + Sync + 'static {
    /// Launches an instance; it reports to `events`. An error means it never started.
    async fn launch(
        &self,
        spec: InstanceSpec,
        events: InstanceEvents,
    ) -> Result<Box<dyn InstanceControl>, LaunchError>;
}

/// An instance could not be launched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot launch the instance: {0}")]
pub struct LaunchError(pub String);

/// Runs a command per instance. The command is a template whose words may hold `{id}`,
/// `{api_port}`, `{webrtc_id}`, `{width}`, `{height}`, `{signaling_url}` and `{token}`; it
/// is split on whitespace before substitution and run without a shell, so no value can
/// inject anything. The instance is ready when a TCP connection to its API port succeeds
/// (tried every [`probe_interval`](Self::probe_interval)). Resizing runs `resize_command`
/// (the same placeholders), or, without one, restarts the process at the new size.
#[derive(Debug, Clone)]
pub struct ProcessLauncher {
    command: Vec<String>,
    resize_command: Option<Vec<String>>,
    /// How often the API port is tried until it accepts a connection. Default 200 ms.
    pub probe_interval: Duration,
    /// Where the API port is probed. Default 127.0.0.1.
    pub probe_host: std::net::IpAddr,
}

impl ProcessLauncher {
    /// Runs `command` (a template, see the type's docs) for each instance.
    pub fn new(command: &str) -> Result<Self, LaunchError> {
        let command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        if command.is_empty() {
            return Err(LaunchError("the instance command is empty".into()));
        }
        Ok(Self {
            command,
            resize_command: None,
            probe_interval: Duration::from_millis(200),
            probe_host: [127, 0, 0, 1].into(),
        })
    }

    /// Resizes running instances with this command template instead of restarting them.
    pub fn with_resize_command(mut self, command: &str) -> Self {
        let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        self.resize_command = (!words.is_empty()).then_some(words);
        self
    }
}

/// The template's words with the spec's values in place.
fn expand(template: &[String], spec: &InstanceSpec) -> Vec<String> {
    template
        .iter()
        .map(|word| {
            word.replace("{id}", &spec.instance.slot.to_string())
                .replace("{api_port}", &spec.api_port.to_string())
                .replace("{webrtc_id}", &spec.webrtc_id.to_string())
                .replace("{width}", &spec.width.to_string())
                .replace("{height}", &spec.height.to_string())
                .replace("{signaling_url}", &spec.signaling_url)
                .replace("{token}", &spec.token)
        })
        .collect()
}

fn spawn(words: &[String]) -> std::io::Result<tokio::process::Child> {
    let (program, args) = words
        .split_first()
        .ok_or(std::io::ErrorKind::InvalidInput)?;
    tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

/// What the supervisor asks of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Terminate,
    Kill,
    Resize(u32, u32),
}

struct ProcessControl(mpsc::UnboundedSender<Control>);

impl InstanceControl for ProcessControl {
    fn terminate(&mut self) {
        let _ = self.0.send(Control::Terminate);
    }
    fn kill(&mut self) {
        let _ = self.0.send(Control::Kill);
    }
    fn resize(&mut self, width: u32, height: u32) {
        let _ = self.0.send(Control::Resize(width, height));
    }
}

#[async_trait]
impl InstanceLauncher for ProcessLauncher {
    async fn launch(
        &self,
        spec: InstanceSpec,
        events: InstanceEvents,
    ) -> Result<Box<dyn InstanceControl>, LaunchError> {
        let child = spawn(&expand(&self.command, &spec))
            .map_err(|error| LaunchError(format!("{}: {error}", self.command[0])))?;
        let (control, controls) = mpsc::unbounded_channel();
        tokio::spawn(supervise(self.clone(), spec, child, controls, events));
        Ok(Box::new(ProcessControl(control)))
    }
}

/// Watches one instance's process: probes its readiness, passes on signals, restarts it to
/// resize when there is no resize command, and reports its exit.
async fn supervise(
    launcher: ProcessLauncher,
    mut spec: InstanceSpec,
    mut child: tokio::process::Child,
    mut controls: mpsc::UnboundedReceiver<Control>,
    events: InstanceEvents,
) {
    let probe_at = SocketAddr::new(launcher.probe_host, spec.api_port);
    let mut ready = false;
    let mut ending = false;
    let mut probe = tokio::time::interval(launcher.probe_interval);
    loop {
        tokio::select! {
            exit = child.wait() => {
                let how = match exit {
                    Ok(status) => status.to_string(),
                    Err(error) => error.to_string(),
                };
                events.exited(how);
                return;
            }
            control = controls.recv() => match control {
                Some(Control::Terminate) => {
                    ending = true;
                    signal_terminate(&child);
                }
                Some(Control::Kill) | None => {
                    ending = true;
                    let _ = child.start_kill();
                }
                Some(Control::Resize(width, height)) => {
                    spec.width = width;
                    spec.height = height;
                    match &launcher.resize_command {
                        Some(template) => match spawn(&expand(template, &spec)) {
                            Ok(mut resizer) => {
                                tokio::spawn(async move { let _ = resizer.wait().await; });
                            }
                            Err(error) => tracing::warn!(%error, slot = spec.instance.slot, "resize command failed"),
                        },
                        None if !ending => {
                            // Restart at the new size: the slot stays taken meanwhile.
                            let _ = child.start_kill();
                            let _ = child.wait().await;
                            match spawn(&expand(&launcher.command, &spec)) {
                                Ok(fresh) => child = fresh,
                                Err(error) => {
                                    events.exited(format!("restart to resize failed: {error}"));
                                    return;
                                }
                            }
                        }
                        None => {}
                    }
                }
            },
            _ = probe.tick(), if !ready && !ending => {
                // A retry timer: an instance's API port gives no event when it opens.
                if tokio::net::TcpStream::connect(probe_at).await.is_ok() {
                    ready = true;
                    events.ready();
                }
            }
        }
    }
}

#[cfg(unix)]
fn signal_terminate(child: &tokio::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

#[cfg(not(unix))]
fn signal_terminate(child: &tokio::process::Child) {
    let _ = child;
}

/// A launcher for tests: it starts nothing, records each launch and the controls sent to
/// each instance, and lets the test say when an instance is ready or exits.
#[derive(Debug, Clone, Default)]
pub struct TestLauncher {
    launched: std::sync::Arc<std::sync::Mutex<Vec<(InstanceSpec, InstanceEvents)>>>,
    controls: std::sync::Arc<std::sync::Mutex<Vec<(Instance, String)>>>,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

impl TestLauncher {
    /// A launcher that has launched nothing.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until `count` instances have been launched; returns their specs.
    pub async fn launched(&self, count: usize) -> Vec<InstanceSpec> {
        loop {
            let notified = self.notify.notified();
            {
                let launched = Self::lock(&self.launched);
                if launched.len() >= count {
                    return launched.iter().map(|(spec, _)| spec.clone()).collect();
                }
            }
            notified.await;
        }
    }

    fn events_of(&self, slot: u32) -> Option<InstanceEvents> {
        Self::lock(&self.launched)
            .iter()
            .rev()
            .find(|(spec, _)| spec.instance.slot == slot)
            .map(|(_, events)| events.clone())
    }

    /// The latest instance of `slot` became ready.
    pub fn make_ready(&self, slot: u32) {
        if let Some(events) = self.events_of(slot) {
            events.ready();
        }
    }

    /// The latest instance of `slot` exited.
    pub fn make_exit(&self, slot: u32) {
        if let Some(events) = self.events_of(slot) {
            events.exited("exited (test)");
        }
    }

    /// Waits until `count` controls have been sent; returns them as `(instance, what)`, what
    /// being `terminate`, `kill` or `resize WxH`.
    pub async fn controls(&self, count: usize) -> Vec<(Instance, String)> {
        loop {
            let notified = self.notify.notified();
            {
                let controls = Self::lock(&self.controls);
                if controls.len() >= count {
                    return controls.clone();
                }
            }
            notified.await;
        }
    }
}

struct TestControl {
    instance: Instance,
    launcher: TestLauncher,
}

impl TestControl {
    fn record(&self, what: String) {
        TestLauncher::lock(&self.launcher.controls).push((self.instance, what));
        self.launcher.notify.notify_waiters();
    }
}

impl InstanceControl for TestControl {
    fn terminate(&mut self) {
        self.record("terminate".into());
    }
    fn kill(&mut self) {
        self.record("kill".into());
    }
    fn resize(&mut self, width: u32, height: u32) {
        self.record(format!("resize {width}x{height}"));
    }
}

#[async_trait]
impl InstanceLauncher for TestLauncher {
    async fn launch(
        &self,
        spec: InstanceSpec,
        events: InstanceEvents,
    ) -> Result<Box<dyn InstanceControl>, LaunchError> {
        let instance = spec.instance;
        Self::lock(&self.launched).push((spec, events));
        self.notify.notify_waiters();
        Ok(Box::new(TestControl {
            instance,
            launcher: self.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_each_word_without_a_shell() {
        let spec = InstanceSpec {
            instance: Instance {
                slot: 2,
                generation: 1,
            },
            api_port: 4684,
            webrtc_id: 2,
            width: 1920,
            height: 1080,
            signaling_url: "ws://127.0.0.1:8443".into(),
            token: "t.o.k; rm -rf /".into(),
        };
        let launcher = ProcessLauncher::new(
            "openspace --port {api_port} --size {width}x{height} --peer {webrtc_id} --signaling {signaling_url} --token {token}",
        )
        .expect("a command");
        assert_eq!(
            expand(&launcher.command, &spec),
            [
                "openspace",
                "--port",
                "4684",
                "--size",
                "1920x1080",
                "--peer",
                "2",
                "--signaling",
                "ws://127.0.0.1:8443",
                "--token",
                "t.o.k; rm -rf /"
            ]
        );
        assert!(ProcessLauncher::new("   ").is_err());
    }
}
