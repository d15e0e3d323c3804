//! The `channel`, `dashboard` and `video` groups, and the site's static files.

use super::{
    Web, pages,
    routes::{json_error, not_found, page, store_failed, viewer},
    store::{ChannelSettings, LiveState},
};
use axum::{
    Form, Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::json;
use std::{sync::Arc, time::Duration};

/// VODs listed on a channel page and in `/video/<username>/vods`.
const VODS_LISTED: usize = 50;

pub(crate) async fn channel_page(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Response {
    let viewer = viewer(&web, &headers);
    let channel = match web.store.channel(&username).await {
        Ok(Some(channel)) => channel,
        Ok(None) => return not_found(viewer.as_deref()),
        Err(error) => return store_failed(error),
    };
    let vods = match web.store.vods(&channel.username, VODS_LISTED).await {
        Ok(vods) => vods,
        Err(error) => return store_failed(error),
    };
    let token = match (&viewer, &web.config.chat_token_secret) {
        (Some(user), Some(secret)) => {
            crate::issue_chat_token(secret, user, web.config.chat_token_ttl)
                .map_err(|error| tracing::error!(%error, "chat token"))
                .ok()
        }
        _ => None,
    };
    let body = pages::ChannelPage {
        channel: &channel,
        vods: &vods,
        media_url: &web.config.media_url,
        chat_url: web.config.chat_url.as_deref().unwrap_or(""),
        chat_port: web.config.chat_port,
        chat_token: token.as_deref(),
        viewer: viewer.as_deref(),
    }
    .render();
    let title = channel.username.clone();
    let mut response = page(StatusCode::OK, &title, viewer.as_deref(), &body);
    // The page may hold the viewer's chat token.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatsQuery {
    /// Answer once the channel is in this state (`ONLINE`, `LURKING`, `OFFLINE`).
    until: Option<String>,
    /// How long to wait for it; at most 30 s.
    wait_seconds: Option<u64>,
}

/// What the channel page follows: its state and viewer count, at once or once it is `until`.
pub(crate) async fn channel_stats(
    State(web): State<Arc<Web>>,
    Path(username): Path<String>,
    Query(query): Query<StatsQuery>,
) -> Response {
    let wait = Duration::from_secs(query.wait_seconds.unwrap_or(10).min(30));
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = web.changes.subscribe();
    loop {
        changes.mark_unchanged();
        let channel = match web.store.channel(&username).await {
            Ok(Some(channel)) => channel,
            Ok(None) => return json_error(StatusCode::NOT_FOUND, "no such channel"),
            Err(error) => return store_failed(error),
        };
        let (status, code) = channel.live.status();
        let waiting = query.until.as_deref().is_some_and(|until| until != status);
        if !waiting
            || tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
        {
            return Json(json!({
                "username": channel.username,
                "streamStatus": status,
                "code": code,
                "viewers": channel.viewers,
                "title": channel.settings.title,
            }))
            .into_response();
        }
    }
}

pub(crate) async fn dashboard(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let Some(username) = viewer(&web, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let (user, channel) =
        match tokio::try_join!(web.store.user(&username), web.store.channel(&username)) {
            Ok((Some(user), Some(channel))) => (user, channel),
            Ok(_) => return not_found(Some(&username)),
            Err(error) => return store_failed(error),
        };
    let rtmp = web.config.rtmp_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
        format!("rtmp://{host}:1935/live")
    });
    let body = pages::dashboard(&channel, user.stream_key.as_deref(), &rtmp);
    let mut response = page(StatusCode::OK, "Dashboard", Some(&username), &body);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    directory: String,
}

/// The settings a form asks for, trimmed and bounded: a title of 140 characters, a description
/// of 2,000, 10 tags of 32, a directory of 64.
fn settings(form: SettingsForm) -> Result<ChannelSettings, &'static str> {
    let mut settings = ChannelSettings {
        title: form.title.trim().to_owned(),
        description: form.description.trim().to_owned(),
        directory: form.directory.trim().to_owned(),
        ..ChannelSettings::default()
    };
    for tag in form
        .tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if tag.chars().count() > 32 {
            return Err("a tag is at most 32 characters");
        }
        if !settings.tags.iter().any(|t| t == tag) {
            settings.tags.push(tag.to_owned());
        }
    }
    if settings.title.chars().count() > 140
        || settings.description.chars().count() > 2000
        || settings.directory.chars().count() > 64
        || settings.tags.len() > 10
    {
        return Err(
            "too long: a title of 140 characters, a description of 2,000, 10 tags, a directory of 64",
        );
    }
    Ok(settings)
}

pub(crate) async fn save_dashboard(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<SettingsForm>,
) -> Response {
    let Some(username) = viewer(&web, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let settings = match settings(form) {
        Ok(settings) => settings,
        Err(error) => {
            let body = format!(
                "<h1>Not saved</h1><p class=\"error\">{error}</p><p><a href=\"/dashboard\">Back</a></p>"
            );
            return page(StatusCode::BAD_REQUEST, "Dashboard", Some(&username), &body);
        }
    };
    match web.store.update_settings(&username, &settings).await {
        Ok(()) => Redirect::to("/dashboard").into_response(),
        Err(error) => store_failed(error),
    }
}

/// The live stream's master playlist, by username: a redirect to its media (by stream id), so
/// relative URIs in it resolve against the media's own address.
pub(crate) async fn master_playlist(
    State(web): State<Arc<Web>>,
    Path(username): Path<String>,
) -> Response {
    match web.store.channel(&username).await {
        Ok(Some(channel)) if channel.live != LiveState::Offline => match &channel.stream_id {
            Some(stream) => (
                StatusCode::FOUND,
                [
                    (
                        header::LOCATION,
                        format!(
                            "{}/{}/{stream}/master.m3u8",
                            web.config.media_url, channel.username
                        ),
                    ),
                    (header::CACHE_CONTROL, "no-cache".to_owned()),
                ],
            )
                .into_response(),
            None => json_error(StatusCode::NOT_FOUND, "the channel is not live"),
        },
        Ok(Some(_)) => json_error(StatusCode::NOT_FOUND, "the channel is not live"),
        Ok(None) => json_error(StatusCode::NOT_FOUND, "no such channel"),
        Err(error) => store_failed(error),
    }
}

/// The channel's VODs, newest first, each with its playlist's URL.
pub(crate) async fn vods(State(web): State<Arc<Web>>, Path(username): Path<String>) -> Response {
    let channel = match web.store.channel(&username).await {
        Ok(Some(channel)) => channel,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no such channel"),
        Err(error) => return store_failed(error),
    };
    match web.store.vods(&channel.username, VODS_LISTED).await {
        Ok(vods) => Json(
            vods.iter()
                .map(|vod| {
                    json!({
                        "streamId": vod.stream_id,
                        "startedAtMs": vod.started_at_ms,
                        "durationMs": vod.duration_ms,
                        "segments": vod.segments,
                        "playlist": format!(
                            "{}/{}/{}/vod.m3u8",
                            web.config.media_url, vod.username, vod.stream_id
                        ),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(error) => store_failed(error),
    }
}

/// The site's own scripts and style, compiled in.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "site.css" => (include_str!("../../static/open360/site.css"), "text/css"),
        "chat.js" => (
            include_str!("../../static/open360/chat.js"),
            "text/javascript",
        ),
        "channel.js" => (
            include_str!("../../static/open360/channel.js"),
            "text/javascript",
        ),
        "dashboard.js" => (
            include_str!("../../static/open360/dashboard.js"),
            "text/javascript",
        ),
        _ => return json_error(StatusCode::NOT_FOUND, "no such file"),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
