//! The room registry: rooms, their clients and the signaling relay, as a synchronous state
//! machine with no I/O and no clock of its own.
//!
//! Every call takes the time (`now: Instant`; and the wall clock, `SystemTime`, where a
//! message carries a timestamp or a TURN credential) and returns what the server must do, as
//! [`Outgoing`] actions in order: [`Outgoing::Send`] an envelope to a client's socket,
//! [`Outgoing::Close`] a client's socket. The server holds one registry behind a mutex, feeds it
//! the HTTP and WebSocket events and delivers the actions; tests drive it on simulated time.
//!
//! # A client's life
//!
//! ```text
//!  enter ──▶ admitted ──connect──▶ connected ◀──connect── dropped
//!              │                     │   └──disconnect──▶   │
//!              │ silent 90 s         │ bye, silent 90 s     │ silent 90 s
//!              ▼                     ▼                      ▼
//!                              removed (its id is refused from then on)
//! ```
//!
//! - [`enter`](RoomRegistry::enter) (HTTP `/room/<slug>`, after the password check) admits a
//!   client: a fresh [`ClientId`] for the cookie, or the cookie's own id when it is still a
//!   client of that room. Admission does not take a seat; the id only lets its holder open the
//!   room's WebSocket.
//! - [`connect`](RoomRegistry::connect) (the WebSocket opens) seats it. **Seats are held by
//!   live clients only** (connected, or dropped and not yet reaped): the guest limit (0 = none;
//!   never more than [`max_clients_per_room`](crate::CamusConfig::max_clients_per_room)) is
//!   checked at entry and again, atomically, at connect, so of two admitted clients competing
//!   for the last seat only the first to connect gets it. Admitted clients that never connect
//!   are removed after [`reap_after_silence`](crate::CamusConfig::reap_after_silence); at most
//!   `max_clients_per_room` wait in one room (the oldest is dropped for a newcomer).
//! - [`disconnect`](RoomRegistry::disconnect) (the socket closed without `bye`) keeps the
//!   client and its seat: the browser reconnects with its cookie within seconds, keeping its id.
//!   Nobody is told; if it does not come back it is reaped like any silent client. A client
//!   that connects again while its previous socket is still open takes over (the server closes
//!   the old socket): a reloaded page is the same client.
//! - `bye` to ground control, or [`reap_after_silence`](crate::CamusConfig::reap_after_silence)
//!   without a message, removes it: the others of the room get a `bye` whose `sender` is its id
//!   (the seed's shape: their client drops the peer) and a fresh `room-info`.
//!
//! # Messages
//!
//! [`receive`](RoomRegistry::receive) overwrites `sender` with the client's id, refreshes its
//! last-seen time and charges its token bucket
//! ([`messages_per_second`](crate::CamusConfig::messages_per_second) sustained,
//! [`message_burst`](crate::CamusConfig::message_burst) at once; over it the message is dropped
//! and the sender alone gets an `error`). Then by `receiver`:
//!
//! - `ground control`: `ping` → `pong` with the same data, addressed to the client (which
//!   learns its id so); `profile` sets the display name (default `Major Tom`, at most
//!   [`MAX_USERNAME_CHARS`] characters kept) and sends `room-info` to the room;
//!   `get-room-info` → `room-info`; `get-ice-servers` → `ice-servers` (STUN, and TURN with
//!   coturn REST credentials); `bye` removes the client; `pong` and `greeting` are taken
//!   silently; any other type → `error` `Unknown message type: <type>`.
//! - `room`: every connected client of the room, the sender included, unchanged (`receiver`
//!   stays `room`).
//! - a client id: that client, if it is connected and in the **same room**; otherwise the
//!   sender gets an `error` (an id of another room is answered like an unknown one).
//!
//! `room-info` and `ice-servers`, which only ground control sends, are refused with an `error`
//! when a client addresses them to the room or a peer.
//!
//! # Timers
//!
//! [`tick`](RoomRegistry::tick), called periodically (once a second is plenty; the timers are
//! as precise as the ticks), pings connected clients silent for
//! [`ping_after_silence`](crate::CamusConfig::ping_after_silence) (again every
//! [`ping_interval`](crate::CamusConfig::ping_interval) while they stay silent), reaps those
//! silent for [`reap_after_silence`](crate::CamusConfig::reap_after_silence) (a connected one
//! gets a `bye` from ground control, then its socket is closed), and deletes rooms without a
//! live client for [`room_idle_timeout`](crate::CamusConfig::room_idle_timeout), with the
//! admitted clients still waiting in them.
//!
//! # Example
//!
//! ```
//! use camus_signaling::CamusConfig;
//! use camus_signaling::message::Envelope;
//! use camus_signaling::registry::{Outgoing, RoomRegistry, RoomSpec};
//! use std::time::{Instant, SystemTime};
//!
//! let mut registry = RoomRegistry::new(&CamusConfig::default());
//! let now = Instant::now();
//! let slug = registry.create_room(RoomSpec::new("Excellent Adventure"), now)?;
//! assert_eq!(slug, "excellent-adventure");
//!
//! let bill = registry.enter(&slug, None, now)?; // the cookie's id
//! let connected = registry.connect(&slug, &bill, now)?; // the WebSocket opens
//! assert!(matches!(&connected.outgoing[0],
//!     Outgoing::Send { to, envelope } if *to == bill && envelope.kind == "greeting"));
//!
//! let ping = Envelope::parse(r#"{"receiver":"ground control","type":"ping","data":7}"#, 1024)?;
//! let replies = registry.receive(&bill, ping, now, SystemTime::now());
//! let Outgoing::Send { to, envelope } = &replies[0] else { panic!("a pong") };
//! assert_eq!((to, envelope.kind.as_str(), &envelope.data), (&bill, "pong", &7.into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod id;
mod relay;
mod remote;
mod rooms;
mod slug;
mod timers;

#[cfg(test)]
mod tests;

pub use error::{ConnectError, EntryError, RoomError};
pub use id::{ClientId, ConnectionId};
pub use rooms::{RoomSpec, RoomView};

use crate::message::Envelope;
use crate::{CamusConfig, IceConfig};
use relay::Pace;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The display name of a client that has not sent a `profile`.
pub const DEFAULT_USERNAME: &str = "Major Tom";
/// The longest display name kept from a `profile`, in characters; the rest is cut.
pub const MAX_USERNAME_CHARS: usize = 100;
/// The `greeting`'s text, sent to each client when its socket opens.
pub const GREETING: &str = "This is Ground Control to Major Tom";

/// What the server must do, in the order returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outgoing {
    /// Send the envelope (as JSON text) on the client's socket. A broadcast shares one
    /// envelope between its receivers.
    Send {
        /// The client.
        to: ClientId,
        /// The message.
        envelope: Arc<Envelope>,
    },
    /// Close the client's socket, after what was sent to it before: it is no longer a client.
    Close {
        /// The client.
        to: ClientId,
        /// Why.
        reason: CloseReason,
    },
    /// In a cluster ([`enable_cluster`](RoomRegistry::enable_cluster)): carry the envelope to
    /// the other servers, for their clients of `room` (`to`, or all of them when `None`);
    /// each hands it to [`remote_deliver`](RoomRegistry::remote_deliver).
    Forward {
        /// The room.
        room: Arc<str>,
        /// The one client it is for, or the whole room.
        to: Option<ClientId>,
        /// The message, its sender set.
        envelope: Arc<Envelope>,
    },
    /// In a cluster: tell the other servers that a client of this one joined `room` or
    /// changed its name (`username`), or left it (`None`); each hands it to
    /// [`remote_join`](RoomRegistry::remote_join) or [`remote_leave`](RoomRegistry::remote_leave).
    Announce {
        /// The room.
        room: Arc<str>,
        /// The client.
        client: ClientId,
        /// Its name while present; `None` once gone.
        username: Option<String>,
    },
}

/// Why a socket is to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client said `bye`.
    Bye,
    /// The client was silent for `reap_after_silence`.
    Reaped,
    /// A message came from an id that is not a connected client (removed, or never
    /// connected): the socket outlived its client.
    NotAClient,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Rooms.
    pub rooms: usize,
    /// Clients with an open socket.
    pub connected: usize,
    /// Clients whose socket closed without `bye`, holding their seat until reaped.
    pub dropped: usize,
    /// Clients admitted by HTTP that have not opened their socket yet.
    pub admitted: usize,
    /// Clients of other servers of the cluster, in rooms of this one.
    pub remote: usize,
}

/// The settings the registry works with, copied from [`CamusConfig`].
#[derive(Debug, Clone, Copy)]
struct Limits {
    default_guest_limit: u32,
    max_clients_per_room: u32,
    max_rooms: usize,
    max_message_bytes: usize,
    ping_interval: Duration,
    ping_after_silence: Duration,
    reap_after_silence: Duration,
    room_idle_timeout: Duration,
}

/// Rooms, their clients and the signaling relay. See the [module docs](self) for the rules.
#[derive(Debug)]
pub struct RoomRegistry {
    limits: Limits,
    pace: Pace,
    ice: IceConfig,
    rooms: HashMap<Arc<str>, Room>,
    /// Every client, with its room: `receive` needs no search.
    clients: HashMap<ClientId, Client>,
    /// Orders each room's members (seat order, for `room-info` and broadcasts).
    next_seq: u64,
    next_connection: u64,
    /// Rooms deleted by `tick`, until [`take_deleted_rooms`](Self::take_deleted_rooms).
    deleted_rooms: Vec<String>,
    /// Whether outputs for other servers are made (`Forward`, `Announce`).
    cluster: bool,
    /// Fills a buffer with random bytes; a CSPRNG outside tests.
    random: fn(&mut [u8]),
}

#[derive(Debug)]
struct Room {
    name: String,
    /// As shown: 0 for none.
    guest_limit: u32,
    /// Seats, the guest limit and `max_clients_per_room` applied.
    capacity: usize,
    public: bool,
    password_protected: bool,
    /// Every client of the room (admitted or live), by seat order.
    members: BTreeMap<u64, ClientId>,
    /// Live clients: connected or dropped.
    seated: usize,
    /// Admitted clients, not yet connected.
    waiting: usize,
    /// Since when no client is live; `None` while one is.
    empty_since: Option<Instant>,
}

#[derive(Debug)]
struct Client {
    room: Arc<str>,
    /// Its key in the room's `members`.
    seq: u64,
    username: String,
    presence: Presence,
    last_seen: Instant,
    /// The last `ping` sent since it was last seen.
    pinged_at: Option<Instant>,
    /// When its token bucket is full again (GCRA); see [`Pace`].
    bucket: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Admitted,
    Connected(ConnectionId),
    Dropped,
    /// Connected to another server of the cluster (the number names it).
    Remote(u64),
}

impl Presence {
    fn is_seated(self) -> bool {
        !matches!(self, Self::Admitted)
    }

    /// Connected or dropped here, not elsewhere.
    fn is_local_seat(self) -> bool {
        matches!(self, Self::Connected(_) | Self::Dropped)
    }
}

/// The result of a successful [`RoomRegistry::connect`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Connected {
    /// This socket; give it back to [`RoomRegistry::disconnect`] when it closes.
    pub connection: ConnectionId,
    /// The `greeting` to the client, then `room-info` to every connected client of the room.
    pub outgoing: Vec<Outgoing>,
}

/// What [`RoomRegistry::remove_client`] removed.
struct Removed {
    room: Arc<str>,
    presence: Presence,
}

impl RoomRegistry {
    /// An empty registry with the limits and timers of `config` (validated beforehand with
    /// [`CamusConfig::validate`]), and a CSPRNG for client ids.
    pub fn new(config: &CamusConfig) -> Self {
        Self::with_random(config, id::random_bytes)
    }

    /// An empty registry whose client ids come from `random`.
    fn with_random(config: &CamusConfig, random: fn(&mut [u8])) -> Self {
        Self {
            limits: Limits {
                default_guest_limit: config.default_guest_limit,
                max_clients_per_room: config.max_clients_per_room.max(1),
                max_rooms: config.max_rooms,
                max_message_bytes: config.max_message_bytes,
                ping_interval: config.ping_interval,
                ping_after_silence: config.ping_after_silence,
                reap_after_silence: config.reap_after_silence,
                room_idle_timeout: config.room_idle_timeout,
            },
            pace: Pace::new(config.messages_per_second, config.message_burst),
            ice: config.ice.clone(),
            rooms: HashMap::new(),
            clients: HashMap::new(),
            next_seq: 0,
            next_connection: 0,
            deleted_rooms: Vec::new(),
            cluster: false,
            random,
        }
    }

    /// Admits a visitor of `/room/<slug>` whose password (if any) was checked, and returns the
    /// id to store in its cookie. `returning`, the id of the visitor's cookie, is kept when it
    /// is still a client of this room: a client holding a seat (a reloaded page) always gets
    /// back in. Anyone else needs a free seat; admission does not take it (see
    /// [`connect`](Self::connect)).
    pub fn enter(
        &mut self,
        slug: &str,
        returning: Option<&ClientId>,
        now: Instant,
    ) -> Result<ClientId, EntryError> {
        let room = self.rooms.get(slug).ok_or(EntryError::UnknownRoom)?;
        if let Some(id) = returning
            && let Some(client) = self.clients.get_mut(id)
            && *client.room == *slug
        {
            if !client.presence.is_seated() && room.seated >= room.capacity {
                return Err(EntryError::RoomFull);
            }
            client.last_seen = now;
            return Ok(*id);
        }
        if room.seated >= room.capacity {
            return Err(EntryError::RoomFull);
        }
        if room.waiting >= to_usize(self.limits.max_clients_per_room) {
            let oldest =
                room.members.values().copied().find(|id| {
                    self.clients.get(id).map(|c| c.presence) == Some(Presence::Admitted)
                });
            if let Some(oldest) = oldest {
                self.remove_client(&oldest, now);
            }
        }
        let id = self.new_id();
        let seq = self.next_seq;
        self.next_seq += 1;
        let Some((room_key, _)) = self.rooms.get_key_value(slug) else {
            return Err(EntryError::UnknownRoom);
        };
        let room_key = Arc::clone(room_key);
        if let Some(room) = self.rooms.get_mut(slug) {
            room.members.insert(seq, id);
            room.waiting += 1;
        }
        self.clients.insert(
            id,
            Client {
                room: room_key,
                seq,
                username: DEFAULT_USERNAME.to_owned(),
                presence: Presence::Admitted,
                last_seen: now,
                pinged_at: None,
                bucket: now,
            },
        );
        Ok(id)
    }

    /// The client's WebSocket to `/room/<slug>/ws` opened: seats it (if a seat is free, for a
    /// client that had none) and returns the `greeting` for it and `room-info` for the room.
    /// A dropped client gets its seat and id back; a connected one takes over from its
    /// previous socket.
    pub fn connect(
        &mut self,
        slug: &str,
        id: &ClientId,
        now: Instant,
    ) -> Result<Connected, ConnectError> {
        let room = self.rooms.get_mut(slug).ok_or(ConnectError::UnknownRoom)?;
        let client = self
            .clients
            .get_mut(id)
            .filter(|client| *client.room == *slug)
            .ok_or(ConnectError::NotAClientOfThisRoom)?;
        if client.presence == Presence::Admitted {
            if room.seated >= room.capacity {
                return Err(ConnectError::RoomFull);
            }
            room.waiting -= 1;
            room.seated += 1;
            room.empty_since = None;
            // Seat order is the order of connecting.
            room.members.remove(&client.seq);
            client.seq = self.next_seq;
            self.next_seq += 1;
            room.members.insert(client.seq, *id);
        }
        let connection = ConnectionId(self.next_connection);
        self.next_connection += 1;
        client.presence = Presence::Connected(connection);
        client.last_seen = now;
        client.pinged_at = None;
        let room_key = Arc::clone(&client.room);
        let username = client.username.clone();
        let mut outgoing = vec![send(
            *id,
            Envelope::from_server(id.as_str(), "greeting", Value::from(GREETING)),
        )];
        self.room_info_to_all(&room_key, &mut outgoing);
        self.announce(&room_key, *id, Some(username), &mut outgoing);
        Ok(Connected {
            connection,
            outgoing,
        })
    }

    /// The client's socket `connection` closed without `bye`. The client keeps its id and seat
    /// until it reconnects or is reaped; nobody is told, as a reloading page is back within
    /// seconds. The close of a socket that was already replaced by a newer one is ignored.
    pub fn disconnect(&mut self, id: &ClientId, connection: ConnectionId) {
        if let Some(client) = self.clients.get_mut(id)
            && client.presence == Presence::Connected(connection)
        {
            client.presence = Presence::Dropped;
        }
    }

    /// Whether `id` is a client of room `slug` (admitted, connected or dropped): a returning
    /// visitor that needs no password again.
    pub fn is_client(&self, slug: &str, id: &ClientId) -> bool {
        self.clients
            .get(id)
            .is_some_and(|client| *client.room == *slug)
    }

    /// How many rooms and clients there are.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            rooms: self.rooms.len(),
            ..Stats::default()
        };
        for client in self.clients.values() {
            match client.presence {
                Presence::Admitted => stats.admitted += 1,
                Presence::Connected(_) => stats.connected += 1,
                Presence::Dropped => stats.dropped += 1,
                Presence::Remote(_) => stats.remote += 1,
            }
        }
        stats
    }

    /// A fresh client id, unlike any current one.
    fn new_id(&self) -> ClientId {
        loop {
            let mut bytes = [0; 16];
            (self.random)(&mut bytes);
            let id = ClientId::from_random(bytes);
            if !self.clients.contains_key(&id) {
                return id;
            }
        }
    }

    /// Removes a client from the registry and its room.
    fn remove_client(&mut self, id: &ClientId, now: Instant) -> Option<Removed> {
        let client = self.clients.remove(id)?;
        if let Some(room) = self.rooms.get_mut(&client.room) {
            room.members.remove(&client.seq);
            if client.presence.is_seated() {
                room.seated -= 1;
                if room.seated == 0 {
                    room.empty_since = Some(now);
                }
            } else {
                room.waiting -= 1;
            }
        }
        Some(Removed {
            room: client.room,
            presence: client.presence,
        })
    }

    /// The connected clients of a room, in seat order.
    fn connected_members(&self, slug: &str) -> Vec<ClientId> {
        self.rooms.get(slug).map_or_else(Vec::new, |room| {
            room.members
                .values()
                .copied()
                .filter(|id| {
                    self.clients
                        .get(id)
                        .is_some_and(|c| matches!(c.presence, Presence::Connected(_)))
                })
                .collect()
        })
    }

    /// `room-info`'s data: the slug and the live clients, in seat order.
    fn room_info(&self, slug: &str) -> Value {
        let clients: Vec<Value> = self.rooms.get(slug).map_or_else(Vec::new, |room| {
            room.members
                .values()
                .filter_map(|id| {
                    let client = self.clients.get(id)?;
                    client
                        .presence
                        .is_seated()
                        .then(|| json!({ "id": id.as_str(), "username": client.username }))
                })
                .collect()
        });
        json!({ "room_id": slug, "clients": clients })
    }

    /// Appends `room-info` to every connected client of the room.
    fn room_info_to_all(&self, slug: &str, out: &mut Vec<Outgoing>) {
        let info = self.room_info(slug);
        for member in self.connected_members(slug) {
            out.push(send(
                member,
                Envelope::from_server(member.as_str(), "room-info", info.clone()),
            ));
        }
    }
}

/// Sends `envelope` to `to`.
fn send(to: ClientId, envelope: Envelope) -> Outgoing {
    Outgoing::Send {
        to,
        envelope: Arc::new(envelope),
    }
}

/// Ground control's `error` to `to`.
fn error(to: ClientId, text: &str) -> Outgoing {
    send(to, Envelope::error(to.as_str(), text))
}

/// A message from ground control with a timestamp, as the original's `ping` and `bye`.
fn from_ground_control(to: ClientId, kind: &str, unix_ms: u64) -> Envelope {
    Envelope::from_server(to.as_str(), kind, Value::from(unix_ms))
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
