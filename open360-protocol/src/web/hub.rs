//! What `web-api` answers over the hub (see the module docs of [`crate::web`]).

use super::{
    Web, now_ms,
    store::{Channel, LiveState, Vod},
};
use crate::{
    ApiMessage,
    client::{Answer, ServiceBuilder, ServiceClient},
};
use serde_json::{Value, json};
use std::sync::Arc;

/// The label the web service joins the hub under.
pub const WEB_LABEL: &str = "web-api";

/// `web-api`'s client, its handlers bound to `web`.
pub(crate) fn service(web: &Arc<Web>) -> ServiceBuilder {
    let on = |builder: ServiceBuilder, prompt: &str, handler: Handler| {
        let web = web.clone();
        builder.on(prompt, move |message| handler(web.clone(), message))
    };
    let builder = ServiceClient::builder(WEB_LABEL);
    let builder = on(builder, "checkKeyExists", |web, m| {
        Box::pin(check_key(web, m))
    });
    let builder = on(builder, "streamStatus", |web, m| {
        Box::pin(stream_status(web, m))
    });
    let builder = on(builder, "streamStats", |web, m| {
        Box::pin(stream_stats(web, m))
    });
    let builder = on(builder, "setOnline", |web, m| Box::pin(set_online(web, m)));
    let builder = on(builder, "incrementViewers", |web, m| {
        Box::pin(increment_viewers(web, m))
    });
    let builder = on(builder, "setViewerCount", |web, m| {
        Box::pin(set_viewer_count(web, m))
    });
    on(builder, "addVod", |web, m| Box::pin(add_vod(web, m)))
}

type Handler = fn(Arc<Web>, ApiMessage) -> futures::future::BoxFuture<'static, Answer>;

fn text<'a>(message: &'a ApiMessage, field: &str) -> Result<&'a str, String> {
    message.package.data[field]
        .as_str()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| format!("data.{field} is required"))
}

fn failed(error: impl std::fmt::Display) -> String {
    tracing::error!(%error, "web store");
    "the web service's store failed".to_owned()
}

async fn check_key(web: Arc<Web>, message: ApiMessage) -> Answer {
    let key = text(&message, "streamKey")?;
    match web.store.user_by_stream_key(key).await.map_err(failed)? {
        Some(username) => Ok(json!({ "exists": true, "username": username })),
        None => Ok(json!({ "exists": false })),
    }
}

async fn stream_status(web: Arc<Web>, message: ApiMessage) -> Answer {
    let username = text(&message, "username")?;
    Ok(match web.store.channel(username).await.map_err(failed)? {
        Some(channel) => {
            let (name, code) = channel.live.status();
            json!({ "name": name, "code": code })
        }
        None => json!({ "name": "UNKNOWN", "code": 3 }),
    })
}

async fn stream_stats(web: Arc<Web>, message: ApiMessage) -> Answer {
    let username = text(&message, "username")?;
    let Some(channel) = web.store.channel(username).await.map_err(failed)? else {
        return Ok(json!({ "channelStatus": { "streamStatus": "UNKNOWN", "code": 3 } }));
    };
    let (count, members) = members(&web, &channel).await;
    let (status, code) = channel.live.status();
    Ok(json!({
        "memberCount": count,
        "members": members,
        "streamTitle": channel.settings.title,
        "streamDescription": channel.settings.description,
        "streamTags": channel.settings.tags,
        "streamDirectory": channel.settings.directory,
        "channelOwner": channel.username,
        "channelStatus": { "streamStatus": status, "code": code },
    }))
}

/// The chat room's members, asked of `chat-api`; without an answer in time, the last count the
/// chat told and no names.
async fn members(web: &Web, channel: &Channel) -> (u64, Vec<String>) {
    if let Some(hub) = web.hub.get() {
        let asked = hub
            .ask_within(
                "chat-api",
                "members",
                json!({ "channel": channel.username }),
                web.config.members_timeout,
            )
            .await;
        match asked {
            Ok(reply) => {
                let data = reply.package.data;
                let names = data["members"]
                    .as_array()
                    .map(|names| {
                        names
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                return (data["count"].as_u64().unwrap_or(channel.viewers), names);
            }
            Err(error) => tracing::debug!(%error, "no member list from the chat"),
        }
    }
    (channel.viewers, Vec::new())
}

async fn set_online(web: Arc<Web>, message: ApiMessage) -> Answer {
    let username = text(&message, "username")?;
    let data = &message.package.data;
    // `state` is ours; the original sent only `online` (a boolean, sometimes a string).
    let live = match data["state"].as_str() {
        Some("online") => LiveState::Online,
        Some("lurking") => LiveState::Lurking,
        Some("offline") => LiveState::Offline,
        Some(other) => return Err(format!("unknown state {other:?}")),
        None if data["online"] == json!(true) || data["online"] == json!("true") => {
            LiveState::Online
        }
        None => LiveState::Offline,
    };
    let stream_id = data["streamId"]
        .as_str()
        .filter(|id| crate::ingest::is_path_name(id));
    web.store
        .set_live(username, live, stream_id, now_ms())
        .await
        .map_err(failed)?;
    tracing::info!(%username, ?live, "channel state");
    web.changes.send_modify(|n| *n += 1);
    Ok(Value::Null)
}

async fn increment_viewers(web: Arc<Web>, message: ApiMessage) -> Answer {
    let username = text(&message, "username")?;
    web.store.increment_views(username).await.map_err(failed)?;
    web.changes.send_modify(|n| *n += 1);
    Ok(Value::Null)
}

async fn set_viewer_count(web: Arc<Web>, message: ApiMessage) -> Answer {
    let username = text(&message, "username")?;
    let data = &message.package.data;
    let count = data["count"].as_u64().ok_or("data.count is required")?;
    // A chat without `seq` (the original) is taken in arrival order.
    let seq = match data["seq"].as_u64() {
        Some(seq) => seq,
        None => u64::try_from(now_ms()).unwrap_or(0),
    };
    web.store
        .set_viewers(username, count, seq)
        .await
        .map_err(failed)?;
    web.changes.send_modify(|n| *n += 1);
    Ok(Value::Null)
}

async fn add_vod(web: Arc<Web>, message: ApiMessage) -> Answer {
    let username = text(&message, "username")?;
    let stream_id = text(&message, "streamId")?;
    if !crate::ingest::is_path_name(stream_id) {
        return Err("data.streamId is malformed".into());
    }
    let data = &message.package.data;
    let number = |field: &str| data[field].as_i64().unwrap_or(0).max(0);
    let mut vod = Vod::new(username, stream_id);
    vod.started_at_ms = number("startedAtMs");
    vod.duration_ms = number("durationMs");
    vod.segments = number("segments");
    web.store.add_vod(&vod).await.map_err(failed)?;
    tracing::info!(%username, %stream_id, "VOD recorded");
    web.changes.send_modify(|n| *n += 1);
    Ok(Value::Null)
}
