//! The `camus` child process the generator measures, and its HTTP side.

use super::*;

/// A `camus` child process and an HTTP client for it.
pub(crate) struct Server {
    pub(crate) process: ServerProcess,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    pub(crate) http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Server {
    pub(crate) async fn start(rooms: usize, clients_per_room: usize) -> Result<Self, Failure> {
        let program = match std::env::var_os("CAMUS_BIN") {
            Some(path) => PathBuf::from(path),
            // target/release/examples/camus_load → target/release/camus
            None => std::env::current_exe()?
                .parent()
                .and_then(|examples| examples.parent())
                .ok_or("this example has no target directory")?
                .join("camus"),
        };
        if !program.is_file() {
            let path = program.display();
            return Err(format!(
                "no server at {path}: `cargo build --release --bin camus`, or set CAMUS_BIN"
            )
            .into());
        }
        let data = tempfile::tempdir()?;
        let mut command = Command::new(&program);
        command
            .args(["--listen", "127.0.0.1:0", "--secret-key", SECRET])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--max-rooms", &(rooms + 100).max(10_000).to_string()])
            .args([
                "--max-clients-per-room",
                &clients_per_room.max(2).to_string(),
            ])
            .args(["--default-guest-limit", "0"])
            .args(["--messages-per-second", "1000000"])
            .args(["--message-burst", "1000000"]);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let process = ServerProcess::spawn(command, &["http"]).await?;
        let addr = process.addr("http").ok_or("the server announced no http")?;
        let pid = process.pid().ok_or("the server exited")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Self {
            process,
            addr,
            pid,
            http,
            _data: data,
        })
    }

    /// The sum of the counter's series on the server's `/metrics` (0 when absent).
    pub(crate) async fn counter(&self, name: &str) -> Result<u64, Failure> {
        let url = format!("http://{}/metrics", self.addr);
        let text = self.http.get(url).send().await?.text().await?;
        let mut sum = 0.0;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if rest.starts_with([' ', '{']) {
                let value = rest.rsplit(' ').next().ok_or("a sample without value")?;
                sum += value.parse::<f64>()?;
            }
        }
        Ok(sum as u64)
    }

    pub(crate) fn usage(&self) -> Result<harness::ProcessUsage, Failure> {
        if self.process.pid().is_none() {
            return Err(format!("the server exited:\n{}", self.process.output()).into());
        }
        Ok(harness::usage(self.pid)?)
    }

    /// Creates rooms named `{prefix}-{n}`; their slugs, in order.
    pub(crate) async fn create_rooms(
        &self,
        prefix: &str,
        count: usize,
    ) -> Result<Vec<String>, Failure> {
        stream::iter(0..count)
            .map(|n| self.create_room(format!("{prefix}-{n}")))
            .buffered(JOINS_AT_ONCE)
            .try_collect()
            .await
    }

    /// `POST /` with `room_name`: the slug, from the 307's `Location: /room/<slug>`.
    pub(crate) async fn create_room(&self, name: String) -> Result<String, Failure> {
        let response = self
            .http
            .post(format!("http://{}/", self.addr))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!("room_name={name}"))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::TEMPORARY_REDIRECT {
            return Err(format!("creating {name}: {}", response.status()).into());
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .ok_or("a 307 without Location")?
            .to_str()?;
        let slug = location
            .strip_prefix("/room/")
            .ok_or("not a room's address")?;
        Ok(slug.to_owned())
    }

    /// Enters room `slug` (its cookie), opens its WebSocket and reads the `greeting`.
    pub(crate) async fn join(&self, slug: &str) -> Result<Client, Failure> {
        let response = self
            .http
            .get(format!("http://{}/room/{slug}", self.addr))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("entering {slug}: {}", response.status()).into());
        }
        let cookie = response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .ok_or("no cookie")?
            .to_str()?
            .split(';')
            .next()
            .ok_or("an empty cookie")?
            .to_owned();
        // Read to the end, so that the connection goes back to the pool.
        response.bytes().await?;
        let mut request = format!("ws://{}/room/{slug}/ws", self.addr).into_client_request()?;
        request
            .headers_mut()
            .insert(COOKIE, HeaderValue::from_str(&cookie)?);
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
        while let Some(frame) = ws.next().await {
            let Message::Text(text) = frame? else {
                continue;
            };
            let message: serde_json::Value = serde_json::from_str(&text)?;
            if message["type"] == "greeting" {
                let id = message["receiver"]
                    .as_str()
                    .ok_or("a greeting without id")?;
                return Ok(Client {
                    id: id.to_owned(),
                    ws,
                });
            }
        }
        Err(format!("{slug}: closed before the greeting").into())
    }
}
