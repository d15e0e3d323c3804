//! Headless Chromium (Debian's `/usr/bin/chromium`) driven by playwright-core through
//! `tests/js/browser.mjs`, with fake camera and microphone. A failing page operation saves a
//! screenshot and names it in the error.

use crate::{
    error::{HarnessError, PeerMissing, Result},
    node::{Node, NodeScript},
};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};
use tokio::sync::Mutex;

/// Longest any single browser operation may take before the harness gives up on the driver.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(90);

/// Chromium and the Node driver, found on this machine.
#[derive(Debug, Clone)]
pub struct Chromium {
    node: Node,
    executable: PathBuf,
}

impl Chromium {
    /// Finds Chromium (at `$CHROMIUM_PATH`, else `/usr/bin/chromium`) and the Node packages.
    pub fn locate() -> Result<Self> {
        let node = Node::locate()?;
        let executable = std::env::var_os("CHROMIUM_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        if !executable.is_file() {
            return Err(HarnessError::PeerMissing(PeerMissing {
                peer: "Chromium",
                reason: format!("{} does not exist", executable.display()),
                hint: "scripts/test installs it (apt-get install chromium), or set CHROMIUM_PATH",
            }));
        }
        Ok(Self { node, executable })
    }

    /// Starts a headless browser with a fresh profile.
    pub async fn launch(&self) -> Result<Browser> {
        let mut driver = self
            .node
            .spawn("browser.mjs", &json!({ "executablePath": self.executable }))?;
        let ready = driver
            .expect(OPERATION_TIMEOUT, |event| event["type"] == "ready")
            .await?;
        let screenshots = std::env::var_os("TEST_SCREENSHOT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                self.node
                    .scripts_dir()
                    .join("../../target/test-screenshots")
            });
        Ok(Browser {
            driver: Mutex::new(driver),
            next_id: AtomicU64::new(0),
            screenshots,
            version: ready["version"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// A running headless Chromium. Pages are opened with [`Browser::new_page`].
pub struct Browser {
    driver: Mutex<NodeScript>,
    next_id: AtomicU64,
    screenshots: PathBuf,
    version: String,
}

impl Browser {
    /// Chromium's version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Opens a page in a context of its own (its own cookies and storage).
    pub async fn new_page(&self) -> Result<Page<'_>> {
        let number = self.call(json!({ "op": "newPage" })).await?;
        let number = number.as_u64().ok_or_else(|| HarnessError::Protocol {
            peer: "browser.mjs",
            detail: format!("newPage answered {number}"),
        })?;
        Ok(Page {
            browser: self,
            number,
        })
    }

    /// Closes the browser and waits for the driver to exit.
    pub async fn close(self) -> Result<()> {
        self.call(json!({ "op": "close" })).await?;
        self.driver
            .into_inner()
            .finish(OPERATION_TIMEOUT)
            .await
            .map(drop)
    }

    async fn call(&self, mut command: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        command["id"] = json!(id);
        let mut driver = self.driver.lock().await;
        driver.send(&command).await?;
        let reply = driver
            .expect(OPERATION_TIMEOUT, |event| {
                event["type"] == "reply" && event["id"] == id
            })
            .await?;
        if reply["ok"] == true {
            Ok(reply["value"].clone())
        } else {
            Err(HarnessError::Protocol {
                peer: "browser.mjs",
                detail: reply["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_owned(),
            })
        }
    }
}

/// A page of a [`Browser`].
pub struct Page<'b> {
    browser: &'b Browser,
    number: u64,
}

impl Page<'_> {
    /// Navigates to `url` and returns the HTTP status of the main document.
    pub async fn goto(&self, url: &str) -> Result<Option<u16>> {
        let status = self.call(json!({ "op": "goto", "url": url })).await?;
        Ok(status.as_u64().and_then(|s| u16::try_from(s).ok()))
    }

    /// Evaluates a JavaScript expression in the page and returns its JSON value (a promise is
    /// awaited).
    pub async fn evaluate(&self, expression: &str) -> Result<Value> {
        self.call(json!({ "op": "evaluate", "expression": expression }))
            .await
    }

    /// Waits until the JavaScript expression is truthy (checked every animation frame) and
    /// returns its value.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Result<Value> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.call(json!({ "op": "waitFor", "expression": expression, "timeoutMs": millis }))
            .await
    }

    /// As [`evaluate`](Self::evaluate), in the page's first frame (an iframe) whose URL
    /// contains `frame`, waiting for one to load if there is none yet.
    pub async fn evaluate_in_frame(&self, frame: &str, expression: &str) -> Result<Value> {
        self.call(json!({ "op": "evaluate", "frame": frame, "expression": expression }))
            .await
    }

    /// As [`wait_for`](Self::wait_for), in the page's first frame whose URL contains `frame`.
    pub async fn wait_for_in_frame(
        &self,
        frame: &str,
        expression: &str,
        timeout: Duration,
    ) -> Result<Value> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.call(json!({
            "op": "waitFor", "frame": frame, "expression": expression, "timeoutMs": millis,
        }))
        .await
    }

    /// Saves a full-page PNG screenshot to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(HarnessError::io(format!("creating {}", dir.display())))?;
        }
        self.raw_call(json!({ "op": "screenshot", "path": path }))
            .await
            .map(drop)
    }

    async fn call(&self, command: Value) -> Result<Value> {
        match self.raw_call(command).await {
            Ok(value) => Ok(value),
            Err(HarnessError::Protocol { detail, .. }) => Err(HarnessError::Browser {
                message: detail,
                screenshot: self.screenshot_after_failure().await,
            }),
            Err(other) => Err(other),
        }
    }

    async fn raw_call(&self, mut command: Value) -> Result<Value> {
        command["page"] = json!(self.number);
        self.browser.call(command).await
    }

    async fn screenshot_after_failure(&self) -> String {
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", "-");
        let n = self.browser.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self
            .browser
            .screenshots
            .join(format!("{test}-page{}-{n}.png", self.number));
        match self.screenshot(&path).await {
            Ok(()) => path.canonicalize().unwrap_or(path).display().to_string(),
            Err(error) => format!("none ({error})"),
        }
    }
}
