//! Scale-out over Redis: every node hears every other node's livestreams.
//!
//! A node whose streamer uploads a chunk hands it to its own listeners at once and publishes
//! it on one pub/sub channel; every other node hands it to its listeners with the same
//! slow-listener policy and keeps it for late joiners. `started` and `ended` travel on the
//! same channel, from the same connection, so they stay in order with the chunks.
//!
//! socketioxide's Redis adapter is not used for this: its broadcasts drop a full socket queue's
//! error without saying whose it was, so a slow listener on another node would lose audio in
//! silence instead of being told and disconnected.
//!
//! Who streams a livestream is a lease in Redis (`SET NX PX`), renewed by the streamer's node:
//! it makes "one streamer per livestream" hold across nodes, and when a node dies its lease
//! expires, so other nodes end their listeners and a new streamer may start.

use bytes::{BufMut, Bytes, BytesMut};
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio::sync::mpsc;

/// One streaming session of a livestream: a streamer's connection, cluster-wide.
pub(crate) type Session = [u8; 16];

/// What a node tells the others about a livestream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A streamer was admitted.
    Started,
    /// A chunk to relay.
    Chunk(Bytes),
    /// The streamer left.
    Ended,
}

/// One pub/sub message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The node that sent it (a node ignores its own).
    pub(crate) node: [u8; 16],
    pub(crate) session: Session,
    pub(crate) livestream: String,
    pub(crate) event: Event,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("truncated message")]
    Truncated,
    #[error("unknown version {0}")]
    Version(u8),
    #[error("unknown event kind {0}")]
    Kind(u8),
    #[error("livestream id is not UTF-8")]
    Id,
}

/// Layout: version (1) · kind (1) · node (16) · session (16) · id length (2, big-endian) ·
/// id (UTF-8) · chunk (the rest; empty unless kind is a chunk).
const VERSION: u8 = 1;
const HEADER: usize = 1 + 1 + 16 + 16 + 2;

impl Message {
    pub(crate) fn encode(&self) -> Bytes {
        let chunk = match &self.event {
            Event::Chunk(chunk) => chunk.as_ref(),
            Event::Started | Event::Ended => &[],
        };
        let id = self.livestream.as_bytes();
        let id_len = u16::try_from(id.len()).unwrap_or(u16::MAX);
        let id = &id[..usize::from(id_len)];
        let mut out = BytesMut::with_capacity(HEADER + id.len() + chunk.len());
        out.put_u8(VERSION);
        out.put_u8(match self.event {
            Event::Started => 0,
            Event::Chunk(_) => 1,
            Event::Ended => 2,
        });
        out.put_slice(&self.node);
        out.put_slice(&self.session);
        out.put_u16(id_len);
        out.put_slice(id);
        out.put_slice(chunk);
        out.freeze()
    }

    pub(crate) fn decode(bytes: &Bytes) -> Result<Self, DecodeError> {
        let header = bytes.get(..HEADER).ok_or(DecodeError::Truncated)?;
        if header[0] != VERSION {
            return Err(DecodeError::Version(header[0]));
        }
        let mut node = [0; 16];
        node.copy_from_slice(&header[2..18]);
        let mut session = [0; 16];
        session.copy_from_slice(&header[18..34]);
        let id_end = HEADER + usize::from(u16::from_be_bytes([header[34], header[35]]));
        let id = bytes.get(HEADER..id_end).ok_or(DecodeError::Truncated)?;
        let livestream = std::str::from_utf8(id)
            .map_err(|_| DecodeError::Id)?
            .to_owned();
        let event = match header[1] {
            0 => Event::Started,
            1 => Event::Chunk(bytes.slice(id_end..)),
            2 => Event::Ended,
            other => return Err(DecodeError::Kind(other)),
        };
        Ok(Self {
            node,
            session,
            livestream,
            event,
        })
    }
}

/// Messages waiting for the publisher; one more and the upload is refused, not lost silently.
const OUTBOX: usize = 256;

/// Compare-and-renew and compare-and-delete of a lease: only its holder may.
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('DEL', KEYS[1]) else return 0 end";

/// A node's link to the others.
pub(crate) struct Cluster {
    node: [u8; 16],
    channel: String,
    leases: String,
    lease: Duration,
    commands: ConnectionManager,
    outbox: mpsc::Sender<Bytes>,
}

/// The halves [`Cluster::connect`] leaves for the caller's tasks.
pub(crate) struct Feeds {
    /// Messages to publish, in order.
    pub(crate) outbox: mpsc::Receiver<Bytes>,
    /// The subscription, already confirmed by Redis.
    pub(crate) subscription: redis::aio::PubSub,
    pub(crate) client: redis::Client,
}

impl Cluster {
    /// Connects, and subscribes before returning: no message published after this is missed.
    pub(crate) async fn connect(
        url: &str,
        prefix: &str,
        lease: Duration,
    ) -> redis::RedisResult<(Self, Feeds)> {
        let client = redis::Client::open(url)?;
        let commands = ConnectionManager::new(client.clone()).await?;
        let channel = format!("{prefix}live");
        let mut subscription = client.get_async_pubsub().await?;
        subscription.subscribe(&channel).await?;
        let (outbox, pending) = mpsc::channel(OUTBOX);
        let cluster = Self {
            node: rand::random(),
            channel,
            leases: format!("{prefix}streamer:"),
            lease,
            commands,
            outbox,
        };
        let feeds = Feeds {
            outbox: pending,
            subscription,
            client,
        };
        Ok((cluster, feeds))
    }

    /// The lease's length; its holder renews it three times as often.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// Room in the outbox for one message, or `None` when the publisher is that far behind.
    pub(crate) fn reserve(&self) -> Option<Outgoing<'_>> {
        let permit = self.outbox.try_reserve().ok()?;
        Some(Outgoing {
            node: self.node,
            permit,
        })
    }

    fn key(&self, livestream: &str) -> String {
        format!("{}{livestream}", self.leases)
    }

    /// Takes the lease of `livestream` for `session`, unless another session holds it.
    pub(crate) async fn claim(
        &self,
        livestream: &str,
        session: &Session,
    ) -> redis::RedisResult<bool> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(self.key(livestream))
            .arg(hex(session))
            .arg("NX")
            .arg("PX")
            .arg(millis(self.lease))
            .query_async(&mut self.commands.clone())
            .await?;
        Ok(taken.is_some())
    }

    /// Extends the lease; `false` when `session` no longer holds it.
    pub(crate) async fn renew(
        &self,
        livestream: &str,
        session: &Session,
    ) -> redis::RedisResult<bool> {
        let renewed: i64 = redis::cmd("EVAL")
            .arg(RENEW)
            .arg(1)
            .arg(self.key(livestream))
            .arg(hex(session))
            .arg(millis(self.lease))
            .query_async(&mut self.commands.clone())
            .await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up, if `session` holds it.
    pub(crate) async fn release(
        &self,
        livestream: &str,
        session: &Session,
    ) -> redis::RedisResult<()> {
        let _: i64 = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.key(livestream))
            .arg(hex(session))
            .query_async(&mut self.commands.clone())
            .await?;
        Ok(())
    }

    /// Who streams each of `livestreams` now, anywhere in the cluster.
    pub(crate) async fn holders(
        &self,
        livestreams: &[String],
    ) -> redis::RedisResult<Vec<Option<Session>>> {
        if livestreams.is_empty() {
            return Ok(Vec::new());
        }
        let mut get = redis::cmd("MGET");
        for livestream in livestreams {
            get.arg(self.key(livestream));
        }
        let values: Vec<Option<String>> = get.query_async(&mut self.commands.clone()).await?;
        Ok(values
            .into_iter()
            .map(|value| value.as_deref().and_then(unhex))
            .collect())
    }

    /// Publishes the outbox in order, a pipeline of whatever is waiting at a time, until the
    /// cluster is dropped. A failed batch is lost to the other nodes (counted, logged): their
    /// listeners miss those chunks, and a lost `ended` is made up for by the lease expiring.
    pub(crate) async fn publish(
        mut commands: ConnectionManager,
        channel: String,
        mut outbox: mpsc::Receiver<Bytes>,
    ) {
        let mut batch = Vec::with_capacity(64);
        while outbox.recv_many(&mut batch, 64).await > 0 {
            let mut pipe = redis::pipe();
            for message in &batch {
                pipe.cmd("PUBLISH")
                    .arg(&channel)
                    .arg(message.as_ref())
                    .ignore();
            }
            if let Err(error) = pipe.query_async::<()>(&mut commands).await {
                tracing::warn!(%error, lost = batch.len(), "cannot publish to the cluster");
                metrics::counter!("castaway_cluster_publish_failures_total")
                    .increment(batch.len() as u64);
            }
            batch.clear();
        }
    }

    /// What [`publish`](Self::publish) needs.
    pub(crate) fn publisher(&self) -> (ConnectionManager, String) {
        (self.commands.clone(), self.channel.clone())
    }

    /// Hands every other node's messages to `apply`, resubscribing (with backoff) when the
    /// subscription breaks; while it is down, this node's listeners of other nodes' streamers
    /// miss chunks (logged), and the leases tell whether those streams are still on.
    pub(crate) async fn subscribe(
        node: [u8; 16],
        channel: String,
        mut subscription: redis::aio::PubSub,
        client: redis::Client,
        apply: impl Fn(Message),
    ) {
        use futures::StreamExt as _;
        let mut backoff = RESUBSCRIBE_FIRST;
        loop {
            {
                let mut messages = subscription.on_message();
                while let Some(received) = messages.next().await {
                    backoff = RESUBSCRIBE_FIRST;
                    let bytes = Bytes::copy_from_slice(received.get_payload_bytes());
                    match Message::decode(&bytes) {
                        Ok(message) if message.node != node => apply(message),
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(%error, "unreadable cluster message; ignored");
                            metrics::counter!("castaway_cluster_unreadable_total").increment(1);
                        }
                    }
                }
            }
            tracing::warn!("cluster subscription lost; resubscribing");
            subscription = loop {
                // A retry timer, not a wait for an event: Redis is gone until it answers.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RESUBSCRIBE_MAX);
                let resubscribed = async {
                    let mut fresh = client.get_async_pubsub().await?;
                    fresh.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(fresh)
                };
                match resubscribed.await {
                    Ok(fresh) => break fresh,
                    Err(error) => tracing::warn!(%error, "cannot resubscribe to the cluster"),
                }
            };
            tracing::info!("cluster subscription back");
        }
    }

    /// This node's id, in the messages it sends.
    pub(crate) fn node(&self) -> [u8; 16] {
        self.node
    }
}

const RESUBSCRIBE_FIRST: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);

/// A reserved place in the outbox.
pub(crate) struct Outgoing<'a> {
    node: [u8; 16],
    permit: mpsc::Permit<'a, Bytes>,
}

impl Outgoing<'_> {
    pub(crate) fn send(self, session: Session, livestream: &str, event: Event) {
        let message = Message {
            node: self.node,
            session,
            livestream: livestream.to_owned(),
            event,
        };
        self.permit.send(message.encode());
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn hex(session: &Session) -> String {
    session.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Session> {
    let mut session = [0; 16];
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    for (byte, pair) in session.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(session)
}

/// Decodes arbitrary bytes as a cluster message; what the fuzz target runs. A message that
/// decodes must encode back to the same bytes.
#[cfg(feature = "fuzzing")]
pub fn fuzz_message(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(message) = Message::decode(&bytes) {
        let again = message.encode();
        assert_eq!(Message::decode(&again).as_ref(), Ok(&message));
    }
}

#[cfg(test)]
mod wire {
    use super::*;

    fn message(event: Event) -> Message {
        Message {
            node: [7; 16],
            session: [9; 16],
            livestream: "ls-é".into(),
            event,
        }
    }

    #[test]
    fn every_event_round_trips() {
        for event in [
            Event::Started,
            Event::Chunk(Bytes::from_static(b"\x00\xffaudio")),
            Event::Chunk(Bytes::new()),
            Event::Ended,
        ] {
            let message = message(event);
            assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn bad_bytes_are_errors() {
        let good = message(Event::Chunk(Bytes::from_static(b"abc"))).encode();
        for len in 0..HEADER + 4 {
            assert_eq!(
                Message::decode(&good.slice(..len)),
                Err(DecodeError::Truncated),
                "{len} bytes"
            );
        }
        let mut bad = good.to_vec();
        bad[0] = 2;
        assert_eq!(Message::decode(&bad.into()), Err(DecodeError::Version(2)));
        let mut bad = good.to_vec();
        bad[1] = 3;
        assert_eq!(Message::decode(&bad.into()), Err(DecodeError::Kind(3)));
        let mut bad = good.to_vec();
        bad[HEADER] = 0xff;
        assert_eq!(Message::decode(&bad.into()), Err(DecodeError::Id));
    }

    #[test]
    fn a_lease_holder_reads_back() {
        let session: Session = std::array::from_fn(|i| (i * 17) as u8);
        assert_eq!(unhex(&hex(&session)), Some(session));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(32)), None);
        assert_eq!(unhex(&"é".repeat(16)), None);
    }
}

#[cfg(test)]
mod with_redis {
    use super::*;
    use harness::{RedisPrefix, peer};

    #[tokio::test]
    async fn a_lease_has_one_holder_and_the_outbox_a_bound() {
        let Some(redis) = peer(RedisPrefix::create().await) else {
            return;
        };
        let lease = Duration::from_secs(5);
        let (cluster, _feeds) = Cluster::connect(redis.url(), redis.prefix(), lease)
            .await
            .expect("connected");
        let (first, second) = ([1; 16], [2; 16]);
        assert!(cluster.claim("ls", &first).await.expect("claimed"));
        assert!(!cluster.claim("ls", &second).await.expect("answered"));
        assert!(!cluster.renew("ls", &second).await.expect("answered"));
        assert!(cluster.renew("ls", &first).await.expect("renewed"));
        // Only the holder can release it.
        cluster.release("ls", &second).await.expect("answered");
        let holders = cluster
            .holders(&["ls".into(), "other".into()])
            .await
            .expect("read");
        assert_eq!(holders, vec![Some(first), None]);
        cluster.release("ls", &first).await.expect("released");
        assert!(cluster.claim("ls", &second).await.expect("claimed"));

        // Nobody publishes here: the outbox fills, and then says so instead of growing.
        let mut queued = 0;
        while let Some(outgoing) = cluster.reserve() {
            outgoing.send(first, "ls", Event::Started);
            queued += 1;
            assert!(queued <= OUTBOX, "the outbox is bounded");
        }
        assert_eq!(queued, OUTBOX);
        redis.clean().await.expect("cleaned");
    }
}
