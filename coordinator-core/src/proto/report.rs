//! What the commands API reports: `GET /commands/capacity` and `GET /commands/report`.

use super::{LinkId, LinkRole, ServerAddress};

/// `GET /commands/capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityReport {
    /// Active streams.
    pub load: u32,
    /// Total capacity; -1 is unlimited.
    pub capacity: i64,
    /// Registered encoders.
    pub encoder_count: usize,
}

/// `GET /commands/report`: the whole cluster as the scheduler sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterReport {
    /// Streams from acceptance until their encoder reports them closed, ordered by id.
    pub active_streams: Vec<ActiveStream>,
    /// Connected streaming servers, ordered by link id.
    pub streaming_servers: Vec<StreamingServer>,
    /// Registered encoders, ordered by link id.
    pub encoders: Vec<EncoderReport>,
}

/// One active stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveStream {
    /// The channel.
    pub channel: String,
    /// The stream id (the original reported the channel here).
    pub stream_id: String,
    /// The streaming server's link, while the publisher is connected.
    pub streaming_server: Option<LinkId>,
    /// The encoder's link.
    pub encoder: Option<LinkId>,
}

/// One streaming server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingServer {
    /// Its link.
    pub id: LinkId,
    /// Where encoders reach it.
    pub address: Option<ServerAddress>,
    /// RTMP or WebSocket.
    pub role: LinkRole,
}

/// One encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderReport {
    /// Its link.
    pub id: LinkId,
    /// Streams it takes at once; -1 is unlimited.
    pub capacity: i64,
    /// Streams it has now.
    pub load: u32,
}
