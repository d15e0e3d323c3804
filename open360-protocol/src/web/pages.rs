//! The site's HTML, rendered on the server. Every value from a user goes through [`escape`];
//! no page but the dashboard ever receives a stream key.

use super::store::{Channel, LiveState, Vod};
use crate::escape;
use std::fmt::Write as _;

/// The page frame: the header with who is logged in, then `body`.
pub(crate) fn layout(title: &str, viewer: Option<&str>, body: &str) -> String {
    let account = match viewer {
        Some(user) => format!(
            "<a href=\"/channel/{u}\">{u}</a> · <a href=\"/dashboard\">Dashboard</a> · \
             <form method=\"post\" action=\"/auth/logout\" class=\"inline\">\
             <button>Log out</button></form>",
            u = escape(user)
        ),
        None => "<a href=\"/login\">Log in</a> · <a href=\"/signup\">Sign up</a>".to_owned(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Open360</title><link rel=\"stylesheet\" href=\"/static/open360/site.css\">\
         </head><body><header><a class=\"brand\" href=\"/\">Open360</a><nav>{account}</nav></header>\
         <main>{body}</main></body></html>",
        title = escape(title)
    )
}

/// A list of channel cards, with thumbnails for the live ones.
pub(crate) fn channel_cards(channels: &[Channel], media_url: &str) -> String {
    if channels.is_empty() {
        return "<p class=\"empty\">No channels here yet.</p>".to_owned();
    }
    let mut out = String::from("<ul class=\"cards\">");
    for channel in channels {
        let user = escape(&channel.username);
        let picture = match (&channel.stream_id, channel.live) {
            (Some(stream), LiveState::Online) => format!(
                "<img alt=\"\" src=\"{media_url}/{user}/{stream}/thumbs/latest.jpg\">",
                stream = escape(stream)
            ),
            _ => "<div class=\"offline\">offline</div>".to_owned(),
        };
        let badge = match channel.live {
            LiveState::Online => format!("<span class=\"live\">LIVE · {}</span>", channel.viewers),
            LiveState::Lurking => "<span class=\"live\">starting</span>".to_owned(),
            LiveState::Offline => String::new(),
        };
        let _ = write!(
            out,
            "<li><a href=\"/channel/{user}\">{picture}<strong>{user}</strong> {badge}\
             <span class=\"title\">{title}</span></a>{tags}</li>",
            title = escape(&channel.settings.title),
            tags = tag_links(&channel.settings.tags),
        );
    }
    out.push_str("</ul>");
    out
}

fn tag_links(tags: &[String]) -> String {
    let mut out = String::from("<span class=\"tags\">");
    for tag in tags {
        let _ = write!(
            out,
            "<a href=\"/?tag={query}\">#{tag}</a> ",
            query = urlencode(tag),
            tag = escape(tag)
        );
    }
    out.push_str("</span>");
    out
}

/// Percent-encodes everything but unreserved characters, for a query value.
pub(crate) fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The channel page: the player, the channel's settings, the viewer count and the chat.
pub(crate) struct ChannelPage<'a> {
    pub(crate) channel: &'a Channel,
    pub(crate) vods: &'a [Vod],
    pub(crate) media_url: &'a str,
    /// Where the chat is; empty for the page's host on `chat_port`.
    pub(crate) chat_url: &'a str,
    pub(crate) chat_port: u16,
    /// A chat token for the logged-in viewer, if any.
    pub(crate) chat_token: Option<&'a str>,
    /// The logged-in viewer's name, for a chat without tokens.
    pub(crate) viewer: Option<&'a str>,
}

impl ChannelPage<'_> {
    pub(crate) fn render(&self) -> String {
        let channel = self.channel;
        let user = escape(&channel.username);
        let mut vods = String::new();
        for vod in self.vods {
            let _ = write!(
                vods,
                "<li><a href=\"{media}/{user}/{stream}/vod.m3u8\">{stream}</a> ({seconds} s)</li>",
                media = self.media_url,
                stream = escape(&vod.stream_id),
                seconds = vod.duration_ms / 1000,
            );
        }
        format!(
            "<section class=\"channel\" data-username=\"{user}\" data-chat-url=\"{chat_url}\" data-chat-port=\"{chat_port}\" \
             data-chat-token=\"{token}\" data-viewer=\"{viewer}\">\
             <h1>{user}</h1>\
             <video id=\"player\" controls muted autoplay playsinline \
             data-src=\"/video/{user}/master.m3u8\"></video>\
             <p id=\"player-status\" class=\"status\">{status}</p>\
             <h2 id=\"title\">{title}</h2><p id=\"description\">{description}</p>\
             <p>{directory} {tags}</p>\
             <p>Viewers: <span id=\"viewers\">{viewers}</span></p>\
             <div id=\"chat\"><ol id=\"chat-messages\"></ol>\
             <form id=\"chat-form\"><input id=\"chat-input\" maxlength=\"500\" autocomplete=\"off\" \
             placeholder=\"{placeholder}\"><button>Send</button></form>\
             <p id=\"chat-status\" class=\"status\"></p></div>\
             <h3>Past streams</h3><ul id=\"vods\">{vods}</ul></section>\
             <script src=\"/static/open360/chat.js\"></script>\
             <script src=\"/static/open360/channel.js\"></script>",
            chat_url = escape(self.chat_url),
            chat_port = self.chat_port,
            token = escape(self.chat_token.unwrap_or("")),
            viewer = escape(self.viewer.unwrap_or("")),
            status = match channel.live {
                LiveState::Online => "Live",
                LiveState::Lurking => "Starting…",
                LiveState::Offline => "Offline",
            },
            title = escape(&channel.settings.title),
            description = escape(&channel.settings.description),
            directory = if channel.settings.directory.is_empty() {
                String::new()
            } else {
                format!(
                    "<a href=\"/?directory={}\">{}</a>",
                    urlencode(&channel.settings.directory),
                    escape(&channel.settings.directory)
                )
            },
            tags = tag_links(&channel.settings.tags),
            viewers = channel.viewers,
            placeholder = if self.viewer.is_some() {
                "Say something"
            } else {
                "Log in to chat"
            },
        )
    }
}

/// The owner's dashboard: settings, and the stream key with the RTMP URL.
pub(crate) fn dashboard(channel: &Channel, stream_key: Option<&str>, rtmp_hint: &str) -> String {
    let key = match stream_key {
        Some(key) => format!("<code id=\"stream-key\">{}</code>", escape(key)),
        None => "<em id=\"stream-key\">none yet</em>".to_owned(),
    };
    let settings = &channel.settings;
    format!(
        "<h1>Dashboard</h1>\
         <section><h2>Streaming</h2><p>Server: <code>{rtmp}</code></p><p>Stream key (keep it \
         secret): {key}</p><button id=\"new-key\">New stream key</button></section>\
         <section><h2>Channel</h2><form method=\"post\" action=\"/dashboard\">\
         <label>Title <input name=\"title\" maxlength=\"140\" value=\"{title}\"></label>\
         <label>Description <textarea name=\"description\" maxlength=\"2000\">{description}</textarea></label>\
         <label>Tags (comma-separated) <input name=\"tags\" value=\"{tags}\"></label>\
         <label>Directory <input name=\"directory\" maxlength=\"64\" value=\"{directory}\"></label>\
         <button>Save</button></form></section>\
         <script src=\"/static/open360/dashboard.js\"></script>",
        rtmp = escape(rtmp_hint),
        title = escape(&settings.title),
        description = escape(&settings.description),
        tags = escape(&settings.tags.join(", ")),
        directory = escape(&settings.directory),
    )
}

/// The sign-up or log-in form, with an error above it when there was one.
pub(crate) fn account_form(action: &str, heading: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    format!(
        "<h1>{heading}</h1>{error}<form method=\"post\" action=\"{action}\">\
         <label>Username <input name=\"username\" required minlength=\"3\" maxlength=\"32\" \
         pattern=\"[A-Za-z0-9_\\-]+\" autocomplete=\"username\"></label>\
         <label>Password <input name=\"password\" type=\"password\" required minlength=\"8\" \
         maxlength=\"256\"></label><button>{heading}</button></form>"
    )
}
