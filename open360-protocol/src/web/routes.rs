//! The site's routes (see the table in [`crate::web`]).

use super::{
    Web, channel, now_ms, pages, password,
    session::COOKIE,
    store::{Channel, ChannelQuery, LiveState, User, WebStoreError},
    valid_username,
};
use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use rand::{Rng, distr::Alphanumeric};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/signup", get(signup_page))
        .route("/login", get(login_page))
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/nsk", post(new_stream_key))
        .route(
            "/dashboard",
            get(channel::dashboard).post(channel::save_dashboard),
        )
        .route("/channel/{username}", get(channel::channel_page))
        .route("/channel/{username}/stats", get(channel::channel_stats))
        .route("/algo/featured", get(featured))
        .route("/algo/recommended", get(recommended))
        .route(
            "/video/{username}/master.m3u8",
            get(channel::master_playlist),
        )
        .route("/video/{username}/vods", get(channel::vods))
        .route("/static/open360/{file}", get(channel::asset))
        .layer(axum::middleware::map_response(hardened))
        .with_state(web)
}

/// Headers every answer carries: no sniffing, no framing by other sites.
async fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

// ---- sessions ---------------------------------------------------------------------------

/// The logged-in user, from the session cookie.
pub(crate) fn viewer(web: &Web, headers: &HeaderMap) -> Option<String> {
    session_token(headers).and_then(|token| web.sessions.user(token))
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn session_cookie(web: &Web, token: &str, max_age: u64) -> String {
    let secure = if web.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

fn logged_in(web: &Web, username: &str, to: &str) -> Response {
    let token = web.sessions.create(username);
    let cookie = session_cookie(web, &token, web.sessions.ttl().as_secs());
    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

pub(crate) fn page(status: StatusCode, title: &str, viewer: Option<&str>, body: &str) -> Response {
    (status, Html(pages::layout(title, viewer, body))).into_response()
}

pub(crate) fn store_failed(error: WebStoreError) -> Response {
    tracing::error!(%error, "web store");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        None,
        "<h1>Something went wrong</h1><p>Please try again in a moment.</p>",
    )
}

pub(crate) fn not_found(viewer: Option<&str>) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        viewer,
        "<h1>No such channel</h1>",
    )
}

// ---- home and algo -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Explore {
    directory: Option<String>,
    tag: Option<String>,
}

async fn home(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(explore): Query<Explore>,
) -> Response {
    let viewer = viewer(&web, &headers);
    let query = ChannelQuery {
        directory: explore.directory.filter(|d| !d.is_empty()),
        tag: explore.tag.filter(|t| !t.is_empty()),
        limit: 60,
        ..ChannelQuery::default()
    };
    let channels = match web.store.channels(&query).await {
        Ok(channels) => channels,
        Err(error) => return store_failed(error),
    };
    let heading = match (&query.directory, &query.tag) {
        (Some(directory), _) => format!("Directory: {}", crate::escape(directory)),
        (None, Some(tag)) => format!("Tagged #{}", crate::escape(tag)),
        (None, None) => "Live now and everyone else".to_owned(),
    };
    let body = format!(
        "<h1>{heading}</h1>{}",
        pages::channel_cards(&channels, &web.config.media_url)
    );
    page(StatusCode::OK, "Home", viewer.as_deref(), &body)
}

/// A channel as the JSON of `algo` shows it: never a key.
pub(crate) fn card(web: &Web, channel: &Channel) -> Value {
    let (status, _) = channel.live.status();
    let thumbnail = match (&channel.stream_id, channel.live) {
        (Some(stream), LiveState::Online) => Some(format!(
            "{}/{}/{stream}/thumbs/latest.jpg",
            web.config.media_url, channel.username
        )),
        _ => None,
    };
    json!({
        "username": channel.username,
        "title": channel.settings.title,
        "directory": channel.settings.directory,
        "tags": channel.settings.tags,
        "streamStatus": status,
        "viewers": channel.viewers,
        "thumbnail": thumbnail,
        "url": format!("/channel/{}", channel.username),
    })
}

/// The most watched live channels.
async fn featured(State(web): State<Arc<Web>>) -> Response {
    let query = ChannelQuery {
        live_only: true,
        limit: 10,
        ..ChannelQuery::default()
    };
    match web.store.channels(&query).await {
        Ok(channels) => {
            Json(channels.iter().map(|c| card(&web, c)).collect::<Vec<_>>()).into_response()
        }
        Err(error) => store_failed(error),
    }
}

/// The channels after the featured ones, live first: what to watch next.
async fn recommended(State(web): State<Arc<Web>>) -> Response {
    let query = ChannelQuery {
        limit: 20,
        ..ChannelQuery::default()
    };
    match web.store.channels(&query).await {
        Ok(channels) => {
            let featured = channels
                .iter()
                .filter(|c| c.live != LiveState::Offline)
                .count()
                .min(10);
            let rest: Vec<Value> = channels
                .iter()
                .skip(featured)
                .take(10)
                .map(|c| card(&web, c))
                .collect();
            Json(rest).into_response()
        }
        Err(error) => store_failed(error),
    }
}

// ---- auth ------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn signup_page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let viewer = viewer(&web, &headers);
    let form = pages::account_form("/auth/signup", "Sign up", None);
    page(StatusCode::OK, "Sign up", viewer.as_deref(), &form)
}

async fn login_page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let viewer = viewer(&web, &headers);
    let form = pages::account_form("/auth/login", "Log in", None);
    page(StatusCode::OK, "Log in", viewer.as_deref(), &form)
}

fn form_error(action: &str, heading: &str, status: StatusCode, error: &str) -> Response {
    let form = pages::account_form(action, heading, Some(error));
    page(status, heading, None, &form)
}

async fn signup(State(web): State<Arc<Web>>, Form(credentials): Form<Credentials>) -> Response {
    let refuse = |status, error| form_error("/auth/signup", "Sign up", status, error);
    let Credentials { username, password } = credentials;
    if !valid_username(&username) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "A username is 3 to 32 letters, digits, '-' or '_'.",
        );
    }
    if !(8..=256).contains(&password.chars().count()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "A password is 8 to 256 characters.",
        );
    }
    let hashed = tokio::task::spawn_blocking(move || password::hash(&password)).await;
    let password_hash = match hashed {
        Ok(Ok(hash)) => hash,
        Ok(Err(error)) => {
            tracing::error!(%error, "sign-up");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Please try again.");
        }
        Err(error) => {
            tracing::error!(%error, "sign-up");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Please try again.");
        }
    };
    let user = User {
        username: username.clone(),
        password_hash,
        stream_key: None,
        created_at_ms: now_ms(),
    };
    match web.store.create_user(&user).await {
        Ok(()) => {
            tracing::info!(%username, "signed up");
            logged_in(&web, &username, "/dashboard")
        }
        Err(WebStoreError::UsernameTaken) => {
            refuse(StatusCode::CONFLICT, "That username is taken.")
        }
        Err(error) => store_failed(error),
    }
}

/// Checked when the user does not exist, so that a failed login takes as long either way.
static DECOY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| password::hash("a decoy password").unwrap_or_default());

async fn login(State(web): State<Arc<Web>>, Form(credentials): Form<Credentials>) -> Response {
    let Credentials { username, password } = credentials;
    let now = std::time::Instant::now();
    if !web.throttle.allows(&username, now) {
        return form_error(
            "/auth/login",
            "Log in",
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong passwords for this name; try again in 15 minutes.",
        );
    }
    let user = if valid_username(&username) {
        match web.store.user(&username).await {
            Ok(user) => user,
            Err(error) => return store_failed(error),
        }
    } else {
        None
    };
    let hash = user
        .as_ref()
        .map_or_else(|| DECOY_HASH.clone(), |u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if matches => {
            web.throttle.succeeded(&user.username);
            logged_in(&web, &user.username, "/dashboard")
        }
        _ => {
            web.throttle.failed(&username, now);
            form_error(
                "/auth/login",
                "Log in",
                StatusCode::UNAUTHORIZED,
                "Wrong username or password.",
            )
        }
    }
}

async fn logout(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        web.sessions.remove(token);
    }
    let cookie = session_cookie(&web, "", 0);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

pub(crate) fn json_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// 32 characters of `[A-Za-z0-9]` from a CSPRNG (`rand`'s thread generator).
fn new_key() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

async fn new_stream_key(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let Some(username) = viewer(&web, &headers) else {
        return json_error(StatusCode::UNAUTHORIZED, "log in first");
    };
    // A clash among 62^32 keys is not expected; the store refuses one all the same.
    for _ in 0..3 {
        let key = new_key();
        match web.store.set_stream_key(&username, &key).await {
            Ok(()) => {
                tracing::info!(%username, "new stream key");
                return (
                    [(header::CACHE_CONTROL, "no-store")],
                    Json(json!({ "streamKey": key, "message": "Ok" })),
                )
                    .into_response();
            }
            Err(WebStoreError::KeyTaken) => continue,
            Err(error) => {
                tracing::error!(%error, "new stream key");
                return json_error(StatusCode::SERVICE_UNAVAILABLE, "the store failed");
            }
        }
    }
    json_error(StatusCode::SERVICE_UNAVAILABLE, "no free key was found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cookies(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::COOKIE,
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        headers
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let headers = cookies(&["a=1; open360_session=tok; b=2", "c=3"]);
        assert_eq!(session_token(&headers), Some("tok"));
        let headers = cookies(&["x_open360_session=no; open360_sessionx=no"]);
        assert_eq!(session_token(&headers), None);
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    proptest! {
        /// Any Cookie header: no panic, and only our cookie's own value comes out.
        #[test]
        fn any_cookie_header_is_read_safely(value in "[ -~]{0,200}") {
            if let Ok(header) = HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(header::COOKIE, header);
                if let Some(token) = session_token(&headers) {
                    let expected = format!("{COOKIE}={token}");
                    prop_assert!(value.split(';').any(|pair| pair.trim() == expected));
                }
            }
        }
    }
}
