//! The commands API: `GET /commands/capacity`, `POST /commands/close`, `GET /commands/report`,
//! each behind `COMMANDS_API_AUTH`.

use super::{App, auth::commands_authorized, core::Command};
use crate::proto::{StreamSelector, valid_id};
use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Logs each request's method, path, status and time (`LOG_REQUESTS`). Headers, where keys and
/// credentials travel, are never logged.
pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method, %path, status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "request"
    );
    response
}

/// Refuses a commands-API request without the configured credentials.
pub(crate) async fn require_auth(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if commands_authorized(app.config.commands_auth.as_ref(), given) {
        next.run(request).await
    } else {
        metrics::counter!("coordinator_commands_unauthorized_total").increment(1);
        let mut response = (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response();
        if matches!(
            app.config.commands_auth,
            Some(crate::CommandsAuth::Basic { .. })
        ) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"coordinator\""),
            );
        }
        response
    }
}

/// Asks the core; a core that is gone means the coordinator is stopping.
async fn ask<T>(
    app: &App,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Response> {
    let (reply, answer) = oneshot::channel();
    let unavailable = || (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    app.commands
        .send(command(reply))
        .await
        .map_err(|_| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

pub(crate) async fn capacity(State(app): State<Arc<App>>) -> Result<Json<Value>, Response> {
    let report = ask(&app, Command::Capacity).await?;
    Ok(Json(json!({
        "load": report.load,
        "capacity": report.capacity,
        "encoderCount": report.encoder_count,
    })))
}

pub(crate) async fn report(State(app): State<Arc<App>>) -> Result<Json<Value>, Response> {
    let report = ask(&app, Command::Report).await?;
    let streams: Vec<Value> = report
        .active_streams
        .iter()
        .map(|s| {
            json!({
                "channel": s.channel,
                "streamId": s.stream_id,
                "streamServer": s.streaming_server,
                "encoder": s.encoder,
            })
        })
        .collect();
    let servers: Vec<Value> = report
        .streaming_servers
        .iter()
        .map(|s| {
            let (ip, port, ssl) = s
                .address
                .as_ref()
                .map_or((None, None, false), |a| (Some(a.ip.clone()), Some(a.port), a.ssl));
            json!({
                "id": s.id,
                "ip": ip,
                "port": port,
                "ssl": ssl,
                "serverType": if s.role == crate::proto::LinkRole::RtmpServer { "RTMP" } else { "WS" },
            })
        })
        .collect();
    let encoders: Vec<Value> = report
        .encoders
        .iter()
        .map(|e| json!({"id": e.id, "capacity": e.capacity, "load": e.load}))
        .collect();
    Ok(Json(json!({
        "activeStreams": streams,
        "streamingServers": servers,
        "encoders": encoders,
    })))
}

pub(crate) async fn close(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, Response> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let max = app.config.id_max_length;
    let bad = |what: &str| (StatusCode::BAD_REQUEST, format!("{what}\n")).into_response();
    let channel = match text("x-streaming-channel") {
        Some(channel) if valid_id(channel, max) => channel.to_owned(),
        _ => return Err(bad("x-streaming-channel is missing or invalid")),
    };
    let selector = match text("x-streaming-id") {
        Some("*") => StreamSelector::All,
        Some(id) if valid_id(id, max) => StreamSelector::Id(id.to_owned()),
        _ => return Err(bad("x-streaming-id is missing or invalid (an id or *)")),
    };
    let closed = ask(&app, |reply| Command::Close {
        channel,
        selector,
        reply,
    })
    .await?;
    Ok(Json(json!({ "closed": closed })))
}
