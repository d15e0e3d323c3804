//! The peer registry: connections, registered peers, sessions and their timers, as a
//! synchronous state machine with no I/O and no clock of its own.
//!
//! The server feeds it events, `handle_*` with the time passed in, and writes what
//! [`poll_output`](PeerRegistry::poll_output) returns; [`poll_timeout`](PeerRegistry::poll_timeout)
//! says when [`handle_timeout`](PeerRegistry::handle_timeout) is due next. The rules are in the
//! [module docs](super).

mod outcome;
#[cfg(test)]
mod tests;

pub use outcome::{CloseReason, Expired, Handled, Output, RequestError, Stats};

use super::message::{self, Message, MessageError, REGISTERED, SESSION_OK};
use crate::{SignalingConfig, token};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    time::{Duration, Instant},
};

/// A connection that has not registered within this time is closed (the default of
/// [`set_register_timeout`](PeerRegistry::set_register_timeout)).
pub const REGISTER_WITHIN: Duration = Duration::from_secs(30);

/// One WebSocket connection, as the registry knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which peers may open a session with which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pairing {
    /// Any two registered peers (the original's rule). The default.
    #[default]
    Any,
    /// Only instance `n` (an id below `browser_offset`) and its browser `browser_offset + n`,
    /// so a browser holding a valid token for its own id cannot reach another user's instance.
    InstanceAndBrowser {
        /// The browser of instance `n` is peer `browser_offset + n` (the original's 100).
        browser_offset: u32,
    },
}

impl Pairing {
    /// Whether peers `a` and `b` may open a session (either may ask).
    pub fn allows(self, a: u32, b: u32) -> bool {
        match self {
            Self::Any => true,
            Self::InstanceAndBrowser { browser_offset } => {
                let pair = |instance: u32, browser: u32| {
                    instance < browser_offset
                        && instance.checked_add(browser_offset) == Some(browser)
                };
                pair(a, b) || pair(b, a)
            }
        }
    }
}

type TimerKey = (Instant, u64);

#[derive(Debug, Clone, Copy)]
enum Timer {
    /// The pending SESSION of this caller expires.
    Pending(u32),
    /// This connection must have registered.
    Register(ConnectionId),
}

struct Connection {
    peer: Option<u32>,
    register_timer: Option<TimerKey>,
}

struct Pending {
    target: u32,
    timer: TimerKey,
}

/// Peers, their sessions and what to tell them. See the [module docs](super).
pub struct PeerRegistry {
    secret: Vec<u8>,
    pending_session_ttl: Duration,
    max_message_bytes: usize,
    register_within: Duration,
    pairing: Pairing,
    next_connection: u64,
    next_timer: u64,
    connections: HashMap<ConnectionId, Connection>,
    /// Registered peer id → its connection.
    peers: HashMap<u32, ConnectionId>,
    /// Both directions of every open session.
    partners: HashMap<u32, u32>,
    /// Caller → its SESSION request to a peer not registered yet.
    pending: HashMap<u32, Pending>,
    /// The reverse of `pending`: awaited peer → the caller waiting for it.
    awaited: HashMap<u32, u32>,
    timers: BTreeMap<TimerKey, Timer>,
    outputs: VecDeque<Output>,
}

impl fmt::Debug for PeerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerRegistry")
            .field("stats", &self.stats())
            .field("pairing", &self.pairing)
            .finish_non_exhaustive()
    }
}

impl PeerRegistry {
    /// A registry accepting tokens made with `secret`, with the TTL of pending sessions and
    /// the message limit of `config`.
    pub fn new(secret: &[u8], config: &SignalingConfig) -> Self {
        Self {
            secret: secret.to_vec(),
            pending_session_ttl: config.pending_session_ttl,
            max_message_bytes: config.max_message_bytes,
            register_within: REGISTER_WITHIN,
            pairing: Pairing::Any,
            next_connection: 0,
            next_timer: 0,
            connections: HashMap::new(),
            peers: HashMap::new(),
            partners: HashMap::new(),
            pending: HashMap::new(),
            awaited: HashMap::new(),
            timers: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Which peers may pair. Default [`Pairing::Any`].
    pub fn set_pairing(&mut self, pairing: Pairing) {
        self.pairing = pairing;
    }

    /// How long a connection may stay without registering. Default [`REGISTER_WITHIN`];
    /// applies to connections opened afterwards.
    pub fn set_register_timeout(&mut self, timeout: Duration) {
        self.register_within = timeout;
    }

    /// A connection opened at `now`.
    pub fn handle_open(&mut self, now: Instant) -> ConnectionId {
        let id = ConnectionId(self.next_connection);
        self.next_connection += 1;
        let timer = self.add_timer(now + self.register_within, Timer::Register(id));
        self.connections.insert(
            id,
            Connection {
                peer: None,
                register_timer: Some(timer),
            },
        );
        id
    }

    /// A text frame from `from`. `unix_now` (Unix seconds) is when tokens are checked.
    /// A refused message has already been answered with an ERROR when this returns.
    pub fn handle_text(
        &mut self,
        from: ConnectionId,
        text: &str,
        now: Instant,
        unix_now: u64,
    ) -> Result<Handled, RequestError> {
        let Some(connection) = self.connections.get(&from) else {
            return Ok(Handled::Ignored);
        };
        let me = connection.peer;
        let handled = Message::parse(text, self.max_message_bytes)
            .map_err(RequestError::from)
            .and_then(|message| self.dispatch(from, me, message, text, now, unix_now));
        if let Err(error) = &handled {
            self.send(from, message::error_reply(&error.to_string()));
        }
        handled
    }

    /// A binary frame from `from`: read as text when it is UTF-8 (some clients send JSON so),
    /// refused otherwise.
    pub fn handle_binary(
        &mut self,
        from: ConnectionId,
        bytes: &[u8],
        now: Instant,
        unix_now: u64,
    ) -> Result<Handled, RequestError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.handle_text(from, text, now, unix_now),
            Err(_) if !self.connections.contains_key(&from) => Ok(Handled::Ignored),
            Err(error) => {
                let error = RequestError::Message(MessageError::MalformedJson(format!(
                    "a binary frame that is not UTF-8 text ({error})"
                )));
                self.send(from, message::error_reply(&error.to_string()));
                Err(error)
            }
        }
    }

    /// Connection `conn` closed: its peer is unregistered, its session ends (the partner is
    /// told), its pending SESSION is dropped.
    pub fn handle_close(&mut self, conn: ConnectionId) {
        self.forget(conn, "disconnected");
    }

    /// Runs the timers due at `now`: pending SESSIONs expire (the caller gets an ERROR),
    /// connections that never registered are closed.
    pub fn handle_timeout(&mut self, now: Instant) -> Expired {
        let mut expired = Expired::default();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Timer::Pending(caller) => {
                    let Some(pending) = self.pending.remove(&caller) else {
                        continue;
                    };
                    self.awaited.remove(&pending.target);
                    let why = format!(
                        "SESSION expired: peer {} did not register within {:?}",
                        pending.target, self.pending_session_ttl
                    );
                    self.send_to_peer(caller, message::error_reply(&why));
                    expired.sessions += 1;
                }
                Timer::Register(conn) => {
                    let Some(connection) = self.connections.get_mut(&conn) else {
                        continue;
                    };
                    connection.register_timer = None;
                    let why = format!("no REGISTER within {:?}", self.register_within);
                    self.send(conn, message::error_reply(&why));
                    self.forget(conn, "disconnected");
                    self.outputs.push_back(Output::Close {
                        to: conn,
                        reason: CloseReason::NoRegister,
                    });
                    expired.connections += 1;
                }
            }
        }
        expired
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next, if anything waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// The next thing the server must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The peer id registered on `conn`.
    pub fn peer_of(&self, conn: ConnectionId) -> Option<u32> {
        self.connections.get(&conn).and_then(|c| c.peer)
    }

    /// The partner of `peer`'s open session.
    pub fn partner_of(&self, peer: u32) -> Option<u32> {
        self.partners.get(&peer).copied()
    }

    /// Counts, for gauges.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.connections.len(),
            peers: self.peers.len(),
            sessions: self.partners.len() / 2,
            pending: self.pending.len(),
        }
    }

    fn dispatch(
        &mut self,
        from: ConnectionId,
        me: Option<u32>,
        message: Message,
        text: &str,
        now: Instant,
        unix_now: u64,
    ) -> Result<Handled, RequestError> {
        match message {
            Message::Register { peer, token } => self.register(from, me, peer, &token, unix_now),
            Message::Session { caller_id, partner } => {
                let me = sender(me, caller_id)?;
                self.session(me, partner, now)
            }
            Message::Sdp { caller_id } | Message::Ice { caller_id } => {
                let me = sender(me, caller_id)?;
                let partner = self.partners.get(&me).ok_or(RequestError::NoSession)?;
                let partner = *partner;
                // Verbatim: the partner reads exactly what its peer wrote.
                self.send_to_peer(partner, text.to_owned());
                Ok(Handled::Relayed)
            }
        }
    }

    fn register(
        &mut self,
        from: ConnectionId,
        me: Option<u32>,
        peer: u32,
        token: &str,
        unix_now: u64,
    ) -> Result<Handled, RequestError> {
        if let Some(current) = me {
            if current != peer {
                return Err(RequestError::AlreadyRegistered(current));
            }
            self.send(from, REGISTERED.to_owned());
            return Ok(Handled::Registered { replaced: false });
        }
        token::verify(&self.secret, token, peer, unix_now)?;
        // The token's holder comes back on a new connection (a reload, a network change)
        // before the old one is known dead: the newer one wins.
        let replaced = self.peers.get(&peer).copied();
        if let Some(old) = replaced {
            self.forget(old, "reconnected");
            self.outputs.push_back(Output::Close {
                to: old,
                reason: CloseReason::Replaced,
            });
        }
        if let Some(connection) = self.connections.get_mut(&from) {
            connection.peer = Some(peer);
            if let Some(timer) = connection.register_timer.take() {
                self.timers.remove(&timer);
            }
        }
        self.peers.insert(peer, from);
        self.send(from, REGISTERED.to_owned());
        if let Some(caller) = self.awaited.remove(&peer) {
            if let Some(pending) = self.pending.remove(&caller) {
                self.timers.remove(&pending.timer);
            }
            self.open_session(caller, peer);
        }
        Ok(Handled::Registered {
            replaced: replaced.is_some(),
        })
    }

    fn session(&mut self, me: u32, partner: u32, now: Instant) -> Result<Handled, RequestError> {
        if partner == me {
            return Err(RequestError::SelfSession);
        }
        if !self.pairing.allows(me, partner) {
            return Err(RequestError::NotPaired { peer: me, partner });
        }
        match self.partners.get(&me) {
            Some(&current) if current == partner => {
                self.send_to_peer(me, SESSION_OK.to_owned());
                return Ok(Handled::SessionOpened);
            }
            Some(&current) => return Err(RequestError::AlreadyInSession(current)),
            None => {}
        }
        let busy = self.partners.contains_key(&partner)
            || self.pending.contains_key(&partner)
            || self
                .awaited
                .get(&partner)
                .is_some_and(|&caller| caller != me);
        if busy {
            return Err(RequestError::Busy(partner));
        }
        // A new SESSION replaces the sender's earlier pending one (or restarts its TTL).
        if let Some(earlier) = self.pending.remove(&me) {
            self.timers.remove(&earlier.timer);
            self.awaited.remove(&earlier.target);
        }
        if self.peers.contains_key(&partner) {
            self.open_session(me, partner);
            return Ok(Handled::SessionOpened);
        }
        let timer = self.add_timer(now + self.pending_session_ttl, Timer::Pending(me));
        self.pending.insert(
            me,
            Pending {
                target: partner,
                timer,
            },
        );
        self.awaited.insert(partner, me);
        Ok(Handled::SessionPending)
    }

    fn open_session(&mut self, caller: u32, partner: u32) {
        self.partners.insert(caller, partner);
        self.partners.insert(partner, caller);
        self.send_to_peer(caller, SESSION_OK.to_owned());
        self.send_to_peer(partner, message::session_notice(caller, partner));
    }

    /// Removes `conn` and everything of its peer; the session partner gets a SESSION_END.
    fn forget(&mut self, conn: ConnectionId, why: &str) {
        let Some(connection) = self.connections.remove(&conn) else {
            return;
        };
        if let Some(timer) = connection.register_timer {
            self.timers.remove(&timer);
        }
        let Some(peer) = connection.peer else {
            return;
        };
        if self.peers.get(&peer) == Some(&conn) {
            self.peers.remove(&peer);
        }
        if let Some(pending) = self.pending.remove(&peer) {
            self.timers.remove(&pending.timer);
            self.awaited.remove(&pending.target);
        }
        if let Some(partner) = self.partners.remove(&peer) {
            self.partners.remove(&partner);
            self.send_to_peer(partner, message::session_end(peer, why));
        }
    }

    fn add_timer(&mut self, at: Instant, timer: Timer) -> TimerKey {
        let key = (at, self.next_timer);
        self.next_timer += 1;
        self.timers.insert(key, timer);
        key
    }

    fn send(&mut self, to: ConnectionId, text: String) {
        self.outputs.push_back(Output::Send { to, text });
    }

    fn send_to_peer(&mut self, peer: u32, text: String) {
        if let Some(&to) = self.peers.get(&peer) {
            self.send(to, text);
        }
    }
}

/// The sender's peer id: registered, and matching `caller_id` when one is given.
fn sender(me: Option<u32>, caller_id: Option<u32>) -> Result<u32, RequestError> {
    let me = me.ok_or(RequestError::NotRegistered)?;
    match caller_id {
        Some(claimed) if claimed != me => Err(RequestError::WrongCallerId { claimed, peer: me }),
        _ => Ok(me),
    }
}
