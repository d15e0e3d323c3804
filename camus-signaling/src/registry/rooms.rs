//! Rooms: creation, slugs and the views pages show.

use super::{Room, RoomError, RoomRegistry, slug, to_usize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// A new room, from the creation form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSpec {
    /// Its name, shown on pages; the slug is made from it.
    pub name: String,
    /// Its guest limit: `None` for the configured
    /// [`default_guest_limit`](crate::CamusConfig::default_guest_limit), `Some(0)` for none.
    /// Either way at most [`max_clients_per_room`](crate::CamusConfig::max_clients_per_room).
    pub guest_limit: Option<u32>,
    /// Listed on the index page.
    pub public: bool,
    /// Whether entry needs a password (checked by the HTTP layer against its stored hash;
    /// the registry only shows it).
    pub password_protected: bool,
}

impl RoomSpec {
    /// A private room without password and with the default guest limit.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            guest_limit: None,
            public: false,
            password_protected: false,
        }
    }
}

/// A room, as pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomView {
    /// Its slug (`/room/<slug>`; the `room_id` of `room-info`).
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Live clients (connected, or dropped and not yet reaped): the seats taken.
    pub guests: usize,
    /// Its guest limit; 0 for none (then `max_clients_per_room` still applies).
    pub guest_limit: u32,
    /// Listed on the index page.
    pub public: bool,
    /// Entry needs a password.
    pub password_protected: bool,
}

impl RoomRegistry {
    /// Creates a room and returns its slug: the name's lowercase ASCII letters and digits,
    /// other runs made one `-` (at most 64 characters; `room` if nothing is left), and `-2`,
    /// `-3`… when taken. Empty until someone connects; deleted after `room_idle_timeout` so.
    pub fn create_room(&mut self, spec: RoomSpec, now: Instant) -> Result<String, RoomError> {
        if self.rooms.len() >= self.limits.max_rooms {
            return Err(RoomError::TooManyRooms {
                limit: self.limits.max_rooms,
            });
        }
        let base = slug::slugify(&spec.name);
        let mut slug = base.clone();
        let mut suffix = 2_u64;
        while self.rooms.contains_key(slug.as_str()) {
            slug = format!("{base}-{suffix}");
            suffix += 1;
        }
        let room = self.new_room(spec, now);
        self.rooms.insert(Arc::from(slug.as_str()), room);
        Ok(slug)
    }

    /// Puts back a room kept by a store (after a restart) under its own slug: empty, its idle
    /// clock started at `now`. False, and nothing changed, when the slug is taken already or
    /// the registry holds `max_rooms`.
    pub fn restore_room(&mut self, slug: &str, spec: RoomSpec, now: Instant) -> bool {
        if self.rooms.contains_key(slug) || self.rooms.len() >= self.limits.max_rooms {
            return false;
        }
        let room = self.new_room(spec, now);
        self.rooms.insert(Arc::from(slug), room);
        true
    }

    /// The slugs of the rooms [`tick`](Self::tick) deleted since the last call, for the
    /// server to delete from its store.
    pub fn take_deleted_rooms(&mut self) -> Vec<String> {
        std::mem::take(&mut self.deleted_rooms)
    }

    fn new_room(&self, spec: RoomSpec, now: Instant) -> Room {
        let max = self.limits.max_clients_per_room;
        let requested = spec.guest_limit.unwrap_or(self.limits.default_guest_limit);
        let guest_limit = if requested == 0 {
            0
        } else {
            requested.min(max)
        };
        let capacity = to_usize(if guest_limit == 0 { max } else { guest_limit });
        Room {
            name: spec.name,
            guest_limit,
            capacity,
            public: spec.public,
            password_protected: spec.password_protected,
            members: BTreeMap::new(),
            seated: 0,
            waiting: 0,
            empty_since: Some(now),
        }
    }

    /// The room with this slug.
    pub fn room(&self, slug: &str) -> Option<RoomView> {
        self.rooms
            .get_key_value(slug)
            .map(|(slug, room)| room.view(slug))
    }

    /// The public rooms, by slug.
    pub fn public_rooms(&self) -> Vec<RoomView> {
        let mut rooms: Vec<RoomView> = self
            .rooms
            .iter()
            .filter(|(_, room)| room.public)
            .map(|(slug, room)| room.view(slug))
            .collect();
        rooms.sort_unstable_by(|a, b| a.slug.cmp(&b.slug));
        rooms
    }
}

impl Room {
    fn view(&self, slug: &str) -> RoomView {
        RoomView {
            slug: slug.to_owned(),
            name: self.name.clone(),
            guests: self.seated,
            guest_limit: self.guest_limit,
            public: self.public,
            password_protected: self.password_protected,
        }
    }
}
