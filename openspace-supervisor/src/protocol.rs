//! The supervisor's JSON command API, exactly as the original's clients speak it.
//!
//! | request | reply |
//! |---|---|
//! | `{"command":"START"}` | `{"command":"START","error":"none","id":0}`; full: `"no available slots"`, id -1 |
//! | `{"command":"STOP","id":0}` | `{"command":"STOP","error":"none","id":0}`; `"not running"` or `"invalid id"`, id -1 |
//! | `{"command":"RESOLUTION","id":0,"width":1920,"height":1080}` | the request's fields with `"error":"none"`; `"invalid id"`, `"not running"`, `"invalid resolution"` |
//! | `{"command":"STATUS","id":0}` | `{"command":"STATUS","error":"none","id":0,"status":"RUNNING"}` (the requested id echoed); `"invalid id"` with status `INVALID` |
//! | `{"command":"SERVER_STATUS"}` | `{"command":"SERVER_STATUS","error":"none","id":0,"running":1,"total":3}` |
//!
//! Not JSON: `{"error":"json decode error"}`; an unknown command:
//! `{"error":"invalid message received: <CMD>"}`. With a shared secret configured, a request
//! without the right `"secret"` gets its command echoed with `"error":"unauthorized"` and id -1,
//! and nothing happens. Every request gets a reply. Ids are JSON integers (or strings of one).
//!
//! One addition to the original: `STATUS` with `"until": "<STATE>"` and `"wait_ms": N` replies
//! when the slot reaches that state, or after N ms (at most 60 s) with its state then, so a
//! client need not poll to learn that an instance runs.

use crate::slots::{Effect, SlotError, Slots};
use serde_json::{Value, json};
use std::time::Instant;

/// The largest width or height `RESOLUTION` accepts.
pub const MAX_DIMENSION: u32 = 16_384;

/// A command's reply and what it makes the supervisor do.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The JSON reply.
    pub reply: Value,
    /// Effects for the launcher.
    pub effects: Vec<Effect>,
    /// The slot a successful `START` took.
    pub started: Option<u32>,
}

impl Handled {
    fn reply(reply: Value) -> Self {
        Self {
            reply,
            effects: Vec::new(),
            started: None,
        }
    }
}

/// Runs one request against `slots`. `secret`, when set, must be the request's `secret`.
pub fn handle(slots: &mut Slots, text: &str, secret: Option<&str>, now: Instant) -> Handled {
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        return Handled::reply(json!({ "error": "json decode error" }));
    };
    let command = match request.get("command") {
        Some(Value::String(command)) => command.clone(),
        Some(other) => other.to_string(),
        None => "null".to_owned(),
    };
    let known = ["START", "STOP", "RESOLUTION", "STATUS", "SERVER_STATUS"];
    if !known.contains(&command.as_str()) {
        return Handled::reply(json!({ "error": format!("invalid message received: {command}") }));
    }
    if let Some(expected) = secret {
        let given = request.get("secret").and_then(Value::as_str).unwrap_or("");
        if !same(given.as_bytes(), expected.as_bytes()) {
            return Handled::reply(
                json!({ "command": command, "error": "unauthorized", "id": -1 }),
            );
        }
    }
    let id = request.get("id").and_then(integer);
    let failed =
        |error: SlotError| json!({ "command": command, "error": error.to_string(), "id": -1 });
    match command.as_str() {
        "START" => match slots.start(now) {
            Ok((id, effects)) => Handled {
                reply: json!({ "command": "START", "error": "none", "id": id }),
                effects,
                started: Some(id),
            },
            Err(error) => Handled::reply(failed(error)),
        },
        "STOP" => match slots.stop(id.unwrap_or(-1), now) {
            Ok(effects) => Handled {
                reply: json!({ "command": "STOP", "error": "none", "id": id }),
                effects,
                started: None,
            },
            Err(error) => Handled::reply(failed(error)),
        },
        "RESOLUTION" => {
            let dimension = |key: &str| {
                request
                    .get(key)
                    .and_then(integer)
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|v| (1..=MAX_DIMENSION).contains(v))
            };
            let (Some(width), Some(height)) = (dimension("width"), dimension("height")) else {
                return Handled::reply(
                    json!({ "command": command, "error": "invalid resolution", "id": id.unwrap_or(-1) }),
                );
            };
            match slots.resolution(id.unwrap_or(-1), width, height) {
                Ok(effects) => Handled {
                    reply: json!({
                        "command": "RESOLUTION", "error": "none", "id": id,
                        "width": width, "height": height,
                    }),
                    effects,
                    started: None,
                },
                Err(error) => Handled::reply(failed(error)),
            }
        }
        "STATUS" => {
            let echoed = id.map_or(json!(-1), Value::from);
            match slots.status(id.unwrap_or(-1)) {
                Ok(state) => Handled::reply(json!({
                    "command": "STATUS", "error": "none", "id": echoed, "status": state.as_str(),
                })),
                Err(error) => Handled::reply(json!({
                    "command": "STATUS", "error": error.to_string(), "id": echoed, "status": "INVALID",
                })),
            }
        }
        _ => {
            let (running, total) = slots.server_status();
            Handled::reply(json!({
                "command": "SERVER_STATUS", "error": "none", "id": 0,
                "running": running, "total": total,
            }))
        }
    }
}

/// A JSON integer, or a string holding one.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(slots: &mut Slots, request: Value) -> Value {
        handle(slots, &request.to_string(), None, Instant::now()).reply
    }

    fn slots() -> Slots {
        Slots::new(3, Duration::from_secs(120), Duration::from_secs(10))
    }

    #[test]
    fn every_command_answers_in_the_originals_shape() {
        let mut slots = slots();
        assert_eq!(
            run(&mut slots, json!({ "command": "START" })),
            json!({ "command": "START", "error": "none", "id": 0 })
        );
        assert_eq!(
            run(&mut slots, json!({ "command": "STATUS", "id": 0 })),
            json!({ "command": "STATUS", "error": "none", "id": 0, "status": "INITIALIZING" })
        );
        assert_eq!(
            run(&mut slots, json!({ "command": "STATUS", "id": "2" })),
            json!({ "command": "STATUS", "error": "none", "id": 2, "status": "IDLE" }),
            "the requested id, echoed"
        );
        assert_eq!(
            run(
                &mut slots,
                json!({ "command": "RESOLUTION", "id": 0, "width": 1920, "height": 1080 })
            ),
            json!({ "command": "RESOLUTION", "error": "none", "id": 0, "width": 1920, "height": 1080 })
        );
        assert_eq!(
            run(&mut slots, json!({ "command": "SERVER_STATUS" })),
            json!({ "command": "SERVER_STATUS", "error": "none", "id": 0, "running": 1, "total": 3 })
        );
        assert_eq!(
            run(&mut slots, json!({ "command": "STOP", "id": 0 })),
            json!({ "command": "STOP", "error": "none", "id": 0 })
        );
        for _ in 0..2 {
            run(&mut slots, json!({ "command": "START" }));
        }
        assert_eq!(
            run(&mut slots, json!({ "command": "START" })),
            json!({ "command": "START", "error": "no available slots", "id": -1 })
        );
    }

    #[test]
    fn bad_requests_get_errors_and_change_nothing() {
        let mut slots = slots();
        let before = slots.server_status();
        let cases = [
            ("{not json", json!({ "error": "json decode error" })),
            (
                r#"{"command":"DANCE"}"#,
                json!({ "error": "invalid message received: DANCE" }),
            ),
            (
                r#"{"id":1}"#,
                json!({ "error": "invalid message received: null" }),
            ),
            (
                r#"{"command":7}"#,
                json!({ "error": "invalid message received: 7" }),
            ),
            (
                r#"{"command":"STOP","id":-1}"#,
                json!({ "command": "STOP", "error": "invalid id", "id": -1 }),
            ),
            (
                r#"{"command":"STOP","id":1}"#,
                json!({ "command": "STOP", "error": "not running", "id": -1 }),
            ),
            (
                r#"{"command":"STOP"}"#,
                json!({ "command": "STOP", "error": "invalid id", "id": -1 }),
            ),
            (
                r#"{"command":"STATUS","id":-5}"#,
                json!({ "command": "STATUS", "error": "invalid id", "id": -5, "status": "INVALID" }),
            ),
            (
                r#"{"command":"STATUS","id":3}"#,
                json!({ "command": "STATUS", "error": "invalid id", "id": 3, "status": "INVALID" }),
            ),
            (
                r#"{"command":"RESOLUTION","id":0,"width":0,"height":10}"#,
                json!({ "command": "RESOLUTION", "error": "invalid resolution", "id": 0 }),
            ),
            (
                r#"{"command":"RESOLUTION","id":0,"width":640,"height":480}"#,
                json!({ "command": "RESOLUTION", "error": "not running", "id": -1 }),
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(
                handle(&mut slots, request, None, Instant::now()).reply,
                expected,
                "{request}"
            );
        }
        assert_eq!(slots.server_status(), before);
    }

    #[test]
    fn with_a_secret_only_requests_that_carry_it_act() {
        let mut slots = slots();
        let secret = Some("a shared secret, long enough");
        let refused = handle(&mut slots, r#"{"command":"START"}"#, secret, Instant::now());
        assert_eq!(
            refused.reply,
            json!({ "command": "START", "error": "unauthorized", "id": -1 })
        );
        assert!(refused.effects.is_empty());
        let wrong = handle(
            &mut slots,
            r#"{"command":"START","secret":"guess"}"#,
            secret,
            Instant::now(),
        );
        assert_eq!(wrong.reply["error"], "unauthorized");
        assert_eq!(slots.server_status(), (0, 3));
        let accepted = handle(
            &mut slots,
            r#"{"command":"START","secret":"a shared secret, long enough"}"#,
            secret,
            Instant::now(),
        );
        assert_eq!(accepted.reply["error"], "none");
        assert_eq!(accepted.started, Some(0));
        assert_eq!(accepted.effects.len(), 1);
    }
}
