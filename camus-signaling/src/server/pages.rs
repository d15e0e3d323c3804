//! The HTTP side: the index page and room creation, `/public`, room entry (password, guest
//! limit, cookie) and the browser client's files.

use super::App;
use crate::registry::{EntryError, RoomError, RoomSpec, RoomView};
use crate::store::{CreateRoomError, StoredRoom, hash_password, unix_ms, verify_password};
use axum::{
    Json, Router,
    extract::{Form, FromRequest as _, Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

/// The longest room name kept, in characters.
pub(crate) const MAX_ROOM_NAME_CHARS: usize = 100;

/// The browser client and its style, served from the binary.
const CLIENT_JS: &str = include_str!("../../static/camus.js");
const CLIENT_CSS: &str = include_str!("../../static/camus.css");

pub(crate) fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index).post(create))
        .route("/public", get(public))
        .route("/room/{slug}", get(enter).post(enter))
        .route("/room/{slug}/ws", get(super::socket::upgrade))
        .route("/static/camus.js", get(|| async { script(CLIENT_JS) }))
        .route("/static/camus.css", get(|| async { style(CLIENT_CSS) }))
        .with_state(app)
}

fn script(body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        body,
    )
        .into_response()
}

fn style(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], body).into_response()
}

/// The creation form's fields (a form post, or the same as JSON).
#[derive(Debug, Default, serde::Deserialize)]
struct RoomForm {
    #[serde(default)]
    room_name: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    guest_limit: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    public: Option<String>,
}

/// The entry form's field.
#[derive(Debug, Default, serde::Deserialize)]
struct EntryForm {
    #[serde(default)]
    password: Option<String>,
}

/// JSON bodies may carry numbers and booleans where forms carry text.
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<serde_json::Value> = serde::Deserialize::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }))
}

/// A form post or a JSON body, by its content type.
async fn body<T: serde::de::DeserializeOwned + Default>(request: Request) -> Result<T, Response> {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        Json::<T>::from_request(request, &())
            .await
            .map(|Json(t)| t)
            .map_err(IntoResponse::into_response)
    } else if request.method() == axum::http::Method::POST {
        Form::<T>::from_request(request, &())
            .await
            .map(|Form(t)| t)
            .map_err(IntoResponse::into_response)
    } else {
        Ok(T::default())
    }
}

/// `public` is true for `Yes` (the original's select), `on`, `true` or `1`.
fn is_public(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        ["yes", "on", "true", "1"]
            .iter()
            .any(|t| v.trim().eq_ignore_ascii_case(t))
    })
}

/// The registry's view of a stored room.
pub(crate) fn spec_of(room: &StoredRoom) -> RoomSpec {
    let mut spec = RoomSpec::new(room.name.clone());
    spec.guest_limit = Some(room.guest_limit);
    spec.public = room.public;
    spec.password_protected = room.password_hash.is_some();
    spec
}

async fn index(State(app): State<Arc<App>>) -> Html<String> {
    let rooms = app.locked(|state| state.registry.public_rooms());
    Html(page(
        "Camus",
        &format!(
            "{}<h2>Public rooms</h2>{}",
            creation_form(app.config.default_guest_limit),
            room_list(&rooms)
        ),
    ))
}

async fn public(State(app): State<Arc<App>>) -> Html<String> {
    let rooms = app.locked(|state| state.registry.public_rooms());
    Html(page("Public rooms", &room_list(&rooms)))
}

/// `POST /`: creates the room and sends the creator in with 307, which repeats the post
/// (and its password) at `/room/<slug>`.
async fn create(State(app): State<Arc<App>>, request: Request) -> Response {
    let form: RoomForm = match body(request).await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let name = form.room_name.trim();
    if name.is_empty() || name.chars().count() > MAX_ROOM_NAME_CHARS {
        let text = format!("A room needs a name of 1 to {MAX_ROOM_NAME_CHARS} characters.");
        return (
            StatusCode::BAD_REQUEST,
            Html(page("Camus", &paragraph(&text))),
        )
            .into_response();
    }
    let guest_limit = match form.guest_limit.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<u32>() {
            Ok(limit) => Some(limit),
            Err(_) => {
                let text = "The guest limit is a number (0 for none).";
                return (
                    StatusCode::BAD_REQUEST,
                    Html(page("Camus", &paragraph(text))),
                )
                    .into_response();
            }
        },
    };
    let password = form.password.filter(|p| !p.is_empty());
    let password_hash = match password {
        Some(password) => match tokio::task::spawn_blocking(move || hash_password(&password)).await
        {
            Ok(hash) => Some(hash),
            Err(_) => return unavailable("the password could not be hashed"),
        },
        None => None,
    };
    let public = is_public(form.public.as_deref());
    let mut spec = RoomSpec::new(name);
    spec.guest_limit = guest_limit;
    spec.public = public;
    spec.password_protected = password_hash.is_some();
    let created = app.locked(|state| {
        let slug = state.registry.create_room(spec, Instant::now())?;
        let view = state.registry.room(&slug);
        Ok::<_, RoomError>((slug, view))
    });
    let (slug, view) = match created {
        Ok(created) => created,
        Err(RoomError::TooManyRooms { limit }) => {
            let text = format!("This server holds {limit} rooms already; try again later.");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(page("Camus", &paragraph(&text))),
            )
                .into_response();
        }
    };
    let mut stored = StoredRoom::new(slug.clone(), name.to_owned(), unix_ms(SystemTime::now()));
    stored.password_hash = password_hash;
    stored.guest_limit = view.map_or(0, |v| v.guest_limit);
    stored.public = public;
    match app.store.create_room(&stored).await {
        Ok(()) => {}
        Err(CreateRoomError::SlugTaken { .. }) => {
            // Another server sharing the store made it first: this one's copy idles out.
            return (
                StatusCode::CONFLICT,
                Html(page(
                    "Camus",
                    &paragraph("That room name was just taken; try again."),
                )),
            )
                .into_response();
        }
        Err(error) => {
            tracing::error!(%error, slug, "room not stored");
            return unavailable("the room could not be stored");
        }
    }
    metrics::counter!("camus_rooms_created_total").increment(1);
    tracing::info!(slug, "room created");
    Redirect::temporary(&format!("/room/{slug}")).into_response()
}

fn unavailable(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(page("Camus", &paragraph(&format!("Unavailable: {why}.")))),
    )
        .into_response()
}

/// `GET|POST /room/<slug>`: 404 unknown; 401 with the password form for a password room
/// without the right password (a returning client needs none); 418 when full; else the
/// room page with the client's cookie.
async fn enter(
    State(app): State<Arc<App>>,
    Path(slug): Path<String>,
    request: Request,
) -> Response {
    let headers: HeaderMap = request.headers().clone();
    app.load_room(&slug).await;
    let Some(room) = app.locked(|state| state.registry.room(&slug)) else {
        return not_found();
    };
    let returning = app
        .cookies
        .client_in(&slug, &headers)
        .filter(|id| app.locked(|state| state.registry.is_client(&slug, id)));
    if room.password_protected && returning.is_none() {
        let form: EntryForm = match body(request).await {
            Ok(form) => form,
            Err(refusal) => return refusal,
        };
        let hash = match app.store.room(&slug).await {
            Ok(Some(stored)) => stored.password_hash,
            Ok(None) => return not_found(),
            Err(error) => {
                tracing::error!(%error, slug, "room not read from the store");
                return unavailable("the room could not be read");
            }
        };
        let right = match (hash, form.password.clone()) {
            (Some(hash), Some(candidate)) => {
                tokio::task::spawn_blocking(move || verify_password(&hash, &candidate))
                    .await
                    .unwrap_or(false)
            }
            (None, _) => true,
            (Some(_), None) => false,
        };
        if !right {
            let wrong = form.password.is_some();
            return (
                StatusCode::UNAUTHORIZED,
                Html(page(&room.name, &password_form(&room, wrong))),
            )
                .into_response();
        }
    }
    let entered = app.locked(|state| {
        state
            .registry
            .enter(&slug, returning.as_ref(), Instant::now())
    });
    match entered {
        Ok(id) => {
            let cookie = app
                .cookies
                .set_cookie(&slug, &id, app.config.secure_cookies);
            ([(header::SET_COOKIE, cookie)], Html(room_page(&room))).into_response()
        }
        Err(EntryError::RoomFull) => (
            StatusCode::IM_A_TEAPOT,
            Html(page(&room.name, &paragraph("Guest limit already reached"))),
        )
            .into_response(),
        Err(_) => not_found(),
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page("No such room", &paragraph("No such room."))),
    )
        .into_response()
}

/// HTML-escapes text for element content and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn paragraph(text: &str) -> String {
    format!("<p>{}</p>", escape(text))
}

fn page(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/static/camus.css\"></head>\
         <body><header><a href=\"/\">Camus</a></header><main><h1>{}</h1>{content}</main></body></html>\n",
        escape(title),
        escape(title)
    )
}

fn creation_form(default_guest_limit: u32) -> String {
    let options: String = [0, 2, 3, 5, 10, default_guest_limit]
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|n| {
            let selected = if *n == default_guest_limit {
                " selected"
            } else {
                ""
            };
            let label = if *n == 0 {
                "None".to_owned()
            } else {
                n.to_string()
            };
            format!("<option value=\"{n}\"{selected}>{label}</option>")
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"/\" class=\"create\">\
         <label>Room name <input name=\"room_name\" required maxlength=\"{MAX_ROOM_NAME_CHARS}\"></label>\
         <label>Password (optional) <input name=\"password\" type=\"password\" autocomplete=\"new-password\"></label>\
         <label>Guest limit <select name=\"guest_limit\">{options}</select></label>\
         <label>Public <select name=\"public\"><option>No</option><option>Yes</option></select></label>\
         <button type=\"submit\">Create room</button></form>"
    )
}

fn room_list(rooms: &[RoomView]) -> String {
    if rooms.is_empty() {
        return paragraph("No public rooms right now.");
    }
    let items: String = rooms
        .iter()
        .map(|room| {
            let limit = if room.guest_limit == 0 {
                String::new()
            } else {
                format!(" / {}", room.guest_limit)
            };
            let lock = if room.password_protected { " 🔒" } else { "" };
            format!(
                "<li><a href=\"/room/{}\">{}</a>{lock} <span class=\"guests\">{}{limit}</span></li>",
                escape(&room.slug),
                escape(&room.name),
                room.guests
            )
        })
        .collect();
    format!("<ul class=\"rooms\">{items}</ul>")
}

fn password_form(room: &RoomView, wrong: bool) -> String {
    let note = if wrong {
        paragraph("Wrong password.")
    } else {
        paragraph("This room needs a password.")
    };
    format!(
        "{note}<form method=\"post\" action=\"/room/{}\">\
         <label>Password <input name=\"password\" type=\"password\" required autofocus></label>\
         <button type=\"submit\">Enter</button></form>",
        escape(&room.slug)
    )
}

fn room_page(room: &RoomView) -> String {
    let content = format!(
        "<section id=\"camus\" data-room=\"{}\">\
         <div id=\"videos\"><figure class=\"me\"><video id=\"local\" autoplay muted playsinline></video>\
         <figcaption>You</figcaption></figure></div>\
         <aside><label>Your name <input id=\"name\" maxlength=\"100\" placeholder=\"Major Tom\"></label>\
         <ol id=\"chat\"></ol><form id=\"say\"><input id=\"text\" autocomplete=\"off\">\
         <button type=\"submit\">Send</button></form></aside></section>\
         <script src=\"/static/camus.js\"></script>",
        escape(&room.slug)
    );
    page(&room.name, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_is_the_originals_yes_or_a_checkbox() {
        for yes in ["Yes", "yes", "on", "true", "1", " Yes "] {
            assert!(is_public(Some(yes)), "{yes}");
        }
        for no in ["No", "", "0", "false", "off", "yep"] {
            assert!(!is_public(Some(no)), "{no}");
        }
        assert!(!is_public(None));
    }

    #[test]
    fn names_are_escaped_in_pages() {
        let html = page("<script>alert(1)</script>", "");
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
