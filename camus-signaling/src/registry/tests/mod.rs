//! Scenario tests of the registry on simulated time. Each step checks the registry's
//! invariants and that every envelope goes to a connected client (or one closed in the same
//! batch).

use super::*;
use crate::message::Envelope;
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod relay;
mod remote;
mod rooms;
mod timers;

/// The wall clock at the start of every scene (the seed's era).
const WALL0_SECS: u64 = 1_615_912_970;

/// A registry, and the clocks of a scene.
struct Scene {
    registry: RoomRegistry,
    t0: Instant,
}

impl Scene {
    fn new() -> Self {
        Self::with(CamusConfig::default())
    }

    fn with(config: CamusConfig) -> Self {
        assert_eq!(config.validate(), Ok(()));
        Self {
            registry: RoomRegistry::new(&config),
            t0: Instant::now(),
        }
    }

    /// `secs` seconds into the scene.
    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    /// A room named `name` with this guest limit, created at 0 s.
    fn room(&mut self, name: &str, guest_limit: Option<u32>) -> String {
        let spec = RoomSpec {
            guest_limit,
            ..RoomSpec::new(name)
        };
        let slug = self
            .registry
            .create_room(spec, self.t0)
            .expect("room created");
        self.check(&[]);
        slug
    }

    /// Enters and connects a new client at `secs`.
    fn join(&mut self, slug: &str, secs: u64) -> (ClientId, ConnectionId) {
        let now = self.at(secs);
        let id = self.registry.enter(slug, None, now).expect("entered");
        let connected = self.registry.connect(slug, &id, now).expect("connected");
        self.check(&connected.outgoing);
        (id, connected.connection)
    }

    /// `from` sends `message` (JSON, as a client writes it) at `secs`.
    fn send(&mut self, from: &ClientId, message: Value, secs: u64) -> Vec<Outgoing> {
        let envelope: Envelope = serde_json::from_value(message).expect("an envelope");
        let out = self
            .registry
            .receive(from, envelope, self.at(secs), wall(secs));
        self.check(&out);
        out
    }

    fn tick(&mut self, secs: u64) -> Vec<Outgoing> {
        let out = self.registry.tick(self.at(secs), wall(secs));
        self.check(&out);
        out
    }

    /// The registry's bookkeeping agrees with itself, and `out` only sends to connected
    /// clients (or to one whose socket it closes after).
    fn check(&self, out: &[Outgoing]) {
        let registry = &self.registry;
        for (slug, room) in &registry.rooms {
            let mut seated = 0;
            let mut waiting = 0;
            for (seq, id) in &room.members {
                let client = registry.clients.get(id).expect("a member is a client");
                assert_eq!((&client.room, client.seq), (slug, *seq), "{id}");
                if client.presence.is_seated() {
                    seated += 1;
                } else {
                    waiting += 1;
                }
            }
            assert_eq!((room.seated, room.waiting), (seated, waiting), "{slug}");
            assert_eq!(room.empty_since.is_some(), seated == 0, "{slug}");
            assert!(seated <= room.capacity, "{slug}");
        }
        for (id, client) in &registry.clients {
            let room = registry
                .rooms
                .get(&client.room)
                .expect("a client's room exists");
            assert_eq!(room.members.get(&client.seq), Some(id));
        }
        for (n, action) in out.iter().enumerate() {
            if let Outgoing::Send { to, envelope } = action {
                let connected = registry
                    .clients
                    .get(to)
                    .is_some_and(|c| matches!(c.presence, Presence::Connected(_)));
                let closed_after = out[n..]
                    .iter()
                    .any(|a| matches!(a, Outgoing::Close { to: closed, .. } if closed == to));
                assert!(connected || closed_after, "{envelope:?} to {to}");
                assert!(
                    envelope.sender == "ground control"
                        || ClientId::parse(&envelope.sender).is_some(),
                    "{envelope:?}"
                );
            }
        }
    }
}

/// The wall clock `secs` into the scene.
fn wall(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(WALL0_SECS + secs)
}

/// The wall clock `secs` into the scene, in Unix milliseconds.
fn unix_ms(secs: u64) -> u64 {
    (WALL0_SECS + secs) * 1000
}

/// The expected `Send` of `message` (JSON) to `to`.
fn to(to: &ClientId, message: Value) -> Outgoing {
    let envelope: Envelope = serde_json::from_value(message).expect("an envelope");
    Outgoing::Send {
        to: *to,
        envelope: Arc::new(envelope),
    }
}

/// The expected message of ground control to `receiver`.
fn from_gc(receiver: &ClientId, kind: &str, data: Value) -> Outgoing {
    to(
        receiver,
        json!({ "sender": "ground control", "receiver": receiver.as_str(), "type": kind, "data": data }),
    )
}

/// The expected `room-info` to each of `receivers`, listing `clients` (id, username).
fn room_info(receivers: &[ClientId], slug: &str, clients: &[(&ClientId, &str)]) -> Vec<Outgoing> {
    let clients: Vec<Value> = clients
        .iter()
        .map(|(id, name)| json!({ "id": id.as_str(), "username": name }))
        .collect();
    receivers
        .iter()
        .map(|r| {
            from_gc(
                r,
                "room-info",
                json!({ "room_id": slug, "clients": clients }),
            )
        })
        .collect()
}

/// The expected `error` to `receiver`.
fn error_to(receiver: &ClientId, text: &str) -> Outgoing {
    from_gc(receiver, "error", json!(text))
}

/// The kinds of the envelopes sent to `id`, in order.
fn kinds_to(out: &[Outgoing], id: &ClientId) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            Outgoing::Send { to, envelope } if to == id => Some(envelope.kind.clone()),
            _ => None,
        })
        .collect()
}
