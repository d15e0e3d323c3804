//! Node.js scripts from `tests/js/`, driven over their line protocol: every line a script prints
//! on stdout is a JSON document (an event), every line the test writes to its stdin is a JSON
//! command. See `tests/js/lines.mjs`.

use crate::{
    child::{OutputTail, read_lines},
    error::{HarnessError, PeerMissing, Result},
    peers::find_program,
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::{
    io::AsyncWriteExt,
    process::{Child, ChildStdin, Command},
    sync::mpsc,
};

/// How long [`NodeScript::expect`] and friends wait unless told otherwise.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Node.js with the packages of `tests/js/` installed.
#[derive(Debug, Clone)]
pub struct Node {
    node: PathBuf,
    scripts: PathBuf,
}

impl Node {
    /// Finds `node` (on `PATH` or at `$NODE`) and the installed `tests/js/node_modules`.
    pub fn locate() -> Result<Self> {
        let node = find_program("node", "NODE").ok_or_else(|| {
            HarnessError::PeerMissing(PeerMissing {
                peer: "Node.js",
                reason: "node is not on PATH".into(),
                hint: "install Node.js 20 or newer",
            })
        })?;
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
        for package in ["socket.io-client", "ws", "playwright-core"] {
            if !scripts.join("node_modules").join(package).is_dir() {
                return Err(HarnessError::PeerMissing(PeerMissing {
                    peer: "the tests' npm packages",
                    reason: format!("{package} is not installed in {}", scripts.display()),
                    hint: "scripts/test installs them (npm ci --prefix tests/js)",
                }));
            }
        }
        Ok(Self { node, scripts })
    }

    /// Starts `tests/js/<script>` with `config` as its JSON argument.
    pub fn spawn(&self, script: &str, config: &Value) -> Result<NodeScript> {
        let mut child = Command::new(&self.node)
            .arg(self.scripts.join(script))
            .arg(config.to_string())
            .current_dir(&self.scripts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(HarnessError::io(format!("starting node {script}")))?;
        let tail = OutputTail::default();
        let (sender, events) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            read_lines(stdout, script.to_owned(), tail.clone(), move |line| {
                // Lines that are not JSON are echoed (and kept in the tail) but are no events.
                if let Ok(event) = serde_json::from_str::<Value>(line) {
                    let _ = sender.send(event);
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            read_lines(stderr, script.to_owned(), tail.clone(), |_| {});
        }
        let stdin = child.stdin.take();
        Ok(NodeScript {
            script: script.to_owned(),
            child,
            stdin,
            events,
            tail,
        })
    }

    /// Runs `tests/js/<script>` to completion with no commands and returns every event it printed.
    pub async fn run(&self, script: &str, config: &Value, timeout: Duration) -> Result<Vec<Value>> {
        self.spawn(script, config)?.finish(timeout).await
    }

    /// Connects the official socket.io-client to `url` (namespace included, e.g.
    /// `http://127.0.0.1:3000/streamer`) with socket.io-client `options` (`extraHeaders`, `auth`,
    /// `query`, `transports` …). Reconnection is off unless the options turn it on.
    pub fn socketio(&self, url: &str, options: Value) -> Result<SocketIoClient> {
        let script = self.spawn(
            "socketio-client.mjs",
            &json!({ "url": url, "options": options }),
        )?;
        Ok(SocketIoClient {
            script,
            next_ack: 0,
        })
    }

    /// Opens a WebSocket with the `ws` package to `url`, sending the HTTP `headers` (a cookie, say).
    pub fn websocket(&self, url: &str, headers: Value) -> Result<WsClient> {
        Ok(WsClient {
            script: self.spawn("ws-client.mjs", &json!({ "url": url, "headers": headers }))?,
        })
    }

    /// The `node` executable.
    pub fn program(&self) -> &Path {
        &self.node
    }

    pub(crate) fn scripts_dir(&self) -> &Path {
        &self.scripts
    }
}

/// A running script; killed if dropped.
pub struct NodeScript {
    script: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Value>,
    tail: OutputTail,
}

impl NodeScript {
    /// The node process's id while it runs (to pause it with SIGSTOP, say, and make a slow peer).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Writes `command` as one line to the script's stdin.
    pub async fn send(&mut self, command: &Value) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| HarnessError::Protocol {
            peer: "node",
            detail: format!("{}: stdin is already closed", self.script),
        })?;
        let mut line = command.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(HarnessError::io(format!("writing to {}", self.script)))
    }

    /// The next event, or `None` once the script has exited and every event was read.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Option<Value>> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .map_err(|_| HarnessError::Timeout {
                what: format!(
                    "an event from {}; last output:\n{}",
                    self.script,
                    self.tail.text()
                ),
                after: timeout,
            })
    }

    /// Reads events until one satisfies `wanted`, which is returned; the others are dropped.
    /// Fails if the script exits first or nothing matches within `timeout`.
    pub async fn expect(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    return Err(HarnessError::Protocol {
                        peer: "node",
                        detail: format!(
                            "{} ended before the expected event; it sent {skipped:?}",
                            self.script
                        ),
                    });
                }
                Err(_) => {
                    return Err(HarnessError::Timeout {
                        what: format!(
                            "the expected event from {}; it sent {skipped:?}",
                            self.script
                        ),
                        after: timeout,
                    });
                }
            };
            if wanted(&event) {
                return Ok(event);
            }
            skipped.push(event);
        }
    }

    /// Closes stdin (the scripts then disconnect and exit), waits up to `timeout` for the script
    /// to end successfully, and returns the events not read yet.
    pub async fn finish(mut self, timeout: Duration) -> Result<Vec<Value>> {
        drop(self.stdin.take());
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .map_err(|_| HarnessError::Timeout {
                what: format!("{} to exit", self.script),
                after: timeout,
            })?
            .map_err(HarnessError::io(format!("waiting for {}", self.script)))?;
        if !status.success() {
            return Err(HarnessError::ProcessFailed {
                program: self.script,
                status,
                output: self.tail.text(),
            });
        }
        let mut rest = Vec::new();
        // stdout is closed once the process exits, so the reader ends and the channel drains.
        while let Some(event) = self.events.recv().await {
            rest.push(event);
        }
        Ok(rest)
    }

    /// The last lines the script printed, events included.
    pub fn output(&self) -> String {
        self.tail.text()
    }
}

fn has_type(event: &Value, kind: &str) -> bool {
    event.get("type").and_then(Value::as_str) == Some(kind)
}

/// The official JavaScript socket.io-client, connected through `tests/js/socketio-client.mjs`.
pub struct SocketIoClient {
    script: NodeScript,
    next_ack: u64,
}

impl SocketIoClient {
    /// Waits for the connection: `Ok(socket id)`, or the `connect_error` message as an error.
    pub async fn connected(&mut self) -> Result<String> {
        let event = self
            .script
            .expect(EVENT_TIMEOUT, |e| {
                has_type(e, "connect") || has_type(e, "connect_error")
            })
            .await?;
        match event.get("id").and_then(Value::as_str) {
            Some(id) if has_type(&event, "connect") => Ok(id.to_owned()),
            _ => Err(HarnessError::Protocol {
                peer: "socket.io-client",
                detail: format!("could not connect: {event}"),
            }),
        }
    }

    /// Emits `event` with `args`; binary arguments are made with [`binary`].
    pub async fn emit(&mut self, event: &str, args: Vec<Value>) -> Result<()> {
        self.script
            .send(&json!({ "emit": event, "args": args }))
            .await
    }

    /// Emits `event` with `args` and waits for the server's acknowledgement, returning its value.
    pub async fn emit_with_ack(&mut self, event: &str, args: Vec<Value>) -> Result<Value> {
        self.next_ack += 1;
        let id = self.next_ack;
        self.script
            .send(&json!({ "emit": event, "args": args, "id": id }))
            .await?;
        let ack = self
            .script
            .expect(EVENT_TIMEOUT, |e| has_type(e, "ack") && e["id"] == id)
            .await?;
        Ok(ack["args"][0].clone())
    }

    /// Waits for the server to emit `event` and returns its arguments; other events are skipped.
    pub async fn expect_event(&mut self, event: &str) -> Result<Vec<Value>> {
        let found = self
            .script
            .expect(EVENT_TIMEOUT, |e| {
                has_type(e, "event") && e["event"] == event
            })
            .await?;
        Ok(found["args"].as_array().cloned().unwrap_or_default())
    }

    /// Waits for the server's next event, whatever its name: `(name, arguments)`.
    pub async fn next_event(&mut self) -> Result<(String, Vec<Value>)> {
        let found = self
            .script
            .expect(EVENT_TIMEOUT, |e| has_type(e, "event"))
            .await?;
        let name = found["event"].as_str().unwrap_or_default().to_owned();
        Ok((name, found["args"].as_array().cloned().unwrap_or_default()))
    }

    /// Waits for the disconnection and returns its reason (`io server disconnect`, …).
    pub async fn expect_disconnect(&mut self) -> Result<String> {
        let event = self
            .script
            .expect(EVENT_TIMEOUT, |e| has_type(e, "disconnect"))
            .await?;
        Ok(event["reason"].as_str().unwrap_or_default().to_owned())
    }

    /// The underlying script, for anything the helpers above do not cover.
    pub fn script(&mut self) -> &mut NodeScript {
        &mut self.script
    }

    /// Disconnects and waits for the script to exit.
    pub async fn close(self) -> Result<()> {
        self.script.finish(EVENT_TIMEOUT).await.map(drop)
    }
}

/// A WebSocket client (the `ws` package), connected through `tests/js/ws-client.mjs`.
pub struct WsClient {
    script: NodeScript,
}

/// What a [`WsClient`] saw instead of an open connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsRefusal {
    /// The server answered the upgrade with this HTTP status and body.
    Http {
        /// The status code.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The connection failed otherwise.
    Failed(String),
}

impl WsClient {
    /// Waits for the upgrade: `Ok(Ok(()))` when open, `Ok(Err(refusal))` when the server refused.
    pub async fn opened(&mut self) -> Result<Result<(), WsRefusal>> {
        let event = self
            .script
            .expect(EVENT_TIMEOUT, |e| {
                has_type(e, "open") || has_type(e, "http-error") || has_type(e, "error")
            })
            .await?;
        Ok(match event["type"].as_str() {
            Some("open") => Ok(()),
            Some("http-error") => Err(WsRefusal::Http {
                status: event["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0),
                body: event["body"].as_str().unwrap_or_default().to_owned(),
            }),
            _ => Err(WsRefusal::Failed(
                event["message"].as_str().unwrap_or_default().to_owned(),
            )),
        })
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.script.send(&json!({ "send": text })).await
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) -> Result<()> {
        self.script
            .send(&json!({ "sendBinary": BASE64.encode(bytes) }))
            .await
    }

    /// The next text frame received.
    pub async fn expect_text(&mut self) -> Result<String> {
        let event = self
            .script
            .expect(EVENT_TIMEOUT, |e| {
                has_type(e, "message") && e.get("text").is_some()
            })
            .await?;
        Ok(event["text"].as_str().unwrap_or_default().to_owned())
    }

    /// The next binary frame received.
    pub async fn expect_binary(&mut self) -> Result<Vec<u8>> {
        let event = self
            .script
            .expect(EVENT_TIMEOUT, |e| {
                has_type(e, "message") && e.get("binary").is_some()
            })
            .await?;
        decode_binary(&event["binary"])
    }

    /// Waits for the close and returns its code and reason.
    pub async fn expect_close(&mut self) -> Result<(u16, String)> {
        let event = self
            .script
            .expect(EVENT_TIMEOUT, |e| has_type(e, "close"))
            .await?;
        let code = event["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0);
        Ok((
            code,
            event["reason"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// Starts the closing handshake with `code` and `reason`.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<()> {
        self.script
            .send(&json!({ "close": { "code": code, "reason": reason } }))
            .await
    }

    /// The underlying script.
    pub fn script(&mut self) -> &mut NodeScript {
        &mut self.script
    }
}

/// Wraps bytes as the line protocol's binary value (`{"$binary": base64}`); socket.io-client
/// sends it as a binary attachment.
pub fn binary(bytes: &[u8]) -> Value {
    json!({ "$binary": BASE64.encode(bytes) })
}

/// Reads a line-protocol binary value (`{"$binary": …}` or a bare base64 string) back into bytes.
pub fn decode_binary(value: &Value) -> Result<Vec<u8>> {
    let text = value
        .get("$binary")
        .unwrap_or(value)
        .as_str()
        .ok_or_else(|| HarnessError::Protocol {
            peer: "node",
            detail: format!("expected a binary value, got {value}"),
        })?;
    BASE64.decode(text).map_err(|error| HarnessError::Protocol {
        peer: "node",
        detail: error.to_string(),
    })
}
