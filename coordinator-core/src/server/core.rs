//! The task that owns the [`Scheduler`]: everything that changes the cluster's state goes
//! through its queue, and it carries out the scheduler's actions.

use super::callbacks::now_ms;
use crate::{
    proto::{
        Action, CapacityReport, ClusterReport, Grant, LinkId, LinkRole, Scheduler, ServerAddress,
        StreamSelector, VerificationId,
    },
    store::{Change, Store},
};
use media_ingest::{KeyVerifier, PublishOptions, PublishRequest, Rendition};
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// Messages queued for one link's writer. A link that lets this many pile up is too slow to
/// be a control link and is closed.
pub(crate) const LINK_QUEUE: usize = 256;
/// Commands handled before their changes are committed together.
const BATCH: usize = 256;

/// What a link's writer is to do.
#[derive(Debug)]
pub(crate) enum LinkOut {
    Text(String),
    Close(String),
}

/// What the core is asked to do.
pub(crate) enum Command {
    Opened {
        role: LinkRole,
        address: Option<ServerAddress>,
        outbound: mpsc::Sender<LinkOut>,
        reply: oneshot::Sender<LinkId>,
    },
    Closed(LinkId),
    Message(LinkId, String),
    Verdict(VerificationId, Option<Grant>),
    Capacity(oneshot::Sender<CapacityReport>),
    Report(oneshot::Sender<ClusterReport>),
    Close {
        channel: String,
        selector: StreamSelector,
        reply: oneshot::Sender<usize>,
    },
}

/// The durable side: the store, and the outbox's wake-up (`None` without `EVENT_CALLBACK_URL`:
/// no callbacks, so nothing to remember).
pub(crate) struct Durable {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) wake: Arc<Notify>,
}

pub(crate) struct Core {
    pub(crate) scheduler: Scheduler,
    pub(crate) links: HashMap<LinkId, mpsc::Sender<LinkOut>>,
    pub(crate) verifier: Arc<dyn KeyVerifier>,
    pub(crate) verify_timeout: Duration,
    pub(crate) durable: Option<Durable>,
    /// The core's own queue, for verdicts coming back.
    pub(crate) commands: mpsc::Sender<Command>,
}

impl Core {
    pub(crate) async fn run(
        mut self,
        mut queue: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let deadline = self
                .scheduler
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                command = queue.recv() => match command {
                    Some(command) => {
                        self.handle(command);
                        // Whatever else is queued joins this batch: one commit for all of it.
                        for _ in 1..BATCH {
                            match queue.try_recv() {
                                Ok(command) => self.handle(command),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return,
                },
                () = sleep_until(deadline) => self.scheduler.handle_timeout(Instant::now()),
                _ = shutdown.changed() => {
                    for (_, link) in self.links.drain() {
                        let _ = link.try_send(LinkOut::Close("coordinator shutting down".into()));
                    }
                    return;
                }
            }
            self.carry_out().await;
        }
    }

    fn handle(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Opened {
                role,
                address,
                outbound,
                reply,
            } => {
                let link = self.scheduler.handle_link_opened(role, address, now);
                self.links.insert(link, outbound);
                metrics::gauge!("coordinator_links").set(self.links.len() as f64);
                let _ = reply.send(link);
            }
            Command::Closed(link) => {
                self.links.remove(&link);
                self.scheduler.handle_link_closed(link);
                metrics::gauge!("coordinator_links").set(self.links.len() as f64);
            }
            Command::Message(link, text) => self.scheduler.handle_message(link, &text, now),
            Command::Verdict(verification, grant) => {
                let random = rand::random();
                let now_ms = u64::try_from(now_ms()).unwrap_or(0);
                self.scheduler
                    .handle_verdict(verification, grant, now_ms, random);
            }
            Command::Capacity(reply) => {
                let _ = reply.send(self.scheduler.capacity());
            }
            Command::Report(reply) => {
                let _ = reply.send(self.scheduler.report());
            }
            Command::Close {
                channel,
                selector,
                reply,
            } => {
                let _ = reply.send(self.scheduler.close(&channel, &selector));
            }
        }
    }

    /// Carries out every pending action. Changes to the durable state are committed first,
    /// in one transaction, then messages go out in the scheduler's order: a stream is
    /// remembered before its publisher hears it was accepted, and no message overtakes another.
    async fn carry_out(&mut self) {
        let mut changes = Vec::new();
        let mut outgoing = Vec::new();
        while let Some(action) = self.scheduler.poll_action() {
            match action {
                Action::VerifyKey {
                    verification,
                    channel,
                    key,
                    user_ip,
                } => self.verify(verification, channel, key, &user_ip),
                Action::StreamStarted { channel, stream_id } => {
                    metrics::counter!("coordinator_streams_accepted_total").increment(1);
                    changes.push(Change::StreamStarted { channel, stream_id });
                }
                Action::Callback(event) => {
                    tracing::info!(?event, "stream event");
                    changes.push(Change::Event(event));
                }
                send_or_close => outgoing.push(send_or_close),
            }
        }
        self.commit(&changes).await;
        for action in outgoing {
            match action {
                Action::Send { link, message } => {
                    let Some(writer) = self.links.get(&link) else {
                        continue;
                    };
                    if writer
                        .try_send(LinkOut::Text(message.to_message().to_text()))
                        .is_err()
                    {
                        // Full (a peer that stopped reading) or gone: either way the link is
                        // over. Dropping the sender ends its writer; its reader reports Closed.
                        tracing::warn!(link, "control link too slow or gone; closing it");
                        self.links.remove(&link);
                    }
                }
                Action::Close { link, reason } => {
                    tracing::info!(link, %reason, "closing control link");
                    if let Some(writer) = self.links.remove(&link) {
                        let _ = writer.try_send(LinkOut::Close(reason));
                    }
                }
                _ => {}
            }
        }
    }

    async fn commit(&self, changes: &[Change]) {
        let Some(durable) = &self.durable else {
            return;
        };
        if changes.is_empty() {
            return;
        }
        match durable.store.record(changes, now_ms()).await {
            Ok(()) => {
                if changes.iter().any(|c| matches!(c, Change::Event(_))) {
                    durable.wake.notify_one();
                }
            }
            Err(error) => {
                // Nothing else can hold these: say exactly what was lost.
                metrics::counter!("coordinator_store_errors_total").increment(1);
                tracing::error!(%error, ?changes, "cannot record stream changes");
            }
        }
    }

    fn verify(
        &mut self,
        verification: VerificationId,
        channel: String,
        key: String,
        user_ip: &str,
    ) {
        let Ok(ip) = user_ip.trim().parse::<IpAddr>() else {
            tracing::warn!(%channel, user_ip, "PUBLISH-REQUEST with an invalid User-IP; denied");
            self.scheduler.handle_verdict(verification, None, 0, 0);
            return;
        };
        let commands = self.commands.clone();
        let verifier = self.verifier.clone();
        let timeout = self.verify_timeout;
        tokio::spawn(async move {
            let request = PublishRequest {
                app: channel,
                key,
                client: SocketAddr::new(ip, 0),
            };
            let verdict = tokio::time::timeout(timeout, verifier.verify(&request)).await;
            let grant = match verdict {
                Ok(Ok(verified)) => Some(grant_of(verified.options())),
                Ok(Err(error)) => {
                    tracing::info!(channel = %request.app, %error, "publish denied");
                    None
                }
                Err(_) => {
                    tracing::warn!(channel = %request.app, ?timeout, "key verification timed out");
                    None
                }
            };
            metrics::counter!(
                "coordinator_key_verifications_total",
                "verdict" => if grant.is_some() { "accept" } else { "deny" }
            )
            .increment(1);
            // The core may be gone (shutting down): nothing left to decide then.
            let _ = commands.send(Command::Verdict(verification, grant)).await;
        });
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The verifier's options in `ENCODE-START`'s words.
pub(crate) fn grant_of(options: &PublishOptions) -> Grant {
    let previews = options.previews.map_or_else(
        || "False".to_owned(),
        |p| format!("{}x{},{}", p.width, p.height, p.interval.as_secs()),
    );
    let resolutions = options
        .renditions
        .iter()
        .map(|rendition| match rendition {
            Rendition::Scaled {
                width,
                height,
                fps,
                kbps: Some(kbps),
            } => format!("{width}x{height}-{fps}~{kbps}"),
            Rendition::Scaled {
                width,
                height,
                fps,
                kbps: None,
            } => format!("{width}x{height}-{fps}"),
            _ => "ORIGINAL".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",");
    Grant {
        record: options.record,
        previews,
        resolutions,
    }
}

#[cfg(test)]
mod tests_core {
    use super::*;

    #[test]
    fn webhook_options_reach_the_encoder_in_the_same_words() {
        let options = PublishOptions::from_webhook_headers(
            Some("true"),
            Some("320x180, 5"),
            Some("1280x720-30~2500, 640x360-30,ORIGINAL"),
        )
        .expect("valid");
        let grant = grant_of(&options);
        assert!(grant.record);
        assert_eq!(grant.previews, "320x180,5");
        assert_eq!(grant.resolutions, "1280x720-30~2500,640x360-30,ORIGINAL");
        // And the encoder reads them back to the same options.
        let back = PublishOptions::from_webhook_headers(
            Some("true"),
            Some(&grant.previews),
            Some(&grant.resolutions),
        )
        .expect("valid");
        assert_eq!(back, options);

        let plain = grant_of(&PublishOptions::default());
        assert_eq!((plain.previews.as_str(), plain.record), ("False", false));
    }
}
