//! Why a pull fails. Every message names the server and the application, never the stream key.

use std::{io, time::Duration};

/// Why an RTMP pull failed. Messages name the server and the application, never the stream key
/// (text the server sent is included with the key blanked out).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The URL is not `rtmp://host[:port]/<app>/<key>`.
    #[error("bad RTMP URL: {0}")]
    BadUrl(&'static str),
    /// The TCP connection to the server could not be opened.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// The server, as `host:port`.
        addr: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Playback had not started when [`PullConfig::connect_timeout`](crate::PullConfig) ran out.
    #[error("playback from {addr} did not start within {after:?} (timed out while {stage})")]
    ConnectTimeout {
        /// The server, as `host:port`.
        addr: String,
        /// The timeout.
        after: Duration,
        /// What the pull was waiting for.
        stage: &'static str,
    },
    /// The server refused to `connect` the client to the application.
    #[error("the server refused the connection to application {app:?}: {description}")]
    ConnectRefused {
        /// The application.
        app: String,
        /// The server's reason.
        description: String,
    },
    /// The server refused to play the stream (it is not live, or the key is not allowed).
    #[error("the server refused playback ({code}): {description}")]
    PlaybackRefused {
        /// The status code, e.g. `NetStream.Play.StreamNotFound`.
        code: String,
        /// The server's reason.
        description: String,
    },
    /// The server stopped playback with an error status after it had started.
    #[error("the server stopped playback with an error ({code})")]
    PlaybackFailed {
        /// The status code, e.g. `NetStream.Play.Failed`.
        code: String,
    },
    /// The server sent nothing for [`PullConfig::idle_timeout`](crate::PullConfig).
    #[error("nothing received from the server for {0:?}")]
    Idle(Duration),
    /// The server accepted none of our bytes for [`PullConfig::idle_timeout`](crate::PullConfig).
    #[error("the server accepted no bytes for {0:?}")]
    WriteTimeout(Duration),
    /// The server closed the connection before playback started.
    #[error("the server closed the connection while {0}")]
    Closed(&'static str),
    /// The server broke the RTMP protocol (malformed handshake, framing or messages).
    #[error("RTMP protocol error: {0}")]
    Protocol(String),
    /// The RTMP parser (rml_rtmp) panicked on the server's bytes.
    #[error("the RTMP parser panicked on the server's input")]
    ParserPanic,
    /// Reading from or writing to the server failed.
    #[error("connection to the server failed: {0}")]
    Io(#[source] io::Error),
    /// [`RtmpPull::next`](crate::RtmpPull::next) was called again after it had failed.
    #[error("the pull has already failed")]
    Failed,
}

/// The longest text from the server an error carries.
const MAX_SERVER_TEXT: usize = 200;

/// Text the server sent, fit for an error message: without the stream key (servers echo it,
/// rml_rtmp's own does in every status description), without control characters, and short.
pub(super) fn from_server(text: &str, key: &str) -> String {
    let text = if key.is_empty() {
        text.to_owned()
    } else {
        text.replace(key, "[key]")
    };
    let mut clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SERVER_TEXT)
        .collect();
    if text.chars().count() > MAX_SERVER_TEXT {
        clean.push('…');
    }
    clean
}

#[cfg(test)]
mod tests_error {
    use super::*;

    #[test]
    fn server_text_loses_the_key_and_control_characters_and_is_bounded() {
        assert_eq!(
            from_server(
                "Successfully started playback on stream key s3cret\n",
                "s3cret"
            ),
            "Successfully started playback on stream key [key]"
        );
        let long = "x".repeat(1000);
        assert_eq!(from_server(&long, "k").chars().count(), MAX_SERVER_TEXT + 1);
    }
}
