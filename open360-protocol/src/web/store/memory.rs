//! The web store in memory: one lock over every map, so each method is one atomic step.

use super::{
    Channel, ChannelQuery, ChannelSettings, LiveState, User, Vod, WebStore, WebStoreError,
};
use async_trait::async_trait;
use std::{
    cmp::Reverse,
    collections::{HashMap, hash_map::Entry},
    fmt,
    sync::{Mutex, MutexGuard, PoisonError},
};

/// A [`WebStore`] in memory: nothing survives the process. Its `Debug` shows counts, never a
/// key or a hash.
#[derive(Debug, Default)]
pub struct MemoryWebStore {
    state: Mutex<State>,
}

/// Everything the store holds, keyed by the lowercased (ASCII) username.
#[derive(Default)]
struct State {
    users: HashMap<String, User>,
    channels: HashMap<String, Channel>,
    /// The lowercased owner of each current stream key.
    keys: HashMap<String, String>,
    /// VODs by lowercased owner, then by stream id.
    vods: HashMap<String, HashMap<String, Vod>>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key map holds secrets: only sizes are shown.
        f.debug_struct("State")
            .field("users", &self.users.len())
            .field("vods", &self.vods.values().map(HashMap::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

impl State {
    fn channel_mut(&mut self, username: &str) -> Result<&mut Channel, WebStoreError> {
        self.channels
            .get_mut(&username.to_ascii_lowercase())
            .ok_or_else(|| WebStoreError::NoUser(username.to_owned()))
    }
}

/// Orders live states as listings do: online, then lurking, then offline.
pub(super) fn rank(live: LiveState) -> i64 {
    match live {
        LiveState::Offline => 0,
        LiveState::Lurking => 1,
        LiveState::Online => 2,
    }
}

impl MemoryWebStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every method checks before it changes anything, and changes cannot panic halfway:
        // poison is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl WebStore for MemoryWebStore {
    async fn create_user(&self, user: &User) -> Result<(), WebStoreError> {
        let lower = user.username.to_ascii_lowercase();
        let mut state = self.state();
        if state.users.contains_key(&lower) {
            return Err(WebStoreError::UsernameTaken);
        }
        if let Some(key) = &user.stream_key {
            match state.keys.entry(key.clone()) {
                Entry::Occupied(_) => return Err(WebStoreError::KeyTaken),
                Entry::Vacant(vacant) => {
                    vacant.insert(lower.clone());
                }
            }
        }
        state.users.insert(lower.clone(), user.clone());
        let channel = Channel {
            username: user.username.clone(),
            settings: ChannelSettings::default(),
            live: LiveState::Offline,
            stream_id: None,
            live_since_ms: 0,
            viewers: 0,
            viewers_seq: 0,
            total_views: 0,
        };
        state.channels.insert(lower, channel);
        Ok(())
    }

    async fn user(&self, username: &str) -> Result<Option<User>, WebStoreError> {
        Ok(self
            .state()
            .users
            .get(&username.to_ascii_lowercase())
            .cloned())
    }

    async fn set_stream_key(&self, username: &str, key: &str) -> Result<(), WebStoreError> {
        let lower = username.to_ascii_lowercase();
        let mut state = self.state();
        let State { users, keys, .. } = &mut *state;
        let Some(user) = users.get_mut(&lower) else {
            return Err(WebStoreError::NoUser(username.to_owned()));
        };
        if keys.get(key).is_some_and(|owner| *owner != lower) {
            return Err(WebStoreError::KeyTaken);
        }
        if let Some(old) = user.stream_key.replace(key.to_owned()) {
            keys.remove(&old);
        }
        keys.insert(key.to_owned(), lower);
        Ok(())
    }

    async fn user_by_stream_key(&self, key: &str) -> Result<Option<String>, WebStoreError> {
        let state = self.state();
        Ok(state
            .keys
            .get(key)
            .and_then(|lower| state.users.get(lower))
            .map(|user| user.username.clone()))
    }

    async fn channel(&self, username: &str) -> Result<Option<Channel>, WebStoreError> {
        Ok(self
            .state()
            .channels
            .get(&username.to_ascii_lowercase())
            .cloned())
    }

    async fn update_settings(
        &self,
        username: &str,
        settings: &ChannelSettings,
    ) -> Result<(), WebStoreError> {
        self.state().channel_mut(username)?.settings = settings.clone();
        Ok(())
    }

    async fn set_live(
        &self,
        username: &str,
        live: LiveState,
        stream_id: Option<&str>,
        at_ms: i64,
    ) -> Result<(), WebStoreError> {
        let mut state = self.state();
        let channel = state.channel_mut(username)?;
        if channel.stream_id.as_deref() != stream_id {
            channel.live_since_ms = at_ms;
        }
        channel.live = live;
        channel.stream_id = stream_id.map(str::to_owned);
        Ok(())
    }

    async fn set_viewers(
        &self,
        username: &str,
        count: u64,
        seq: u64,
    ) -> Result<bool, WebStoreError> {
        let mut state = self.state();
        match state.channel_mut(username) {
            Ok(channel) if seq > channel.viewers_seq => {
                channel.viewers = count;
                channel.viewers_seq = seq;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn increment_views(&self, username: &str) -> Result<(), WebStoreError> {
        if let Ok(channel) = self.state().channel_mut(username) {
            channel.total_views = channel.total_views.saturating_add(1);
        }
        Ok(())
    }

    async fn channels(&self, query: &ChannelQuery) -> Result<Vec<Channel>, WebStoreError> {
        let state = self.state();
        let mut channels: Vec<&Channel> = state
            .channels
            .values()
            .filter(|channel| {
                query
                    .directory
                    .as_ref()
                    .is_none_or(|directory| channel.settings.directory == *directory)
                    && query
                        .tag
                        .as_ref()
                        .is_none_or(|tag| channel.settings.tags.contains(tag))
                    && (!query.live_only || channel.live != LiveState::Offline)
            })
            .collect();
        channels.sort_by(|a, b| {
            (Reverse(rank(a.live)), Reverse(a.viewers), &a.username).cmp(&(
                Reverse(rank(b.live)),
                Reverse(b.viewers),
                &b.username,
            ))
        });
        Ok(channels.into_iter().take(query.limit).cloned().collect())
    }

    async fn add_vod(&self, vod: &Vod) -> Result<(), WebStoreError> {
        let lower = vod.username.to_ascii_lowercase();
        let mut state = self.state();
        let Some(owner) = state.users.get(&lower).map(|user| user.username.clone()) else {
            return Err(WebStoreError::NoUser(vod.username.clone()));
        };
        let vod = Vod {
            username: owner,
            ..vod.clone()
        };
        state
            .vods
            .entry(lower)
            .or_default()
            .insert(vod.stream_id.clone(), vod);
        Ok(())
    }

    async fn vods(&self, username: &str, limit: usize) -> Result<Vec<Vod>, WebStoreError> {
        let state = self.state();
        let Some(vods) = state.vods.get(&username.to_ascii_lowercase()) else {
            return Ok(Vec::new());
        };
        let mut vods: Vec<&Vod> = vods.values().collect();
        vods.sort_by(|a, b| (b.started_at_ms, &b.stream_id).cmp(&(a.started_at_ms, &a.stream_id)));
        Ok(vods.into_iter().take(limit).cloned().collect())
    }
}
