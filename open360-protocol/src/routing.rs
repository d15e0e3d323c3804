//! Where a message goes: the one decision the Socket.IO hub and the in-process hub share.

use crate::message::{ApiMessage, MessageType};

/// The hub's own label: questions to it are answered by the hub.
pub const HUB_LABEL: &str = "api";

/// What a hub does with one message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    /// Relay it to the sockets of its target.
    Deliver,
    /// Send this reply back to the sender instead (a status answer, or an error).
    Answer(Box<ApiMessage>),
    /// Nothing to do: a one-way message to nobody, or to the hub.
    Drop,
}

/// Decides the route of `message`, given whether its target has a connected socket.
pub(crate) fn route(message: &ApiMessage, target_connected: bool) -> Route {
    let question = message.kind == MessageType::Question;
    if message.target == HUB_LABEL {
        return match (question, message.package.is_status()) {
            (true, true) => Route::Answer(Box::new(message.status_reply("alive"))),
            (true, false) => {
                Route::Answer(Box::new(message.error_reply("the hub answers only status")))
            }
            (false, _) => Route::Drop,
        };
    }
    match (target_connected, question) {
        (true, _) => Route::Deliver,
        (false, true) => Route::Answer(Box::new(message.absent_reply())),
        (false, false) => Route::Drop,
    }
}

/// The event a reply to `message` from `from` is emitted on: its `ack`, or the sender's label.
pub(crate) fn reply_event<'a>(message: &'a ApiMessage, from: &'a str) -> &'a str {
    if message.ack.is_empty() {
        from
    } else {
        &message.ack
    }
}

#[cfg(test)]
mod decisions {
    use super::*;
    use crate::message::Package;

    #[test]
    fn each_case_has_one_route() {
        let ask =
            |target: &str, package: Package| ApiMessage::question("ingest-api", target, package);
        let tell = |target: &str| ApiMessage::message("ingest-api", target, Package::status());
        let status = ask(HUB_LABEL, Package::status());
        match route(&status, false) {
            Route::Answer(reply) => assert_eq!(reply.package.extra["status"], "alive"),
            other => panic!("{other:?}"),
        }
        match route(
            &ask(HUB_LABEL, Package::new("x", serde_json::Value::Null)),
            true,
        ) {
            Route::Answer(reply) => assert_eq!(reply.error(), Some("the hub answers only status")),
            other => panic!("{other:?}"),
        }
        assert_eq!(route(&tell(HUB_LABEL), true), Route::Drop);
        assert_eq!(
            route(&ask("web-api", Package::status()), true),
            Route::Deliver
        );
        assert_eq!(route(&tell("web-api"), true), Route::Deliver);
        assert_eq!(route(&tell("web-api"), false), Route::Drop);
        match route(&ask("web-api", Package::status()), false) {
            Route::Answer(reply) => {
                assert_eq!(reply.error(), Some("no service web-api is connected"));
                assert!(reply.is_absent_reply());
                assert_eq!(reply.target, "ingest-api");
            }
            other => panic!("{other:?}"),
        }
    }
}
