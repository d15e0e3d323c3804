//! Rooms spanning several servers: the clients of the other servers, as their servers
//! announce them, and the messages relayed to and from them.
//!
//! With [`enable_cluster`](RoomRegistry::enable_cluster), the registry also says what the
//! other servers must hear ([`Outgoing::Announce`] when a client of this server joins,
//! renames or leaves; [`Outgoing::Forward`] for a message to the room or to a client of
//! another server), and takes what they say ([`remote_join`](RoomRegistry::remote_join),
//! [`remote_leave`](RoomRegistry::remote_leave),
//! [`remote_deliver`](RoomRegistry::remote_deliver),
//! [`remote_server_gone`](RoomRegistry::remote_server_gone)). A remote client holds a seat and
//! shows in `room-info` like a local one; its own server pings and reaps it. Seats are
//! counted per server exactly and across servers as they are announced, so two joins racing on
//! two servers for the last seat may both get in.

use super::{Client, ClientId, DEFAULT_USERNAME, Envelope, Outgoing, Presence, RoomRegistry, send};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

impl RoomRegistry {
    /// Makes the outputs other servers need ([`Outgoing::Forward`], [`Outgoing::Announce`]).
    pub fn enable_cluster(&mut self) {
        self.cluster = true;
    }

    /// Appends the announcement of `client`'s presence in `room`, in a cluster.
    pub(super) fn announce(
        &self,
        room: &Arc<str>,
        client: ClientId,
        username: Option<String>,
        out: &mut Vec<Outgoing>,
    ) {
        if self.cluster {
            out.push(Outgoing::Announce {
                room: Arc::clone(room),
                client,
                username,
            });
        }
    }

    /// The clients seated on this server (connected or dropped): `(room, id, username)`, for
    /// announcing them again to a server that just joined the cluster.
    pub fn local_clients(&self) -> Vec<(Arc<str>, ClientId, String)> {
        let mut clients: Vec<_> = self
            .clients
            .iter()
            .filter(|(_, c)| c.presence.is_local_seat())
            .map(|(id, c)| (Arc::clone(&c.room), *id, c.username.clone()))
            .collect();
        clients.sort_unstable();
        clients
    }

    /// Server `server` says its client `id` is in room `slug` as `username` (joined, or
    /// renamed). A room this registry does not hold is ignored (restore it from the store
    /// first); a client connected here stays here; one that was only admitted or dropped here
    /// has moved to that server. The room's connected clients get `room-info`.
    pub fn remote_join(
        &mut self,
        slug: &str,
        id: ClientId,
        username: &str,
        server: u64,
        now: Instant,
    ) -> Vec<Outgoing> {
        let Some((room_key, _)) = self.rooms.get_key_value(slug) else {
            return Vec::new();
        };
        let room_key = Arc::clone(room_key);
        let username: String = if username.is_empty() {
            DEFAULT_USERNAME.to_owned()
        } else {
            username.chars().take(super::MAX_USERNAME_CHARS).collect()
        };
        match self
            .clients
            .get(&id)
            .map(|c| (Arc::clone(&c.room), c.presence))
        {
            Some((_, Presence::Connected(_))) => return Vec::new(),
            Some((room, presence)) if *room == *slug => {
                let room_state = self.rooms.get_mut(slug).expect("looked up above");
                if presence == Presence::Admitted {
                    room_state.waiting -= 1;
                    room_state.seated += 1;
                    room_state.empty_since = None;
                }
                let client = self.clients.get_mut(&id).expect("looked up above");
                client.presence = Presence::Remote(server);
                client.username = username;
            }
            Some(_) => {
                // A client of another room under this id: the announcement is the truth.
                self.remove_client(&id, now);
                self.add_remote(&room_key, id, username, server, now);
            }
            None => self.add_remote(&room_key, id, username, server, now),
        }
        let mut out = Vec::new();
        self.room_info_to_all(&room_key, &mut out);
        out
    }

    fn add_remote(
        &mut self,
        room_key: &Arc<str>,
        id: ClientId,
        username: String,
        server: u64,
        now: Instant,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(room) = self.rooms.get_mut(room_key) {
            room.members.insert(seq, id);
            room.seated += 1;
            room.empty_since = None;
        }
        self.clients.insert(
            id,
            Client {
                room: Arc::clone(room_key),
                seq,
                username,
                presence: Presence::Remote(server),
                last_seen: now,
                pinged_at: None,
                bucket: now,
            },
        );
    }

    /// Another server says its client `id` left (`bye`, or reaped there), with the `bye`'s
    /// `data`. Only a remote client is removed; the others of its room here get its `bye` and
    /// `room-info`.
    pub fn remote_leave(&mut self, id: &ClientId, data: Value, now: Instant) -> Vec<Outgoing> {
        if !matches!(
            self.clients.get(id).map(|c| c.presence),
            Some(Presence::Remote(_))
        ) {
            return Vec::new();
        }
        let Some(removed) = self.remove_client(id, now) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        self.byes(&removed.room, &[*id], &data, &mut out);
        out
    }

    /// Server `server` stopped answering: its clients leave every room here, as if reaped.
    pub fn remote_server_gone(&mut self, server: u64, data: Value, now: Instant) -> Vec<Outgoing> {
        let mut gone: Vec<(Arc<str>, u64, ClientId)> = self
            .clients
            .iter()
            .filter(|(_, c)| c.presence == Presence::Remote(server))
            .map(|(id, c)| (Arc::clone(&c.room), c.seq, *id))
            .collect();
        gone.sort_unstable();
        let mut out = Vec::new();
        for room in gone.chunk_by(|a, b| a.0 == b.0) {
            let ids: Vec<ClientId> = room.iter().map(|(_, _, id)| *id).collect();
            for id in &ids {
                self.remove_client(id, now);
            }
            self.byes(&room[0].0, &ids, &data, &mut out);
        }
        out
    }

    /// `bye` from each of `gone` to the connected clients of `room`, then `room-info`.
    fn byes(&self, room: &Arc<str>, gone: &[ClientId], data: &Value, out: &mut Vec<Outgoing>) {
        for other in self.connected_members(room) {
            for id in gone {
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
        }
        self.room_info_to_all(room, out);
    }

    /// A message another server relayed for room `slug`: to its client `to` if that one is
    /// connected here, or (`None`) to every client of the room connected here.
    pub fn remote_deliver(
        &self,
        slug: &str,
        to: Option<&ClientId>,
        envelope: Arc<Envelope>,
    ) -> Vec<Outgoing> {
        let members = match to {
            Some(to) => {
                let here = self.clients.get(to).is_some_and(|c| {
                    *c.room == *slug && matches!(c.presence, Presence::Connected(_))
                });
                if here { vec![*to] } else { Vec::new() }
            }
            None => self.connected_members(slug),
        };
        members
            .into_iter()
            .map(|to| Outgoing::Send {
                to,
                envelope: Arc::clone(&envelope),
            })
            .collect()
    }
}
