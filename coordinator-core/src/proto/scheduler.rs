//! The coordinator's decisions, without I/O: which publisher may publish, which encoder takes a
//! stream, when load is released, which links are dead. Events come in through `handle_*`, and
//! what to do goes out through `poll_*`; time is passed in.

use super::{
    actions::{Action, Grant, ServerAddress, StreamEvent},
    control::{
        Capacity, ErrorCode, Inbound, LinkRole, Outbound, ProtocolError, SourceType, StreamIds,
        StreamSelector,
    },
    message::{ControlMessage, MAX_MESSAGE_BYTES},
};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, Instant},
};

use super::{
    actions::{LinkId, VerificationId},
    report::{ActiveStream, CapacityReport, ClusterReport, EncoderReport, StreamingServer},
};

/// The scheduler's timing and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How often a `HEARTBEAT` goes to each link. Default 20 s.
    pub heartbeat_interval: Duration,
    /// A link silent this long is closed. Default 60 s.
    pub link_timeout: Duration,
    /// The longest channel, key and stream id. Default 128.
    pub id_max_length: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(20),
            link_timeout: Duration::from_secs(60),
            id_max_length: 128,
        }
    }
}

struct Link {
    role: LinkRole,
    address: Option<ServerAddress>,
    /// Encoders: `None` until they REGISTER.
    capacity: Option<Capacity>,
    load: u32,
    last_heard: Instant,
    next_heartbeat: Instant,
}

/// A stream from acceptance until its encoder reports it closed.
struct Stream {
    channel: String,
    server: Option<LinkId>,
    encoder: Option<LinkId>,
}

struct PendingPublish {
    server: LinkId,
    request_id: String,
    channel: String,
    key: String,
}

/// The coordinator's state machine.
pub struct Scheduler {
    config: SchedulerConfig,
    links: BTreeMap<LinkId, Link>,
    next_link: LinkId,
    streams: HashMap<String, Stream>,
    /// Channels with a publisher (pending verification or active): one per channel.
    channels: HashMap<String, Option<String>>,
    pending: HashMap<VerificationId, PendingPublish>,
    next_verification: VerificationId,
    ids: StreamIds,
    actions: VecDeque<Action>,
}

impl Scheduler {
    /// A scheduler with no links.
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            config,
            links: BTreeMap::new(),
            next_link: 1,
            streams: HashMap::new(),
            channels: HashMap::new(),
            pending: HashMap::new(),
            next_verification: 1,
            ids: StreamIds::default(),
            actions: VecDeque::new(),
        }
    }

    /// A link was authenticated and opened; `address` is a streaming server's.
    pub fn handle_link_opened(
        &mut self,
        role: LinkRole,
        address: Option<ServerAddress>,
        now: Instant,
    ) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        let link = Link {
            role,
            address,
            capacity: None,
            load: 0,
            last_heard: now,
            next_heartbeat: now + self.config.heartbeat_interval,
        };
        self.links.insert(id, link);
        id
    }

    /// A link closed (by either side). Its streams end; its load is released.
    pub fn handle_link_closed(&mut self, link: LinkId) {
        let Some(closed) = self.links.remove(&link) else {
            return;
        };
        self.pending.retain(|_, pending| pending.server != link);
        self.channels.retain(|_, stream| stream.is_some());
        let affected: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| s.server == Some(link) || s.encoder == Some(link))
            .map(|(id, _)| id.clone())
            .collect();
        for stream_id in affected {
            if closed.role == LinkRole::Encoder {
                // Without its encoder the stream cannot be watched: end the publish too.
                if let Some(stream) = self.streams.remove(&stream_id) {
                    if let Some(server) = stream.server {
                        let kill = Outbound::StreamKill {
                            channel: stream.channel.clone(),
                            stream: StreamSelector::Id(stream_id.clone()),
                        };
                        self.actions.push_back(Action::Send {
                            link: server,
                            message: kill,
                        });
                    }
                    self.channels.remove(&stream.channel);
                    self.actions
                        .push_back(Action::Callback(StreamEvent::Closed {
                            channel: stream.channel,
                            stream_id,
                        }));
                }
            } else {
                self.end_publish(&stream_id);
            }
        }
    }

    /// A text message arrived on `link`.
    pub fn handle_message(&mut self, link: LinkId, text: &str, now: Instant) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        state.last_heard = now;
        let role = state.role;
        if text.len() > MAX_MESSAGE_BYTES {
            self.actions.push_back(Action::Close {
                link,
                reason: format!("a message of {} bytes", text.len()),
            });
            return;
        }
        let typed = ControlMessage::parse(text)
            .map_err(|error| ProtocolError {
                code: ErrorCode::InvalidMessage,
                detail: error.to_string(),
            })
            .and_then(|message| Inbound::parse(role, &message, self.config.id_max_length));
        match typed {
            Ok(message) => self.handle_inbound(link, message),
            Err(error) => self.send(link, error.to_outbound()),
        }
    }

    fn handle_inbound(&mut self, link: LinkId, message: Inbound) {
        match message {
            Inbound::Heartbeat => {}
            Inbound::PublishRequest {
                request_id,
                channel,
                key,
                user_ip,
            } => {
                if self.channels.contains_key(&channel) {
                    return self.send(link, Outbound::PublishDeny { request_id });
                }
                if self.least_loaded_encoder().is_none() {
                    return self.send(link, Outbound::PublishDeny { request_id });
                }
                // Reserved while the key is verified: a second publisher is refused at once.
                self.channels.insert(channel.clone(), None);
                let verification = self.next_verification;
                self.next_verification += 1;
                self.pending.insert(
                    verification,
                    PendingPublish {
                        server: link,
                        request_id,
                        channel: channel.clone(),
                        key: key.clone(),
                    },
                );
                self.actions.push_back(Action::VerifyKey {
                    verification,
                    channel,
                    key,
                    user_ip,
                });
            }
            Inbound::PublishEnd { channel, stream_id } => {
                let owned = self
                    .streams
                    .get(&stream_id)
                    .is_some_and(|s| s.server == Some(link) && s.channel == channel);
                if owned {
                    self.end_publish(&stream_id);
                } else {
                    self.not_yours(link, &stream_id);
                }
            }
            Inbound::Register { capacity } => {
                if let Some(encoder) = self.links.get_mut(&link) {
                    encoder.capacity = Some(capacity);
                }
            }
            Inbound::StreamAvailable {
                channel,
                stream_id,
                stream_type,
                resolution,
                index_file,
                ..
            } => {
                if self
                    .streams
                    .get(&stream_id)
                    .is_some_and(|s| s.encoder == Some(link))
                {
                    let event = StreamEvent::Available {
                        channel,
                        stream_id,
                        stream_type,
                        resolution,
                        index_file,
                    };
                    self.actions.push_back(Action::Callback(event));
                } else {
                    self.not_yours(link, &stream_id);
                }
            }
            Inbound::StreamClosed { channel, stream_id } => {
                if self
                    .streams
                    .get(&stream_id)
                    .is_some_and(|s| s.encoder == Some(link))
                {
                    self.streams.remove(&stream_id);
                    if let Some(encoder) = self.links.get_mut(&link) {
                        encoder.load = encoder.load.saturating_sub(1);
                    }
                    if self.channels.get(&channel) == Some(&Some(stream_id.clone())) {
                        self.channels.remove(&channel);
                    }
                    self.actions
                        .push_back(Action::Callback(StreamEvent::Closed { channel, stream_id }));
                } else {
                    self.not_yours(link, &stream_id);
                }
            }
        }
    }

    /// The application answered a [`Action::VerifyKey`]: `Some(grant)` accepts.
    pub fn handle_verdict(
        &mut self,
        verification: VerificationId,
        grant: Option<Grant>,
        now_ms: u64,
        random: u32,
    ) {
        let Some(pending) = self.pending.remove(&verification) else {
            return;
        };
        let PendingPublish {
            server,
            request_id,
            channel,
            key,
        } = pending;
        let encoder = self.least_loaded_encoder();
        let (Some(grant), Some(encoder), Some(address)) = (
            grant,
            encoder,
            self.links.get(&server).and_then(|l| l.address.clone()),
        ) else {
            self.channels.remove(&channel);
            return self.send(server, Outbound::PublishDeny { request_id });
        };
        let stream_id = self.ids.next(now_ms, random);
        let source_type = if self
            .links
            .get(&server)
            .is_some_and(|l| l.role == LinkRole::RtmpServer)
        {
            SourceType::Rtmp
        } else {
            SourceType::Ws
        };
        let source_uri = match source_type {
            SourceType::Rtmp => format!("rtmp://{}:{}/{channel}/{key}", address.ip, address.port),
            SourceType::Ws => format!(
                "{}://{}:{}/{channel}/{key}/receive",
                if address.ssl { "wss" } else { "ws" },
                address.ip,
                address.port
            ),
        };
        if let Some(link) = self.links.get_mut(&encoder) {
            link.load += 1;
        }
        self.channels
            .insert(channel.clone(), Some(stream_id.clone()));
        self.streams.insert(
            stream_id.clone(),
            Stream {
                channel: channel.clone(),
                server: Some(server),
                encoder: Some(encoder),
            },
        );
        self.actions.push_back(Action::StreamStarted {
            channel: channel.clone(),
            stream_id: stream_id.clone(),
        });
        self.send(
            server,
            Outbound::PublishAccept {
                request_id,
                stream_id: stream_id.clone(),
            },
        );
        let previews = if grant.previews.is_empty() {
            "False".to_owned()
        } else {
            grant.previews
        };
        let resolutions = if grant.resolutions.is_empty() {
            "ORIGINAL".to_owned()
        } else {
            grant.resolutions
        };
        let start = Outbound::EncodeStart {
            channel,
            stream_id,
            source_type,
            source_uri,
            resolutions,
            record: grant.record,
            previews,
        };
        self.send(encoder, start);
    }

    /// The publisher of `stream_id` stopped or went away: the encoder is told to stop, and the
    /// channel is free again; the encoder's load is released when it reports the stream closed.
    fn end_publish(&mut self, stream_id: &str) {
        let Some(stream) = self.streams.get_mut(stream_id) else {
            return;
        };
        stream.server = None;
        let channel = stream.channel.clone();
        if let Some(encoder) = stream.encoder {
            let stop = Outbound::EncodeStop {
                channel: channel.clone(),
                stream_id: stream_id.to_owned(),
            };
            self.actions.push_back(Action::Send {
                link: encoder,
                message: stop,
            });
        }
        if self
            .channels
            .get(&channel)
            .is_some_and(|active| active.as_deref() == Some(stream_id))
        {
            self.channels.remove(&channel);
        }
    }

    fn least_loaded_encoder(&self) -> Option<LinkId> {
        self.links
            .iter()
            .filter(|(_, link)| link.role == LinkRole::Encoder)
            .filter(|(_, link)| match link.capacity {
                Some(Capacity::Unlimited) => true,
                Some(Capacity::Limited(limit)) => link.load < limit,
                None => false,
            })
            .min_by_key(|(id, link)| (link.load, **id))
            .map(|(id, _)| *id)
    }

    fn not_yours(&mut self, link: LinkId, stream_id: &str) {
        let error = ProtocolError {
            code: ErrorCode::NotYours,
            detail: format!("stream {stream_id} is not assigned to this link"),
        };
        self.send(link, error.to_outbound());
    }

    fn send(&mut self, link: LinkId, message: Outbound) {
        self.actions.push_back(Action::Send { link, message });
    }

    /// Sends due heartbeats and closes links silent for longer than the link timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.link_timeout;
        let dead: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| now.duration_since(l.last_heard) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        for link in dead {
            self.actions.push_back(Action::Close {
                link,
                reason: format!("silent for {timeout:?}"),
            });
            self.handle_link_closed(link);
        }
        let interval = self.config.heartbeat_interval;
        let mut due = Vec::new();
        for (id, link) in &mut self.links {
            if link.next_heartbeat <= now {
                link.next_heartbeat = now + interval;
                due.push(*id);
            }
        }
        for link in due {
            self.send(link, Outbound::Heartbeat);
        }
    }

    /// When [`Scheduler::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .flat_map(|l| [l.next_heartbeat, l.last_heard + self.config.link_timeout])
            .min()
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// `GET /commands/capacity`.
    pub fn capacity(&self) -> CapacityReport {
        let encoders: Vec<&Link> = self
            .links
            .values()
            .filter(|l| l.role == LinkRole::Encoder && l.capacity.is_some())
            .collect();
        let unlimited = encoders
            .iter()
            .any(|l| l.capacity == Some(Capacity::Unlimited));
        let total: i64 = encoders
            .iter()
            .filter_map(|l| match l.capacity {
                Some(Capacity::Limited(n)) => Some(i64::from(n)),
                _ => None,
            })
            .sum();
        CapacityReport {
            load: encoders.iter().map(|l| l.load).sum(),
            capacity: if unlimited { -1 } else { total },
            encoder_count: encoders.len(),
        }
    }

    /// `GET /commands/report`.
    pub fn report(&self) -> ClusterReport {
        let mut active_streams: Vec<ActiveStream> = self
            .streams
            .iter()
            .map(|(id, stream)| ActiveStream {
                channel: stream.channel.clone(),
                stream_id: id.clone(),
                streaming_server: stream.server,
                encoder: stream.encoder,
            })
            .collect();
        active_streams.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        let streaming_servers = self
            .links
            .iter()
            .filter(|(_, link)| link.role != LinkRole::Encoder)
            .map(|(id, link)| StreamingServer {
                id: *id,
                address: link.address.clone(),
                role: link.role,
            })
            .collect();
        let encoders = self
            .links
            .iter()
            .filter(|(_, link)| link.role == LinkRole::Encoder)
            .filter_map(|(id, link)| {
                let capacity = match link.capacity? {
                    Capacity::Unlimited => -1,
                    Capacity::Limited(n) => i64::from(n),
                };
                Some(EncoderReport {
                    id: *id,
                    capacity,
                    load: link.load,
                })
            })
            .collect();
        ClusterReport {
            active_streams,
            streaming_servers,
            encoders,
        }
    }

    /// `POST /commands/close`: kills the channel's streams (one, or all with `*`); returns how
    /// many.
    pub fn close(&mut self, channel: &str, selector: &StreamSelector) -> usize {
        let targets: Vec<(String, LinkId)> = self
            .streams
            .iter()
            .filter(|(id, s)| {
                s.channel == channel
                    && (*selector == StreamSelector::All
                        || *selector == StreamSelector::Id((*id).clone()))
            })
            .filter_map(|(id, s)| s.server.map(|server| (id.clone(), server)))
            .collect();
        for (stream_id, server) in &targets {
            let kill = Outbound::StreamKill {
                channel: channel.to_owned(),
                stream: StreamSelector::Id(stream_id.clone()),
            };
            self.send(*server, kill);
        }
        targets.len()
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests_scheduler;
