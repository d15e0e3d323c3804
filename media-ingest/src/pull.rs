//! An RTMP pull client: plays `rtmp://host:port/<app>/<key>` from a streaming server (ours or
//! another) and yields the stream's metadata and frames, as the HLS encoder consumes them.
//!
//! ```text
//!  server ──TCP──▶ RtmpPull (tokio: timeouts, reads, writes)
//!                    └─ PullSession (sans-IO): handshake → ChunkGuard (bounds) → rml_rtmp
//!                       ClientSession (under catch_unwind) → Pulled::{Metadata, Frame}
//! ```

mod error;
mod session;
mod url;

// The server's framing guard, applied here to the server's bytes.
use crate::server::guard;

pub use error::PullError;

use crate::{ConfigError, Error, IngestConfig, MediaFrame};
use rml_rtmp::sessions::StreamMetadata;
use session::{PullSession, Stage};
use std::{fmt, io, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{Instant, timeout, timeout_at},
};
use url::PullUrl;

/// Bytes read from the server at a time.
const READ_BUFFER: usize = 64 << 10;

/// Options for pulling.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullConfig {
    /// How long [`RtmpPull::connect`] may take, from opening the TCP connection until the
    /// server has started playback. Default 10 s.
    pub connect_timeout: Duration,
    /// How long the server may send nothing (or accept none of our bytes) once playing before
    /// the pull ends with [`PullError::Idle`]. Default 30 s.
    pub idle_timeout: Duration,
    /// The largest RTMP message (and chunk size) accepted from the server, checked before the
    /// bytes reach the RTMP parser. Default 4 MiB, as [`IngestConfig::max_message_bytes`].
    pub max_message_bytes: usize,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_message_bytes: IngestConfig::default().max_message_bytes,
        }
    }
}

impl PullConfig {
    /// The same ranges as [`IngestConfig::validate`] for the same kinds of settings.
    fn validate(&self) -> Result<(), ConfigError> {
        let seconds = |d: Duration| !d.is_zero() && d <= Duration::from_secs(3600);
        let out_of_range = |setting, requirement, value: &dyn fmt::Debug| {
            Err(ConfigError::OutOfRange {
                setting,
                requirement,
                value: format!("{value:?}"),
            })
        };
        if !seconds(self.connect_timeout) {
            return out_of_range(
                "connect_timeout",
                "between 0 and 1 h",
                &self.connect_timeout,
            );
        }
        if !seconds(self.idle_timeout) {
            return out_of_range("idle_timeout", "between 0 and 1 h", &self.idle_timeout);
        }
        if !((64 << 10)..=(64 << 20)).contains(&self.max_message_bytes) {
            return out_of_range(
                "max_message_bytes",
                "between 64 KiB and 64 MiB",
                &self.max_message_bytes,
            );
        }
        Ok(())
    }
}

/// What a pull yields: the stream's metadata (whenever the server sends it) and its frames.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Pulled {
    /// The stream's `onMetaData`.
    Metadata(StreamMetadata),
    /// An audio or video frame: the FLV tag body as the server sent it, and its RTMP timestamp.
    Frame(MediaFrame),
}

/// A stream being played from an RTMP server.
///
/// ```no_run
/// use media_ingest::{PullConfig, Pulled, RtmpPull};
///
/// # async fn example() -> Result<(), media_ingest::Error> {
/// let mut pull = RtmpPull::connect("rtmp://127.0.0.1:1935/live/a-secret-key", &PullConfig::default()).await?;
/// while let Some(pulled) = pull.next().await? {
///     match pulled {
///         Pulled::Metadata(metadata) => println!("{:?}x{:?}", metadata.video_width, metadata.video_height),
///         Pulled::Frame(frame) => println!("{:?} at {} ms", frame.kind, frame.timestamp),
///         _ => {}
///     }
/// }
/// // The stream has ended.
/// # Ok(())
/// # }
/// ```
pub struct RtmpPull {
    io: TcpStream,
    session: PullSession,
    addr: String,
    app: String,
    idle_timeout: Duration,
    buffer: Box<[u8]>,
    /// Bytes for the server not yet written, kept across calls so that `next` is cancel-safe.
    outbound: Vec<u8>,
    written: usize,
}

impl fmt::Debug for RtmpPull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtmpPull")
            .field("server", &self.addr)
            .field("app", &self.app)
            .field("stage", &self.session.stage())
            .finish_non_exhaustive()
    }
}

impl RtmpPull {
    /// Connects, handshakes (client side), `connect`s to the app and asks to play the key;
    /// returns once the server accepted playback.
    ///
    /// Fails with [`Error::Config`] for an invalid `config`, and otherwise with [`Error::Pull`]:
    /// a bad URL, a refused or timed-out connection, a refused `connect` or playback (e.g. a
    /// stream nobody publishes), or a server that breaks the protocol.
    pub async fn connect(url: &str, config: &PullConfig) -> Result<Self, Error> {
        config.validate()?;
        let target = PullUrl::parse(url)?;
        let addr = target.addr();
        let deadline = Instant::now() + config.connect_timeout;
        let connecting = TcpStream::connect((target.host.as_str(), target.port));
        let io = match timeout_at(deadline, connecting).await {
            Err(_) => {
                return Err(PullError::ConnectTimeout {
                    addr,
                    after: config.connect_timeout,
                    stage: "opening the TCP connection",
                }
                .into());
            }
            Ok(Err(source)) => return Err(PullError::Connect { addr, source }.into()),
            Ok(Ok(io)) => io,
        };
        // Acknowledgements and the like are tiny and should not wait for more.
        let _ = io.set_nodelay(true);
        let mut pull = Self {
            io,
            session: PullSession::new(&target, config.max_message_bytes)?,
            addr: addr.clone(),
            app: target.app.clone(),
            idle_timeout: config.idle_timeout,
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            outbound: Vec::new(),
            written: 0,
        };
        match timeout_at(deadline, pull.until_playing()).await {
            Err(_) => Err(PullError::ConnectTimeout {
                addr,
                after: config.connect_timeout,
                stage: pull.session.stage().doing(),
            }
            .into()),
            Ok(Err(error)) => {
                tracing::debug!(server = %addr, app = %target.app, %error, "RTMP pull failed to start");
                Err(error.into())
            }
            Ok(Ok(())) => {
                tracing::debug!(server = %addr, app = %target.app, "RTMP pull playing");
                Ok(pull)
            }
        }
    }

    /// The next metadata or frame; `Ok(None)` when the stream ended (the server sent
    /// `NetStream.Play.Complete`, as ours does, `NetStream.Play.Stop` or
    /// `NetStream.Play.UnpublishNotify`, or closed the connection after playback started).
    ///
    /// Fails with [`PullError::Idle`] when the server sends nothing for
    /// [`PullConfig::idle_timeout`], and on any protocol error; after an error or the end,
    /// the pull is over. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Option<Pulled>, Error> {
        loop {
            if let Some(pulled) = self.session.poll_pulled() {
                return Ok(Some(pulled));
            }
            match self.session.stage() {
                Stage::Ended => return Ok(None),
                Stage::Failed => return Err(PullError::Failed.into()),
                _ => {}
            }
            if let Err(error) = self.step(Some(self.idle_timeout)).await {
                self.session.fail();
                tracing::debug!(server = %self.addr, app = %self.app, %error, "RTMP pull ended");
                return Err(error.into());
            }
        }
    }

    async fn until_playing(&mut self) -> Result<(), PullError> {
        // The caller's deadline bounds the whole start. (A short stream may be over by the time
        // this returns; `next` then yields what arrived, and the end.)
        while matches!(
            self.session.stage(),
            Stage::Handshaking | Stage::Connecting | Stage::Requesting
        ) {
            self.step(None).await?;
        }
        self.flush(None).await
    }

    /// Writes what the session has for the server, then reads once and hands it the bytes.
    async fn step(&mut self, idle: Option<Duration>) -> Result<(), PullError> {
        self.flush(idle).await?;
        let reading = self.io.read(&mut self.buffer);
        let read = match idle {
            Some(idle) => timeout(idle, reading)
                .await
                .map_err(|_| PullError::Idle(idle))?,
            None => reading.await,
        }
        .map_err(PullError::Io)?;
        if read == 0 {
            self.session.handle_eof()
        } else {
            self.session.handle_input(&self.buffer[..read])
        }
    }

    async fn flush(&mut self, idle: Option<Duration>) -> Result<(), PullError> {
        if let Some(bytes) = self.session.poll_transmit() {
            self.outbound.extend_from_slice(&bytes);
        }
        while self.written < self.outbound.len() {
            let writing = self.io.write(&self.outbound[self.written..]);
            let written = match idle {
                Some(idle) => timeout(idle, writing)
                    .await
                    .map_err(|_| PullError::WriteTimeout(idle))?,
                None => writing.await,
            }
            .map_err(PullError::Io)?;
            if written == 0 {
                return Err(PullError::Io(io::ErrorKind::WriteZero.into()));
            }
            self.written += written;
        }
        self.outbound.clear();
        self.written = 0;
        Ok(())
    }
}

/// Runs the pull's protocol logic over arbitrary bytes from a "server", for the fuzz target: a
/// minimal handshake first (rml_rtmp's client does not check the server's echo), then `input`
/// in chunks whose sizes the input's first byte picks. Must never panic.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz_pull_session(input: &[u8]) {
    let Ok(url) = url::PullUrl::parse("rtmp://127.0.0.1:1935/live/fuzz") else {
        return;
    };
    let Ok(mut session) =
        session::PullSession::new(&url, crate::IngestConfig::default().max_message_bytes)
    else {
        return;
    };
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * 1536, 0);
    if session.handle_input(&handshake).is_err() {
        return;
    }
    let (chunk, input) = match input.split_first() {
        Some((first, rest)) => (usize::from(*first).max(1) * 16, rest),
        None => return,
    };
    for bytes in input.chunks(chunk) {
        let _ = session.poll_transmit();
        if session.handle_input(bytes).is_err() {
            return;
        }
        while session.poll_pulled().is_some() {}
    }
    let _ = session.handle_eof();
}
