//! What goes into the scheduler besides messages, and what comes out of it.

use super::control::Outbound;

/// Identifies a control link for the life of the coordinator.
pub type LinkId = u64;
/// Identifies a key verification the driver is to carry out.
pub type VerificationId = u64;

/// Where a streaming server can be reached, from its link's `x-external-ip`, `x-custom-port`
/// and `x-ssl-use` headers (or its address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// Its IP address (plain IPv4 for IPv4-mapped addresses).
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// Whether it uses TLS.
    pub ssl: bool,
}

/// What the key-verification webhook granted: passed to the encoder as the original does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// `x-record`.
    pub record: bool,
    /// `x-previews` (`WxH,SEC`), or `False`.
    pub previews: String,
    /// `x-resolutions`, or `ORIGINAL`.
    pub resolutions: String,
}

/// Something for the application's event callback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// `stream-available`, one per type and resolution.
    Available {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
        /// `HLS-LIVE`, `HLS-VOD`, `IMG-PREVIEW`.
        stream_type: String,
        /// `WxH-FPS`.
        resolution: String,
        /// The index file.
        index_file: String,
    },
    /// `stream-closed`.
    Closed {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
    },
}

/// What the driver is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send a message on a link.
    Send {
        /// The link.
        link: LinkId,
        /// The message.
        message: Outbound,
    },
    /// Close a link (dead, or it broke the protocol beyond an `ERROR`).
    Close {
        /// The link.
        link: LinkId,
        /// Why, for logs.
        reason: String,
    },
    /// Ask the application whether `key` may publish on `channel`; answer with
    /// [`Scheduler::handle_verdict`](super::Scheduler::handle_verdict).
    VerifyKey {
        /// To pass back with the verdict.
        verification: VerificationId,
        /// The channel.
        channel: String,
        /// The key.
        key: String,
        /// The publisher's address.
        user_ip: String,
    },
    /// A stream was accepted: remember it durably, so that its `stream-closed` can be sent
    /// even if the coordinator restarts before the stream ends. The [`StreamEvent::Closed`]
    /// callback for it forgets it.
    StreamStarted {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
    },
    /// Tell the application (through the durable callback outbox).
    Callback(StreamEvent),
}
