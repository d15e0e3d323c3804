//! The server side of the RTMP handshake.

use super::connection::{ConnectionError, contained};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Completes the server side of the handshake; returns the bytes that followed it.
pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
) -> Result<Vec<u8>, ConnectionError> {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buffer = [0u8; 4096];
    loop {
        let read = io.read(&mut buffer).await?;
        if read == 0 {
            return Err(ConnectionError::Handshake(
                "closed during the handshake".into(),
            ));
        }
        let step = contained(|| handshake.process_bytes(&buffer[..read]))?;
        match step.map_err(|error| ConnectionError::Handshake(format!("{error:?}")))? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                io.write_all(&response_bytes).await?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                io.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}
