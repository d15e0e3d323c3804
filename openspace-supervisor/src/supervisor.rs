//! The supervisor: the JSON command API over WebSocket (one command per connection, as the
//! original's clients send them, or many), driving the [`Slots`] and an [`InstanceLauncher`].
//!
//! One task owns the slots and the instances' controls: requests, instance events and timers
//! reach it in order, so no two commands ever race for a slot.

use crate::launcher::{
    InstanceControl, InstanceEvent, InstanceEvents, InstanceLauncher, InstanceSpec,
};
use crate::protocol;
use crate::slots::{Effect, Instance, Notice, Slots};
use crate::{Error, SupervisorConfig};
use futures::{SinkExt as _, StreamExt as _};
use std::{collections::HashMap, future::Future, net::SocketAddr, sync::Arc, time::Instant};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot, watch},
};
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

/// The largest command accepted, in bytes (commands are tiny; this bounds a hostile frame).
pub const MAX_COMMAND_BYTES: usize = 64 << 10;

/// Makes the signaling token an instance registers its peer id with.
pub type TokenIssuer = Arc<dyn Fn(u32) -> String + Send + Sync>;

/// A bound supervisor, ready to [`run`](Supervisor::run).
pub struct Supervisor {
    listener: TcpListener,
    config: SupervisorConfig,
    launcher: Arc<dyn InstanceLauncher>,
    tokens: TokenIssuer,
}

struct Request {
    text: String,
    reply: oneshot::Sender<String>,
}

impl Supervisor {
    /// Validates `config` and binds `config.listen`. Instances are started by `launcher`;
    /// each gets the token `tokens` makes for its peer id (its slot).
    pub async fn bind(
        config: SupervisorConfig,
        launcher: Arc<dyn InstanceLauncher>,
        tokens: TokenIssuer,
    ) -> Result<Self, Error> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen).await?;
        Ok(Self {
            listener,
            config,
            launcher,
            tokens,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then stops every instance (terminate, and kill
    /// after the grace period) before returning.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let (requests, queue) = mpsc::channel::<Request>(256);
        let (stopping, stop) = watch::channel(false);
        let core = tokio::spawn(drive(
            self.config.clone(),
            self.launcher,
            self.tokens,
            queue,
            stop,
        ));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream, peer, requests.clone()));
                    }
                    Err(error) => tracing::warn!(%error, "accept failed"),
                },
            }
        }
        tracing::info!("stopping every instance");
        let _ = stopping.send(true);
        drop(requests);
        let _ = core.await;
        Ok(())
    }
}

/// One connection: each text message is a command and gets its reply, in order.
async fn serve(stream: TcpStream, peer: SocketAddr, requests: mpsc::Sender<Request>) {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_COMMAND_BYTES);
    config.max_frame_size = Some(MAX_COMMAND_BYTES);
    let mut socket = match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
        Ok(socket) => socket,
        Err(error) => {
            tracing::debug!(%peer, %error, "not a WebSocket");
            return;
        }
    };
    while let Some(message) = socket.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text.as_str().to_owned(),
            Ok(Message::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(error) => {
                tracing::debug!(%peer, %error, "command connection failed");
                break;
            }
        };
        let (reply, replied) = oneshot::channel();
        if requests.send(Request { text, reply }).await.is_err() {
            break;
        }
        let Ok(reply) = replied.await else {
            break;
        };
        if socket.send(Message::text(reply)).await.is_err() {
            break;
        }
    }
    let _ = socket.close(None).await;
}

/// A `STATUS` that waits (`"until"` a state, at most `"wait_ms"`).
struct Waiter {
    text: String,
    slot: i64,
    until: String,
    deadline: Instant,
    reply: oneshot::Sender<String>,
}

/// The longest a `STATUS` may wait.
pub const MAX_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `(slot, until, wait)` of a `STATUS` that asks to wait.
fn wait_of(text: &str) -> Option<(i64, String, std::time::Duration)> {
    let request: serde_json::Value = serde_json::from_str(text).ok()?;
    if request["command"] != "STATUS" {
        return None;
    }
    let until = request["until"].as_str()?.to_owned();
    let wait = request["wait_ms"].as_u64().filter(|ms| *ms > 0)?;
    let slot = request["id"].as_i64()?;
    Some((
        slot,
        until,
        std::time::Duration::from_millis(wait).min(MAX_STATUS_WAIT),
    ))
}

struct Core {
    config: SupervisorConfig,
    waiters: Vec<Waiter>,
    slots: Slots,
    launcher: Arc<dyn InstanceLauncher>,
    tokens: TokenIssuer,
    controls: HashMap<Instance, Box<dyn InstanceControl>>,
    events: mpsc::UnboundedSender<(Instance, InstanceEvent)>,
}

/// The core task: commands, instance events and timers, one at a time.
async fn drive(
    config: SupervisorConfig,
    launcher: Arc<dyn InstanceLauncher>,
    tokens: TokenIssuer,
    mut requests: mpsc::Receiver<Request>,
    mut stop: watch::Receiver<bool>,
) {
    let (events, mut happened) = mpsc::unbounded_channel();
    let mut core = Core {
        slots: Slots::new(config.capacity, config.init_timeout, config.stop_grace),
        config,
        launcher,
        tokens,
        controls: HashMap::new(),
        events,
        waiters: Vec::new(),
    };
    let mut stopping = false;
    loop {
        core.answer_waiters(Instant::now());
        let deadline = [
            core.slots.next_deadline(),
            core.waiters.iter().map(|w| w.deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            request = requests.recv(), if !stopping => match request {
                Some(Request { text, reply }) => {
                    let secret = core.config.shared_secret.clone();
                    let authorized = secret.as_deref().is_none_or(|expected| {
                        serde_json::from_str::<serde_json::Value>(&text)
                            .is_ok_and(|r| r["secret"].as_str() == Some(expected))
                    });
                    if authorized && let Some((slot, until, wait)) = wait_of(&text) {
                        core.waiters.push(Waiter {
                            text,
                            slot,
                            until,
                            deadline: Instant::now() + wait,
                            reply,
                        });
                        continue;
                    }
                    let handled = protocol::handle(&mut core.slots, &text, secret.as_deref(), Instant::now());
                    metrics::counter!("openspace_supervisor_commands_total").increment(1);
                    core.apply(handled.effects).await;
                    let _ = reply.send(handled.reply.to_string());
                }
                None => stopping = true,
            },
            Some((instance, event)) = happened.recv() => {
                let effects = match event {
                    InstanceEvent::Ready => core.slots.ready(instance),
                    InstanceEvent::Exited(how) => {
                        tracing::info!(slot = instance.slot, how, "instance exited");
                        core.controls.remove(&instance);
                        core.slots.exited(instance)
                    }
                };
                core.apply(effects).await;
            }
            () = timer => {
                let effects = core.slots.tick(Instant::now());
                core.apply(effects).await;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
            }
        }
        if stopping {
            let effects: Vec<Effect> = (0..core.config.capacity)
                .filter_map(|slot| core.slots.stop(i64::from(slot), Instant::now()).ok())
                .flatten()
                .collect();
            core.apply(effects).await;
            if core.slots.server_status().0 == 0 {
                return;
            }
        }
    }
}

impl Core {
    /// Replies to each waiting `STATUS` whose slot reached its state, or whose wait is over.
    fn answer_waiters(&mut self, now: Instant) {
        let mut waiting = Vec::with_capacity(self.waiters.len());
        for waiter in self.waiters.drain(..) {
            let reached = self
                .slots
                .status(waiter.slot)
                .map_or(true, |state| state.as_str() == waiter.until);
            if reached || waiter.deadline <= now || waiter.reply.is_closed() {
                let handled = protocol::handle(&mut self.slots, &waiter.text, None, now);
                let _ = waiter.reply.send(handled.reply.to_string());
            } else {
                waiting.push(waiter);
            }
        }
        self.waiters = waiting;
    }

    async fn apply(&mut self, effects: Vec<Effect>) {
        let mut pending = effects;
        while !pending.is_empty() {
            let mut next = Vec::new();
            for effect in pending {
                match effect {
                    Effect::Launch {
                        instance,
                        width,
                        height,
                    } => next.extend(self.launch(instance, width, height).await),
                    Effect::Resize {
                        instance,
                        width,
                        height,
                    } => {
                        if let Some(control) = self.controls.get_mut(&instance) {
                            control.resize(width, height);
                        }
                    }
                    Effect::Terminate(instance) => {
                        if let Some(control) = self.controls.get_mut(&instance) {
                            control.terminate();
                        }
                    }
                    Effect::Kill(instance) => {
                        if let Some(control) = self.controls.get_mut(&instance) {
                            control.kill();
                        }
                    }
                    Effect::Notice { instance, notice } => note(instance, notice),
                }
            }
            pending = next;
        }
    }

    async fn launch(&mut self, instance: Instance, width: u32, height: u32) -> Vec<Effect> {
        let Some(api_port) = self.config.api_port(instance.slot) else {
            return self.slots.exited(instance);
        };
        let spec = InstanceSpec {
            instance,
            api_port,
            webrtc_id: instance.slot,
            width,
            height,
            signaling_url: self.config.signaling_url.clone(),
            token: (self.tokens)(instance.slot),
        };
        let events = InstanceEvents::new(instance, self.events.clone());
        match self.launcher.launch(spec, events).await {
            Ok(control) => {
                tracing::info!(slot = instance.slot, api_port, "instance launched");
                self.controls.insert(instance, control);
                Vec::new()
            }
            Err(error) => {
                tracing::error!(slot = instance.slot, %error, "instance not launched");
                metrics::counter!("openspace_supervisor_launch_failures_total").increment(1);
                self.slots.exited(instance)
            }
        }
    }
}

fn note(instance: Instance, notice: Notice) {
    let slot = instance.slot;
    let what = match notice {
        Notice::Ready => "ready",
        Notice::InitTimedOut => "init_timeout",
        Notice::Crashed => "crashed",
        Notice::KilledAfterGrace => "killed_after_grace",
        Notice::Freed => "freed",
    };
    metrics::counter!("openspace_supervisor_slot_events_total", "event" => what).increment(1);
    match notice {
        Notice::Ready | Notice::Freed => tracing::info!(slot, event = what, "slot"),
        _ => tracing::warn!(slot, event = what, "slot"),
    }
}
