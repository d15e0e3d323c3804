//! What a client's message does: the rate limit, ground control's answers and the relay to
//! the room or a peer.

use super::{
    ClientId, CloseReason, MAX_USERNAME_CHARS, Outgoing, Presence, RoomRegistry, error, send,
};
use crate::ice::ice_servers;
use crate::message::{Envelope, Kind, MessageError, Receiver};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The `error` text for a message over the client's rate.
pub(crate) const RATE_LIMITED: &str = "Too many messages: this one was dropped";

/// The token bucket of every client, as a generic cell rate algorithm: a client's state is
/// the instant its bucket is full again, which grows by `emission` per message accepted; a
/// message is accepted while that instant is at most `tolerance` ahead of now. So `burst`
/// messages pass at once, then `rate` per second. Integer time: no rounding drift.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    emission: Duration,
    tolerance: Duration,
}

impl Pace {
    /// `rate` messages per second sustained, `burst` at once (each at least 1).
    pub(super) fn new(rate: u32, burst: u32) -> Self {
        let emission = Duration::from_secs(1) / rate.max(1);
        Self {
            emission,
            tolerance: emission.saturating_mul(burst.max(1) - 1),
        }
    }

    /// Charges one message to the bucket `full_at`; false (and no charge) when it is empty.
    fn admit(&self, full_at: &mut Instant, now: Instant) -> bool {
        let start = (*full_at).max(now);
        if start.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        *full_at = start + self.emission;
        true
    }
}

/// Where a message goes.
enum Target {
    GroundControl,
    Room,
    /// A client id, if the receiver is one.
    Client(Option<ClientId>),
}

impl RoomRegistry {
    /// A message from the connected client `id`: what it causes. See the
    /// [module docs](super) for the rules. A message from an id that is not a connected
    /// client (its socket outlived it) only closes that socket.
    pub fn receive(
        &mut self,
        id: &ClientId,
        envelope: Envelope,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Outgoing> {
        if let Err(refusal) = self.charge(id, now) {
            return refusal;
        }
        self.route(*id, envelope, now, wall)
    }

    /// A text frame from the connected client `id`: read as an [`Envelope`] of at most
    /// [`max_message_bytes`](crate::CamusConfig::max_message_bytes), then as
    /// [`receive`](Self::receive). One too large or malformed is charged to the rate limit,
    /// dropped, and answered with an `error` saying why.
    pub fn receive_text(
        &mut self,
        id: &ClientId,
        text: &str,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Outgoing> {
        if let Err(refusal) = self.charge(id, now) {
            return refusal;
        }
        match Envelope::parse(text, self.limits.max_message_bytes) {
            Ok(envelope) => self.route(*id, envelope, now, wall),
            Err(reason) => vec![error(*id, &reason.to_string())],
        }
    }

    /// As [`receive_text`](Self::receive_text), for a frame the caller parsed already (with
    /// [`Envelope::parse`] and the same limit), so a server can parse outside its lock.
    pub fn receive_parsed(
        &mut self,
        id: &ClientId,
        parsed: Result<Envelope, MessageError>,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Outgoing> {
        if let Err(refusal) = self.charge(id, now) {
            return refusal;
        }
        match parsed {
            Ok(envelope) => self.route(*id, envelope, now, wall),
            Err(reason) => vec![error(*id, &reason.to_string())],
        }
    }

    /// Refreshes the client's last-seen time and charges its bucket.
    fn charge(&mut self, id: &ClientId, now: Instant) -> Result<(), Vec<Outgoing>> {
        let pace = self.pace;
        let Some(client) = self
            .clients
            .get_mut(id)
            .filter(|c| matches!(c.presence, Presence::Connected(_)))
        else {
            return Err(vec![Outgoing::Close {
                to: *id,
                reason: CloseReason::NotAClient,
            }]);
        };
        client.last_seen = client.last_seen.max(now);
        client.pinged_at = None;
        if pace.admit(&mut client.bucket, now) {
            Ok(())
        } else {
            Err(vec![error(*id, RATE_LIMITED)])
        }
    }

    fn route(
        &mut self,
        id: ClientId,
        mut envelope: Envelope,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Outgoing> {
        id.as_str().clone_into(&mut envelope.sender);
        let target = match envelope.receiver() {
            Receiver::GroundControl => Target::GroundControl,
            Receiver::Room => Target::Room,
            Receiver::Client(to) => Target::Client(ClientId::parse(to)),
        };
        if !matches!(target, Target::GroundControl)
            && matches!(
                envelope.known_kind(),
                Some(Kind::RoomInfo | Kind::IceServers)
            )
        {
            let text = format!("Only ground control sends {}", envelope.kind);
            return vec![error(id, &text)];
        }
        match target {
            Target::GroundControl => self.ground_control(id, envelope, now, wall),
            Target::Room => {
                let room = self.room_of(&id);
                let envelope = Arc::new(envelope);
                let mut out: Vec<Outgoing> = self
                    .connected_members(&room)
                    .into_iter()
                    .map(|to| Outgoing::Send {
                        to,
                        envelope: Arc::clone(&envelope),
                    })
                    .collect();
                if self.cluster {
                    out.push(Outgoing::Forward {
                        room,
                        to: None,
                        envelope,
                    });
                }
                out
            }
            Target::Client(to) => {
                let room = self.room_of(&id);
                let reachable = to.filter(|to| {
                    self.clients.get(to).is_some_and(|peer| {
                        *peer.room == *room && matches!(peer.presence, Presence::Connected(_))
                    })
                });
                let remote = to.filter(|to| {
                    self.clients.get(to).is_some_and(|peer| {
                        *peer.room == *room && matches!(peer.presence, Presence::Remote(_))
                    })
                });
                match (reachable, remote) {
                    (Some(to), _) => vec![send(to, envelope)],
                    (None, Some(to)) => vec![Outgoing::Forward {
                        room,
                        to: Some(to),
                        envelope: Arc::new(envelope),
                    }],
                    (None, None) => {
                        let text =
                            format!("No connected client {} in this room", envelope.receiver);
                        vec![error(id, &text)]
                    }
                }
            }
        }
    }

    /// The slug of a client's room ("" for an unknown client, which has none).
    fn room_of(&self, id: &ClientId) -> Arc<str> {
        self.clients
            .get(id)
            .map_or_else(|| Arc::from(""), |client| Arc::clone(&client.room))
    }

    fn ground_control(
        &mut self,
        id: ClientId,
        envelope: Envelope,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Outgoing> {
        let reply = |kind: &str, data: Value| {
            vec![send(id, Envelope::from_server(id.as_str(), kind, data))]
        };
        match envelope.known_kind() {
            Some(Kind::Ping) => reply("pong", envelope.data),
            Some(Kind::Pong | Kind::Greeting) => Vec::new(),
            Some(Kind::Profile) => {
                if let Some(name) = envelope.data.get("username").and_then(Value::as_str)
                    && !name.is_empty()
                    && let Some(client) = self.clients.get_mut(&id)
                {
                    client.username = name.chars().take(MAX_USERNAME_CHARS).collect();
                }
                let mut out = Vec::new();
                let room = self.room_of(&id);
                self.room_info_to_all(&room, &mut out);
                let username = self.clients.get(&id).map(|c| c.username.clone());
                self.announce(&room, id, username, &mut out);
                out
            }
            Some(Kind::GetRoomInfo) => reply("room-info", self.room_info(&self.room_of(&id))),
            Some(Kind::GetIceServers) => {
                let servers = ice_servers(&self.ice, id.as_str(), wall);
                reply(
                    "ice-servers",
                    serde_json::to_value(servers).expect("ICE server entries are plain strings"),
                )
            }
            Some(Kind::Bye) => self.bye(id, envelope.data, now),
            _ => {
                let text = format!("Unknown message type: {}", envelope.kind);
                vec![error(id, &text)]
            }
        }
    }

    /// The client said `bye` to ground control: it is removed, the others of its room get its
    /// `bye` and `room-info`, and its socket is closed.
    fn bye(&mut self, id: ClientId, data: Value, now: Instant) -> Vec<Outgoing> {
        let Some(removed) = self.remove_client(&id, now) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for other in self.connected_members(&removed.room) {
            out.push(send(
                other,
                Envelope {
                    sender: id.as_str().to_owned(),
                    receiver: other.as_str().to_owned(),
                    kind: "bye".to_owned(),
                    data: data.clone(),
                },
            ));
        }
        self.room_info_to_all(&removed.room, &mut out);
        self.announce(&removed.room, id, None, &mut out);
        out.push(Outgoing::Close {
            to: id,
            reason: CloseReason::Bye,
        });
        out
    }
}

#[cfg(test)]
mod pace {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let pace = Pace::new(50, 200);
        let t0 = Instant::now();
        let mut bucket = t0;
        for n in 0..200 {
            assert!(pace.admit(&mut bucket, t0), "message {n} of the burst");
        }
        assert!(!pace.admit(&mut bucket, t0), "the burst is spent");
        let t1 = t0 + Duration::from_secs(1);
        let passed = (0..100).filter(|_| pace.admit(&mut bucket, t1)).count();
        assert_eq!(passed, 50, "one second refills 50");
        let later = t1 + Duration::from_secs(3600);
        let passed = (0..1000).filter(|_| pace.admit(&mut bucket, later)).count();
        assert_eq!(passed, 200, "an idle bucket holds no more than the burst");
    }

    #[test]
    fn zero_settings_do_not_divide_by_zero() {
        let pace = Pace::new(0, 0);
        let t0 = Instant::now();
        let mut bucket = t0;
        assert!(pace.admit(&mut bucket, t0));
        assert!(!pace.admit(&mut bucket, t0));
        assert!(pace.admit(&mut bucket, t0 + Duration::from_secs(1)));
    }
}
