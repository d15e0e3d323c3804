//! The HTTP API beside the sockets: `POST /api/livestreams` (the caller's ID token as
//! `Authorization: Bearer …` or the original's `idToken` header; the artist is the token's
//! user), `GET /api/livestreams/{id}`, `GET /api/livestreams`.

use crate::{
    store::{LivestreamStore, NewLivestream},
    verify::TokenVerifier,
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use std::sync::Arc;

/// The most livestreams `GET /api/livestreams` returns.
const LIST_LIMIT: usize = 100;

#[derive(Clone)]
struct Api {
    verifier: Arc<dyn TokenVerifier>,
    store: Arc<dyn LivestreamStore>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn unavailable(error: crate::store::StoreError) -> Response {
    tracing::error!(%error, "livestream store unavailable");
    self::error(StatusCode::SERVICE_UNAVAILABLE, "The store is unavailable.")
}

pub(crate) fn routes(verifier: Arc<dyn TokenVerifier>, store: Arc<dyn LivestreamStore>) -> Router {
    Router::new()
        .route("/api/livestreams", get(list).post(create))
        .route("/api/livestreams/{id}", get(one))
        .with_state(Api { verifier, store })
}

async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Json<NewLivestream>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("idToken").and_then(|v| v.to_str().ok()));
    let Some(token) = token else {
        return error(StatusCode::UNAUTHORIZED, "Id token not provided.");
    };
    let Ok(user) = api.verifier.verify(token.trim()).await else {
        return error(StatusCode::UNAUTHORIZED, "Invalid id token.");
    };
    let Json(new) = match body {
        Ok(body) => body,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match api.store.create(user.uid(), &new).await {
        Ok(livestream) => {
            let mut body = json!(livestream);
            body["livestreamId"] = json!(livestream.id);
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(e) => unavailable(e),
    }
}

async fn one(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.store.get(&id).await {
        Ok(Some(livestream)) => Json(livestream).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("Livestream {id} does not exist."),
        ),
        Err(e) => unavailable(e),
    }
}

async fn list(State(api): State<Api>) -> Response {
    match api.store.list(LIST_LIMIT).await {
        Ok(all) => Json(all).into_response(),
        Err(e) => unavailable(e),
    }
}
