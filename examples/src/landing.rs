//! The catalogue of the workspace's systems and the demo's landing page.
//!
//! Each system's entry says honestly whether it runs in this build; as a system is built, its
//! issue switches its entry to [`Availability::Running`] with its URL and how to try it.

use axum::{Json, Router, response::Html, routing::get};
use serde::Serialize;
use std::fmt::Write;

/// Whether a system runs in this build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Availability {
    /// It runs in the demo, at `url`.
    Running {
        /// Where to open it.
        url: String,
        /// A sentence or command to try it.
        try_it: String,
    },
    /// Parts of it are built and run as their own binaries, but not in the demo yet.
    PartlyBuilt {
        /// What is built, and how to run it.
        try_it: String,
    },
    /// It is not built yet; the crate holds its configuration and error types only.
    NotBuiltYet,
}

/// One system of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct System {
    /// Its name, as the seeds call it.
    pub name: &'static str,
    /// The library crate that implements it.
    pub crate_name: &'static str,
    /// What it does, in one sentence.
    pub summary: &'static str,
    /// Whether and where it runs.
    pub availability: Availability,
}

/// Marks the system of `crate_name` as running at `url`.
pub fn set_running(systems: &mut [System], crate_name: &str, url: String, try_it: String) {
    for system in systems.iter_mut().filter(|s| s.crate_name == crate_name) {
        system.availability = Availability::Running {
            url: url.clone(),
            try_it: try_it.clone(),
        };
    }
}

/// Every system of the workspace, as this build has it.
pub fn catalogue() -> Vec<System> {
    let planned = |name, crate_name, summary| System {
        name,
        crate_name,
        summary,
        availability: Availability::NotBuiltYet,
    };
    vec![
        System {
            availability: Availability::PartlyBuilt {
                try_it: "cargo run --release --bin open360 (every service in one process; then open http://127.0.0.1:8000/), or the demo".into(),
            },
            ..planned(
                "Open360",
                "open360-protocol",
                "Microservices around an internal API hub: web, RTMP ingest with stream-key checks, HLS, VODs, an external API and chat.",
            )
        },
        planned(
            "Castaway",
            "castaway-relay",
            "A Socket.IO relay of audio chunks from one streamer to many listeners.",
        ),
        System {
            availability: Availability::PartlyBuilt {
                try_it: "cargo run --release --bin openspace-signaling, openspace-supervisor and openspace-backend (see the crate README), or the demo".into(),
            },
            ..planned(
                "OpenSpace WebRTC",
                "openspace-supervisor",
                "A rendering-server supervisor with a JSON command API, a session backend, a frontend and WebRTC signaling.",
            )
        },
        planned(
            "Streaming coordinator",
            "coordinator-core",
            "Balances RTMP/WebSocket streaming servers over HLS encoders, with key-verification and event webhooks.",
        ),
        System {
            availability: Availability::PartlyBuilt {
                try_it: "cargo run --release --bin camus, then open http://127.0.0.1:5000/ in two browser tabs".into(),
            },
            ..planned(
                "Camus",
                "camus-signaling",
                "Rooms and WebSocket signaling for peer-to-peer WebRTC video calls, with TURN credentials.",
            )
        },
    ]
}

/// `GET /` (the HTML landing page) and `GET /services.json` (the same, for machines).
pub fn routes(systems: Vec<System>) -> Router {
    let page = render(&systems);
    Router::new()
        .route(
            "/",
            get(async move || {
                metrics::counter!("demo_page_views_total", "page" => "landing").increment(1);
                Html(page)
            }),
        )
        .route("/services.json", get(async move || Json(systems)))
}

/// The landing page for `systems`.
pub fn render(systems: &[System]) -> String {
    let mut rows = String::new();
    for system in systems {
        let (state, detail) = match &system.availability {
            Availability::Running { url, try_it } => (
                "running",
                format!(
                    r#"<a href="{url}">{url}</a><br><code>{}</code>"#,
                    escape(try_it),
                    url = escape(url)
                ),
            ),
            Availability::PartlyBuilt { try_it } => (
                "partly built",
                format!(
                    "Not in the demo yet; run its parts on their own:<br><code>{}</code>",
                    escape(try_it)
                ),
            ),
            Availability::NotBuiltYet => (
                "not built yet",
                "Only its configuration and error types exist in this build.".to_owned(),
            ),
        };
        let _ = write!(
            rows,
            "<tr><td><strong>{}</strong><br><small>{}</small></td><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(system.name),
            escape(system.summary),
            escape(system.crate_name),
            state.replace(' ', "-"),
            state,
            detail,
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Live-streaming toolkit demo</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td code {{ white-space: nowrap; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .6rem; text-align: left; vertical-align: top; }}
.running {{ color: #17692b; }} .partly-built {{ color: #1d4f91; }} .not-built-yet {{ color: #8a5a00; }}
</style></head>
<body>
<h1>Live-streaming toolkit demo</h1>
<p>Every system of the workspace that this build runs, in one process. Machine-readable:
<a href="/services.json">/services.json</a>. Operations: <a href="/healthz">/healthz</a>,
<a href="/metrics">/metrics</a>.</p>
<table><thead><tr><th>System</th><th>Crate</th><th>Status</th><th>Try it</th></tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"#
    )
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod page {
    use super::*;

    #[test]
    fn every_system_is_listed_with_its_crate() {
        let systems = catalogue();
        assert_eq!(systems.len(), 5);
        let page = render(&systems);
        for system in &systems {
            assert!(
                page.contains(system.name) && page.contains(system.crate_name),
                "{} missing",
                system.name
            );
        }
    }

    #[test]
    fn running_systems_link_their_url_and_text_is_escaped() {
        let system = System {
            name: "Camus",
            crate_name: "camus-signaling",
            summary: "rooms <b>&</b> signaling",
            availability: Availability::Running {
                url: "http://127.0.0.1:5000/".into(),
                try_it: "open it & \"join\"".into(),
            },
        };
        let page = render(&[system]);
        assert!(page.contains(r#"<a href="http://127.0.0.1:5000/">"#));
        assert!(page.contains("rooms &lt;b&gt;&amp;&lt;/b&gt; signaling"));
        assert!(page.contains("open it &amp; &quot;join&quot;"));
    }

    #[test]
    fn the_json_form_tags_each_status() {
        let json = serde_json::to_value(catalogue()).expect("serializable");
        assert_eq!(json[0]["availability"]["status"], "partly-built");
        assert_eq!(json[2]["availability"]["status"], "partly-built");
        assert_eq!(json[4]["crate_name"], "camus-signaling");
        let planned = System {
            name: "Later",
            crate_name: "later",
            summary: "not yet",
            availability: Availability::NotBuiltYet,
        };
        let json = serde_json::to_value(planned).expect("serializable");
        assert_eq!(json["availability"]["status"], "not-built-yet");
    }
}
