//! The backend's side of a supervisor's command API: one WebSocket per command, as the
//! original's backend sent them.

use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A command that got no usable reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {reason}")]
pub(crate) struct CommandError {
    /// The supervisor.
    pub(crate) url: String,
    /// What went wrong.
    pub(crate) reason: String,
}

/// Sends `request` (with `secret`, when set) to the supervisor at `url` and returns its reply,
/// within `timeout` (plus the request's own `wait_ms`).
pub(crate) async fn command(
    url: &str,
    secret: Option<&str>,
    mut request: Value,
    timeout: Duration,
) -> Result<Value, CommandError> {
    let failed = |reason: String| CommandError {
        url: url.to_owned(),
        reason,
    };
    if let Some(secret) = secret {
        request["secret"] = Value::from(secret);
    }
    let wait = Duration::from_millis(request["wait_ms"].as_u64().unwrap_or(0));
    let exchange = async {
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| failed(e.to_string()))?;
        socket
            .send(Message::text(request.to_string()))
            .await
            .map_err(|e| failed(e.to_string()))?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let _ = socket.close(None).await;
                    return serde_json::from_str::<Value>(text.as_str())
                        .map_err(|e| failed(format!("not JSON: {e}")));
                }
                Some(Ok(Message::Close(_))) | None => return Err(failed("closed".into())),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(failed(error.to_string())),
            }
        }
    };
    tokio::time::timeout(timeout + wait, exchange)
        .await
        .map_err(|_| failed("no reply in time".into()))?
}
