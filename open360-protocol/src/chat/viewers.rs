//! Who watches each room: the viewer counts and named members, exact under concurrency.
//!
//! Every node counts its own connections under one lock: a connection counts once from its
//! join to its disconnection, so no count is ever negative, and each change is reported in the
//! order it happened.
//!
//! With Redis, each node also writes its own count of each room to Redis: an absolute value
//! (a write lost while Redis was away is mended by the next one), under a lease the node
//! renews. A room's count is the sum over the nodes whose lease is alive, computed by the same
//! script that writes, so it is atomic. A node that dies without leaving loses its lease; the
//! first live node to notice removes its viewers and reports the new counts. Every reported
//! count carries `seq`, increasing across the whole chat deployment, so the web service can
//! tell a count from one node that was overtaken by a later one from another node.
//!
//! Redis keys, under the prefix `P`: `P nodes` (sorted set: node → lease expiry, ms),
//! `P viewers:<room>` (hash: node → count), `P members:<room>` (hash: `<node> <user>` →
//! connections), `P rooms:<node>` (set of the node's rooms) and `P seq`. The scripts name keys
//! they compute, so they need a standalone Redis (or one hash slot), not a cluster.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};
use tokio::sync::mpsc;

/// One room's count as it changed: what `web-api` is told as `setViewerCount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Count {
    pub(crate) room: String,
    pub(crate) count: u64,
    /// Increases with every change, deployment-wide with Redis (per process without).
    pub(crate) seq: u64,
}

/// One room's viewers on this node: the connection count, and the named members (a name
/// connected twice counts twice, and is listed once).
#[derive(Debug, Default)]
struct Room {
    viewers: u64,
    members: BTreeMap<String, u64>,
}

/// A change of this node's viewers of a room, with the members whose count changed.
#[derive(Debug)]
struct Change {
    room: String,
    here: u64,
    members: Vec<(String, u64)>,
}

/// The rooms of one chat node, reported in order to the deployment (see the module docs).
pub(crate) struct Viewers {
    rooms: Mutex<HashMap<String, Room>>,
    max_rooms: usize,
    changes: mpsc::UnboundedSender<Change>,
    cluster: Option<Cluster>,
    /// Set once the node has left: connections that linger afterwards change nothing.
    left: std::sync::atomic::AtomicBool,
}

impl Viewers {
    /// Starts counting; each count that changes is handed to `sink`, in order. With `cluster`,
    /// the node's lease is renewed until the returned value is dropped.
    pub(crate) fn start(
        max_rooms: usize,
        cluster: Option<Cluster>,
        sink: impl Fn(Count) + Send + Sync + 'static,
    ) -> Arc<Self> {
        let (changes, pending) = mpsc::unbounded_channel();
        let sink = Arc::new(sink);
        let viewers = Arc::new(Self {
            rooms: Mutex::new(HashMap::new()),
            max_rooms,
            changes,
            cluster: cluster.clone(),
            left: Default::default(),
        });
        tokio::spawn(report(pending, cluster.clone(), sink.clone()));
        if let Some(cluster) = cluster {
            tokio::spawn(keep_lease(Arc::downgrade(&viewers), cluster, sink));
        }
        viewers
    }

    fn rooms<T>(&self, f: impl FnOnce(&mut HashMap<String, Room>) -> T) -> T {
        f(&mut self.rooms.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A connection joins `room`, named `user` or anonymous. Refused when this node holds
    /// its maximum of rooms already.
    pub(crate) fn join(&self, room: &str, user: Option<&str>) -> Result<(), String> {
        self.rooms(|rooms| {
            if !rooms.contains_key(room) && rooms.len() >= self.max_rooms {
                return Err(format!("too many rooms (at most {})", self.max_rooms));
            }
            let state = rooms.entry(room.to_owned()).or_default();
            state.viewers += 1;
            let mut members = Vec::new();
            if let Some(user) = user {
                let n = state.members.entry(user.to_owned()).or_default();
                *n += 1;
                members.push((user.to_owned(), *n));
            }
            // Under the lock, so changes are reported in the order they happened.
            self.changed(room, state.viewers, members);
            Ok(())
        })
    }

    /// A connection that joined `room` as `user` left.
    pub(crate) fn leave(&self, room: &str, user: Option<&str>) {
        self.rooms(|rooms| {
            let Some(state) = rooms.get_mut(room) else {
                return;
            };
            state.viewers = state.viewers.saturating_sub(1);
            let mut members = Vec::new();
            if let Some(user) = user
                && let Some(n) = state.members.get_mut(user)
            {
                *n -= 1;
                members.push((user.to_owned(), *n));
                if *n == 0 {
                    state.members.remove(user);
                }
            }
            let here = state.viewers;
            if here == 0 {
                rooms.remove(room);
            }
            self.changed(room, here, members);
        });
    }

    fn changed(&self, room: &str, here: u64, members: Vec<(String, u64)>) {
        if self.left.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let _ = self.changes.send(Change {
            room: room.to_owned(),
            here,
            members,
        });
    }

    /// Every room of this node reported again, whole (after Redis lost some of it).
    fn resync(&self) {
        self.rooms(|rooms| {
            for (room, state) in rooms.iter() {
                let members = state.members.iter().map(|(u, n)| (u.clone(), *n)).collect();
                self.changed(room, state.viewers, members);
            }
        });
    }

    /// `(count, members)` of `room`, over the whole deployment.
    pub(crate) async fn members(&self, room: &str) -> Result<(u64, Vec<String>), String> {
        if let Some(cluster) = &self.cluster {
            return cluster.members(room).await.map_err(|error| {
                tracing::warn!(%error, "members not read from Redis");
                "the chat's Redis is unavailable".to_owned()
            });
        }
        Ok(self.rooms(|rooms| match rooms.get(room) {
            Some(state) => (state.viewers, state.members.keys().cloned().collect()),
            None => (0, Vec::new()),
        }))
    }

    /// Takes this node's viewers out of the deployment's counts at once (instead of when its
    /// lease expires) and returns the counts that changed.
    pub(crate) async fn leave_cluster(&self) -> Vec<Count> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        self.left.store(true, std::sync::atomic::Ordering::Relaxed);
        match cluster.leave().await {
            Ok(counts) => counts,
            Err(error) => {
                tracing::warn!(%error, "could not leave the chat cluster; its lease will expire");
                Vec::new()
            }
        }
    }
}

/// Reports each change in order: with Redis, writes it and reads the room's total.
async fn report(
    mut pending: mpsc::UnboundedReceiver<Change>,
    cluster: Option<Cluster>,
    sink: Arc<impl Fn(Count) + Send + Sync + 'static>,
) {
    let mut seq = 0;
    while let Some(change) = pending.recv().await {
        let Some(cluster) = &cluster else {
            seq += 1;
            sink(Count {
                room: change.room,
                count: change.here,
                seq,
            });
            continue;
        };
        match cluster.report(&change).await {
            Ok(count) => sink(count),
            Err(error) => {
                metrics::counter!("open360_chat_redis_errors_total").increment(1);
                tracing::warn!(%error, room = change.room, "viewer count not written to Redis");
                cluster.needs_resync();
            }
        }
    }
}

/// Renews the node's lease a few times per lease; reports the counts of nodes found dead.
async fn keep_lease(
    viewers: Weak<Viewers>,
    cluster: Cluster,
    sink: Arc<impl Fn(Count) + Send + Sync + 'static>,
) {
    let mut ticks = tokio::time::interval(cluster.lease / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(viewers) = viewers.upgrade() else {
            return;
        };
        if viewers.left.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        match cluster.renew().await {
            Ok((rejoined, counts)) => {
                if rejoined || cluster.take_resync() {
                    tracing::info!("reporting every room of this node to Redis again");
                    viewers.resync();
                }
                for count in counts {
                    sink(count);
                }
            }
            Err(error) => {
                metrics::counter!("open360_chat_redis_errors_total").increment(1);
                tracing::warn!(%error, "chat lease not renewed");
                cluster.needs_resync();
            }
        }
    }
}

/// Sums the counts of the live nodes in the hash `viewers`.
const TOTAL: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function total(nodes, viewers, now)
  local sum = 0
  local counts = redis.call('HGETALL', viewers)
  for i = 1, #counts, 2 do
    local expiry = redis.call('ZSCORE', nodes, counts[i])
    if expiry and tonumber(expiry) > now then sum = sum + tonumber(counts[i + 1]) end
  end
  return sum
end
local function reap(prefix, nodes, gone, now, told)
  redis.call('ZREM', nodes, gone)
  local rooms = prefix .. 'rooms:' .. gone
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
    local viewers = prefix .. 'viewers:' .. room
    redis.call('HDEL', viewers, gone)
    local members = prefix .. 'members:' .. room
    for _, field in ipairs(redis.call('HKEYS', members)) do
      if string.sub(field, 1, #gone + 1) == gone .. ' ' then redis.call('HDEL', members, field) end
    end
    table.insert(told, room)
    table.insert(told, tostring(total(nodes, viewers, now)))
    table.insert(told, tostring(redis.call('INCR', prefix .. 'seq')))
  end
  redis.call('DEL', rooms)
end
";

/// KEYS: nodes, viewers:<room>, members:<room>, rooms:<node>, seq.
/// ARGV: node, room, count here, lease ms, then user, connections for each changed member.
const REPORT: &str = r"
local now = now_ms()
local rejoined = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[2])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[4], ARGV[2])
end
for i = 5, #ARGV, 2 do
  local field = ARGV[1] .. ' ' .. ARGV[i]
  if tonumber(ARGV[i + 1]) > 0 then
    redis.call('HSET', KEYS[3], field, ARGV[i + 1])
  else
    redis.call('HDEL', KEYS[3], field)
  end
end
return {total(KEYS[1], KEYS[2], now), redis.call('INCR', KEYS[5]), rejoined}
";

/// KEYS: nodes. ARGV: node, lease ms, prefix. Returns whether the node had lost its lease,
/// and `room, count, seq` for each room of the dead nodes it reaped.
const RENEW: &str = r"
local now = now_ms()
local rejoined = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local told = {}
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  reap(ARGV[3], KEYS[1], gone, now, told)
end
return {rejoined, told}
";

/// KEYS: nodes. ARGV: node, prefix.
const LEAVE: &str = r"
local told = {}
reap(ARGV[2], KEYS[1], ARGV[1], now_ms(), told)
return told
";

/// KEYS: nodes, viewers:<room>, members:<room>. Returns the count and the live nodes' members.
const MEMBERS: &str = r"
local now = now_ms()
local names = {}
local fields = redis.call('HKEYS', KEYS[3])
for _, field in ipairs(fields) do
  local space = string.find(field, ' ', 1, true)
  if space then
    local expiry = redis.call('ZSCORE', KEYS[1], string.sub(field, 1, space - 1))
    if expiry and tonumber(expiry) > now then table.insert(names, string.sub(field, space + 1)) end
  end
end
return {total(KEYS[1], KEYS[2], now), names}
";

/// A chat node's place in a Redis-backed deployment.
#[derive(Clone)]
pub(crate) struct Cluster {
    redis: redis::aio::ConnectionManager,
    prefix: String,
    node: String,
    lease: Duration,
    resync: Arc<std::sync::atomic::AtomicBool>,
}

impl Cluster {
    /// Connects and takes this node's lease (and reaps any dead node's viewers).
    pub(crate) async fn join(
        client: redis::Client,
        prefix: String,
        lease: Duration,
    ) -> redis::RedisResult<(Self, Vec<Count>)> {
        let redis = redis::aio::ConnectionManager::new(client).await?;
        let node = format!("{:016x}", rand::random::<u64>());
        let cluster = Self {
            redis,
            prefix,
            node,
            lease,
            resync: Arc::default(),
        };
        let (_, reaped) = cluster.renew().await?;
        Ok((cluster, reaped))
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    fn script(body: &str) -> redis::Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(format!("{TOTAL}{body}"));
        eval
    }

    async fn report(&self, change: &Change) -> redis::RedisResult<Count> {
        let mut eval = Self::script(REPORT);
        eval.arg(5)
            .arg(self.key("nodes"))
            .arg(self.key(&format!("viewers:{}", change.room)))
            .arg(self.key(&format!("members:{}", change.room)))
            .arg(self.key(&format!("rooms:{}", self.node)))
            .arg(self.key("seq"))
            .arg(&self.node)
            .arg(&change.room)
            .arg(change.here)
            .arg(self.lease_ms());
        for (user, n) in &change.members {
            eval.arg(user).arg(n);
        }
        let (count, seq, rejoined): (u64, u64, u8) =
            eval.query_async(&mut self.redis.clone()).await?;
        if rejoined == 1 {
            // Our lease had expired and another node reaped our rooms.
            self.needs_resync();
        }
        Ok(Count {
            room: change.room.clone(),
            count,
            seq,
        })
    }

    async fn renew(&self) -> redis::RedisResult<(bool, Vec<Count>)> {
        let mut eval = Self::script(RENEW);
        eval.arg(1)
            .arg(self.key("nodes"))
            .arg(&self.node)
            .arg(self.lease_ms())
            .arg(&self.prefix);
        let (rejoined, told): (u8, Vec<String>) = eval.query_async(&mut self.redis.clone()).await?;
        Ok((rejoined == 1, counts(told)))
    }

    async fn leave(&self) -> redis::RedisResult<Vec<Count>> {
        let mut eval = Self::script(LEAVE);
        eval.arg(1)
            .arg(self.key("nodes"))
            .arg(&self.node)
            .arg(&self.prefix);
        let told: Vec<String> = eval.query_async(&mut self.redis.clone()).await?;
        Ok(counts(told))
    }

    async fn members(&self, room: &str) -> redis::RedisResult<(u64, Vec<String>)> {
        let mut eval = Self::script(MEMBERS);
        eval.arg(3)
            .arg(self.key("nodes"))
            .arg(self.key(&format!("viewers:{room}")))
            .arg(self.key(&format!("members:{room}")));
        let (count, names): (u64, Vec<String>) = eval.query_async(&mut self.redis.clone()).await?;
        let names: BTreeSet<String> = names.into_iter().collect();
        Ok((count, names.into_iter().collect()))
    }

    fn needs_resync(&self) {
        self.resync
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn take_resync(&self) -> bool {
        self.resync
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

/// `room, count, seq` triples as the scripts return them.
fn counts(told: Vec<String>) -> Vec<Count> {
    told.chunks_exact(3)
        .filter_map(|triple| {
            Some(Count {
                room: triple[0].clone(),
                count: triple[1].parse().ok()?,
                seq: triple[2].parse().ok()?,
            })
        })
        .collect()
}
