//! The WebRTC signaling server (WebSocket, port 8443): rendering instances and browsers
//! register by peer id, pair into sessions, and exchange SDP and ICE through it.
//!
//! ```text
//!  instance n (peer n)          signaling server              browser (peer 100+n)
//!    ── REGISTER n, token ──────────▶
//!    ◀──────────────── "REGISTER" ──
//!                                  ◀───────────── REGISTER 100+n, token ──
//!                                  ── "REGISTER" ─────────────────────────▶
//!                                  ◀───────────── SESSION, content n ─────
//!    ◀── SESSION (caller 100+n) ────
//!                                  ── "SESSION_OK" ───────────────────────▶
//!    ── SDP / ICE ──────────────────▶ the same text ─────────────────────▶
//!    ◀───────────────── the same text ◀───────────────────── SDP / ICE ──
//!
//!  inside: a task per connection (queue of PEER_QUEUE frames) around one
//!          PeerRegistry (sans-IO: no sockets, no clock) behind a lock
//! ```
//!
//! # The protocol
//!
//! The original's: JSON text frames `{"type": …, "caller_id": <peer id>, "content": …}`, with
//! `type` one of `REGISTER`, `SESSION`, `SDP`, `ICE`. Peer ids are integers from 0 to
//! 4294967295 (JSON numbers, or decimal strings); **0 is an id like any other** (the original
//! took it for "none"). Instance `n` is peer `n`; its browser is peer `100 + n`.
//!
//! - `{"type":"REGISTER","caller_id":N,"token":"<token>"}` registers this connection as peer
//!   `N`. The `token` (an addition to the original, which let anyone take any id) must be a
//!   [`token`](crate::token) for `N` made with the server's secret and not expired. Answer:
//!   the plain string `REGISTER`. One connection holds one id; a REGISTER of the same id again
//!   is answered again, of another id refused. **A second connection registering a live id
//!   replaces the first**: the older connection is closed (1000, `replaced by a newer
//!   connection`) and its session ends, so a reloaded page or a reconnecting instance gets its
//!   id back at once instead of waiting for the dead socket to time out (the token is the
//!   proof that it is the same party). A token is checked at REGISTER only: a registered
//!   connection stays registered after its token expires.
//! - `{"type":"SESSION","caller_id":A,"content":B}` asks for a session between the sender `A`
//!   and peer `B`. When `B` is registered and free, `A` gets the plain string `SESSION_OK` and
//!   `B` gets `{"type":"SESSION","caller_id":A,"content":B}` (its cue to start streaming).
//!   When `B` has not registered yet the request waits
//!   [`pending_session_ttl`](crate::SignalingConfig::pending_session_ttl): `B`'s REGISTER opens
//!   the session as above; at the deadline `A` gets
//!   `{"type":"ERROR","content":"SESSION expired: peer B did not register within 60s"}`.
//!   A peer is in at most one session: a SESSION with a peer in (or waiting for) another
//!   session is refused (`busy`), as is one from a peer already paired with someone else. A
//!   SESSION with one's current partner is answered `SESSION_OK` again. With
//!   [`Pairing::InstanceAndBrowser`] only instance `n` and browser `100 + n` may pair.
//! - `{"type":"SDP", …}` and `{"type":"ICE", …}` are relayed **verbatim** (the whole text
//!   frame, unknown fields included) to the sender's session partner, and to nobody else.
//! - When a peer's connection closes (or is replaced), its partner gets
//!   `{"type":"SESSION_END","caller_id":<that peer>,"content":"disconnected"}` (or
//!   `"reconnected"`), and may accept a new session.
//! - A `caller_id` in SESSION, SDP or ICE must be the connection's own id, when given.
//!
//! Anything refused is answered `{"type":"ERROR","content":"<why>"}` and the connection stays
//! open: bad JSON (`malformed JSON: …`), JSON that is not a message (`malformed message: …`),
//! an unknown type (`unknown message type: …`), SESSION/SDP/ICE before REGISTER
//! (`not registered: send REGISTER first`), a refused token (`REGISTER refused: …`), SDP or
//! ICE outside a session (`no session: …`), a message over
//! [`max_message_bytes`](crate::SignalingConfig::max_message_bytes) (`message too large: …`).
//! [`RequestError`] lists them all.
//!
//! # Limits
//!
//! - Messages: up to `max_message_bytes` (default 256 KiB) are read; larger ones, up to twice
//!   that (at least 1 MiB), get an ERROR; larger frames still close the connection (1009).
//! - Each connection has a queue of [`PEER_QUEUE`] frames. A peer that falls further behind,
//!   or does not take a write within [`WRITE_TIMEOUT`], is disconnected (1008); nobody else
//!   ever waits for it.
//! - A connection must REGISTER within [`REGISTER_WITHIN`] or is closed; at most
//!   [`MAX_CONNECTIONS`] are open at once; the handshake must complete within
//!   [`HANDSHAKE_TIMEOUT`].
//!
//! # Metrics
//!
//! Counters `openspace_signaling_connections_total`, `…_messages_total{outcome}`,
//! `…_errors_total{kind}`, `…_sessions_expired_total`, `…_unregistered_closed_total`,
//! `…_slow_peers_total`, `…_connections_refused_total`; gauges `openspace_signaling_connections`,
//! `…_peers`, `…_sessions`, `…_pending_sessions`. They go to whatever `metrics` recorder the
//! process installed; this port serves nothing but WebSocket.
//!
//! # Example
//!
//! ```no_run
//! use openspace_supervisor::{SignalingConfig, signaling::SignalingServer, token};
//! use std::time::{Duration, SystemTime};
//!
//! # async fn example() -> Result<(), openspace_supervisor::Error> {
//! let secret = b"the secret the supervisor and the backend share";
//! let server = SignalingServer::bind(SignalingConfig::default(), secret).await?;
//! println!("signaling on {}", server.local_addr()?);
//! // The supervisor hands instance 0 this, the backend hands its browser a token for 100.
//! let expires = token::unix_seconds(SystemTime::now() + Duration::from_secs(3600));
//! let for_instance = token::issue(secret, 0, expires);
//! server.run(async { /* a shutdown signal */ }).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The registry alone, on simulated time:
//!
//! ```
//! use openspace_supervisor::{SignalingConfig, token};
//! use openspace_supervisor::signaling::{Handled, Output, PeerRegistry};
//! use std::time::Instant;
//!
//! let secret = b"sixteen bytes or more";
//! let mut registry = PeerRegistry::new(secret, &SignalingConfig::default());
//! let (now, unix_now) = (Instant::now(), 1_750_000_000);
//! let instance = registry.handle_open(now);
//! let register = format!(
//!     r#"{{"type":"REGISTER","caller_id":0,"token":"{}"}}"#,
//!     token::issue(secret, 0, unix_now + 60)
//! );
//! let handled = registry.handle_text(instance, &register, now, unix_now);
//! assert_eq!(handled, Ok(Handled::Registered { replaced: false }));
//! assert_eq!(
//!     registry.poll_output(),
//!     Some(Output::Send { to: instance, text: "REGISTER".into() })
//! );
//! ```

mod connection;
mod message;
mod registry;
mod server;
#[cfg(test)]
mod tests;

pub use connection::WRITE_TIMEOUT;
pub use message::{Message, MessageError, REGISTERED, SESSION_OK};
pub use registry::{
    CloseReason, ConnectionId, Expired, Handled, Output, Pairing, PeerRegistry, REGISTER_WITHIN,
    RequestError, Stats,
};
pub use server::{
    HANDSHAKE_TIMEOUT, MAX_CONNECTIONS, MIN_SECRET_BYTES, PEER_QUEUE, SHUTDOWN_GRACE,
    SignalingServer,
};
