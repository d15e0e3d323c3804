//! The timers: ping silent clients, reap the silent ones, delete idle rooms.

use super::{
    ClientId, CloseReason, Envelope, Outgoing, Presence, RoomRegistry, from_ground_control, send,
};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

impl RoomRegistry {
    /// Runs the timers at `now`; `wall` dates the `ping`s and `bye`s (Unix milliseconds, as
    /// the original's). In order: clients silent for `reap_after_silence` are removed (a
    /// connected one gets ground control's `bye` and its socket closed; the others of its room
    /// get a `bye` from it and one `room-info`); connected clients silent for
    /// `ping_after_silence` get a `ping`, repeated every `ping_interval` while they stay silent;
    /// rooms without a live client for `room_idle_timeout` are deleted with their waiting
    /// clients.
    pub fn tick(&mut self, now: Instant, wall: SystemTime) -> Vec<Outgoing> {
        let unix_ms = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut out = Vec::new();
        self.reap(now, unix_ms, &mut out);
        self.ping(now, unix_ms, &mut out);
        self.delete_idle_rooms(now);
        out
    }

    fn reap(&mut self, now: Instant, unix_ms: u64, out: &mut Vec<Outgoing>) {
        let limit = self.limits.reap_after_silence;
        let mut silent: Vec<(Arc<str>, u64, ClientId)> = self
            .clients
            .iter()
            .filter(|(_, c)| !matches!(c.presence, Presence::Remote(_)))
            .filter(|(_, c)| now.saturating_duration_since(c.last_seen) >= limit)
            .map(|(id, c)| (Arc::clone(&c.room), c.seq, *id))
            .collect();
        // Rooms one after the other, each in seat order: the same events, the same output.
        silent.sort_unstable();
        for room in silent.chunk_by(|a, b| a.0 == b.0) {
            let slug = &room[0].0;
            let mut gone = Vec::new();
            for (_, _, id) in room {
                match self.remove_client(id, now).map(|removed| removed.presence) {
                    Some(Presence::Connected(_)) => {
                        out.push(send(*id, from_ground_control(*id, "bye", unix_ms)));
                        out.push(Outgoing::Close {
                            to: *id,
                            reason: CloseReason::Reaped,
                        });
                        gone.push(*id);
                    }
                    Some(Presence::Dropped) => gone.push(*id),
                    Some(Presence::Admitted | Presence::Remote(_)) | None => {}
                }
            }
            if gone.is_empty() {
                continue;
            }
            for other in self.connected_members(slug) {
                for id in &gone {
                    out.push(send(
                        other,
                        Envelope {
                            sender: id.as_str().to_owned(),
                            receiver: other.as_str().to_owned(),
                            kind: "bye".to_owned(),
                            data: unix_ms.into(),
                        },
                    ));
                }
            }
            self.room_info_to_all(slug, out);
            for id in gone {
                self.announce(slug, id, None, out);
            }
        }
    }

    fn ping(&mut self, now: Instant, unix_ms: u64, out: &mut Vec<Outgoing>) {
        let silence = self.limits.ping_after_silence;
        let interval = self.limits.ping_interval;
        let mut due: Vec<(Arc<str>, u64, ClientId)> = self
            .clients
            .iter_mut()
            .filter(|(_, c)| {
                matches!(c.presence, Presence::Connected(_))
                    && now.saturating_duration_since(c.last_seen) >= silence
                    && c.pinged_at
                        .is_none_or(|at| now.saturating_duration_since(at) >= interval)
            })
            .map(|(id, c)| {
                c.pinged_at = Some(now);
                (Arc::clone(&c.room), c.seq, *id)
            })
            .collect();
        due.sort_unstable();
        for (_, _, id) in due {
            out.push(send(id, from_ground_control(id, "ping", unix_ms)));
        }
    }

    fn delete_idle_rooms(&mut self, now: Instant) {
        let idle = self.limits.room_idle_timeout;
        let expired: Vec<Arc<str>> = self
            .rooms
            .iter()
            .filter(|(_, room)| {
                room.seated == 0
                    && room
                        .empty_since
                        .is_some_and(|since| now.saturating_duration_since(since) >= idle)
            })
            .map(|(slug, _)| Arc::clone(slug))
            .collect();
        for slug in expired {
            self.deleted_rooms.push(slug.to_string());
            if let Some(room) = self.rooms.remove(&slug) {
                // Only admitted clients can be left: they have no socket to close.
                for id in room.members.values() {
                    self.clients.remove(id);
                }
            }
        }
    }
}
