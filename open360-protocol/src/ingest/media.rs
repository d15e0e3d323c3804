//! The media directory over HTTP, for players: `GET /media/<username>/<stream id>/<file>`.
//!
//! Only the names the packager writes are served (`master.m3u8`, `live.m3u8`, `vod.m3u8`,
//! `<n>.ts`, `thumbs/latest.jpg`), so no request can reach another file. Playlists are sent
//! with `Cache-Control: no-cache` (a live one changes every segment); segments and VOD files
//! never change and may be cached.

use super::verifier::is_path_name;
use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use std::{path::PathBuf, sync::Arc};

/// A router serving `media_dir` under `/media`; merge it into any HTTP server.
pub fn media_router(media_dir: PathBuf) -> Router {
    Router::new()
        .route("/media/{username}/{stream}/{file}", get(file))
        .route(
            "/media/{username}/{stream}/thumbs/latest.jpg",
            get(thumbnail),
        )
        .with_state(Arc::new(media_dir))
}

async fn file(
    State(dir): State<Arc<PathBuf>>,
    Path((username, stream, file)): Path<(String, String, String)>,
) -> Response {
    let kind = if matches!(file.as_str(), "master.m3u8" | "live.m3u8" | "vod.m3u8") {
        Kind::Playlist
    } else if file
        .strip_suffix(".ts")
        .is_some_and(|n| !n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit()))
    {
        Kind::Segment
    } else {
        return not_found();
    };
    send(&dir, &username, &stream, &file, kind).await
}

async fn thumbnail(
    State(dir): State<Arc<PathBuf>>,
    Path((username, stream)): Path<(String, String)>,
) -> Response {
    send(
        &dir,
        &username,
        &stream,
        "thumbs/latest.jpg",
        Kind::Thumbnail,
    )
    .await
}

#[derive(Clone, Copy)]
enum Kind {
    Playlist,
    Segment,
    Thumbnail,
}

async fn send(
    dir: &std::path::Path,
    username: &str,
    stream: &str,
    file: &str,
    kind: Kind,
) -> Response {
    if !is_path_name(username) || !is_path_name(stream) {
        return not_found();
    }
    let path = dir.join(username).join(stream).join(file);
    let Ok(body) = tokio::fs::read(&path).await else {
        return not_found();
    };
    let (content_type, cache) = match kind {
        Kind::Playlist => ("application/vnd.apple.mpegurl", "no-cache"),
        Kind::Segment => ("video/mp2t", "public, max-age=86400, immutable"),
        Kind::Thumbnail => ("image/jpeg", "no-cache"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such media").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    async fn status(router: &Router, uri: &str) -> StatusCode {
        let request = axum::http::Request::get(uri)
            .body(Body::empty())
            .expect("a request");
        router
            .clone()
            .oneshot(request)
            .await
            .expect("answered")
            .status()
    }

    #[tokio::test]
    async fn only_the_packagers_files_are_served() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let stream = dir.path().join("ada/1-abc");
        std::fs::create_dir_all(stream.join("thumbs")).expect("made");
        for file in ["live.m3u8", "0.ts", "thumbs/latest.jpg", "secret.txt"] {
            std::fs::write(stream.join(file), b"x").expect("written");
        }
        std::fs::write(dir.path().join("outside.m3u8"), b"x").expect("written");
        let router = media_router(dir.path().to_owned());
        for served in [
            "/media/ada/1-abc/live.m3u8",
            "/media/ada/1-abc/0.ts",
            "/media/ada/1-abc/thumbs/latest.jpg",
        ] {
            assert_eq!(status(&router, served).await, StatusCode::OK, "{served}");
        }
        for refused in [
            "/media/ada/1-abc/secret.txt",
            "/media/ada/1-abc/vod.m3u8",
            "/media/ada/..%2F/outside.m3u8",
            "/media/../ada/live.m3u8",
            "/media/ada/1-abc/..%2F..%2Foutside.m3u8",
            "/media/ada/1-abc/.ts",
            "/media/a%2Fb/1-abc/live.m3u8",
        ] {
            assert_eq!(
                status(&router, refused).await,
                StatusCode::NOT_FOUND,
                "{refused}"
            );
        }
    }
}
