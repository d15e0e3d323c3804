use super::{CreateRoomError, Store, StoreError, StoredRoom};
use async_trait::async_trait;
use std::{
    cmp::Reverse,
    collections::{HashMap, hash_map::Entry},
    sync::{Mutex, MutexGuard, PoisonError},
};

/// A [`Store`] in memory: nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rooms: Mutex<HashMap<String, StoredRoom>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, StoredRoom>> {
        // Every method changes the map in one step, so a panic while holding the lock cannot
        // leave it half-updated: poison is ignored.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Up to `limit` clones of the rooms `keep` selects, sorted by `key`.
    fn sorted<K: Ord>(
        &self,
        keep: impl Fn(&StoredRoom) -> bool,
        key: impl Fn(&StoredRoom) -> K,
        limit: usize,
    ) -> Vec<StoredRoom> {
        let mut rooms: Vec<StoredRoom> = self
            .rooms()
            .values()
            .filter(|room| keep(room))
            .cloned()
            .collect();
        rooms.sort_by_key(|room| key(room));
        rooms.truncate(limit);
        rooms
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_room(&self, room: &StoredRoom) -> Result<(), CreateRoomError> {
        match self.rooms().entry(room.slug.clone()) {
            Entry::Occupied(_) => Err(CreateRoomError::SlugTaken {
                slug: room.slug.clone(),
            }),
            Entry::Vacant(vacant) => {
                vacant.insert(room.clone());
                Ok(())
            }
        }
    }

    async fn room(&self, slug: &str) -> Result<Option<StoredRoom>, StoreError> {
        Ok(self.rooms().get(slug).cloned())
    }

    async fn rooms(&self, limit: usize) -> Result<Vec<StoredRoom>, StoreError> {
        Ok(self.sorted(
            |_| true,
            |room| (room.created_at_ms, room.slug.clone()),
            limit,
        ))
    }

    async fn public_rooms(&self, limit: usize) -> Result<Vec<StoredRoom>, StoreError> {
        Ok(self.sorted(
            |room| room.public,
            |room| (Reverse(room.created_at_ms), room.slug.clone()),
            limit,
        ))
    }

    async fn room_count(&self) -> Result<usize, StoreError> {
        Ok(self.rooms().len())
    }

    async fn touch_room(&self, slug: &str, at_ms: i64) -> Result<bool, StoreError> {
        Ok(match self.rooms().get_mut(slug) {
            Some(room) => {
                room.last_active_ms = room.last_active_ms.max(at_ms);
                true
            }
            None => false,
        })
    }

    async fn rooms_idle_since(&self, cutoff_ms: i64) -> Result<Vec<String>, StoreError> {
        let idle = self.sorted(
            |room| room.last_active_ms <= cutoff_ms,
            |room| (room.last_active_ms, room.slug.clone()),
            usize::MAX,
        );
        Ok(idle.into_iter().map(|room| room.slug).collect())
    }

    async fn delete_room(&self, slug: &str) -> Result<bool, StoreError> {
        Ok(self.rooms().remove(slug).is_some())
    }

    async fn delete_room_if_idle(&self, slug: &str, cutoff_ms: i64) -> Result<bool, StoreError> {
        let mut rooms = self.rooms();
        let idle = rooms
            .get(slug)
            .is_some_and(|room| room.last_active_ms <= cutoff_ms);
        if idle {
            rooms.remove(slug);
        }
        Ok(idle)
    }
}
