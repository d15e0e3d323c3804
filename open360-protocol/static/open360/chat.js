// Open360's chat in the browser: a small Socket.IO client (Engine.IO 4 over a WebSocket, no
// polling), written for this site. open360Chat({url, port, channel, token, user, onMessage,
// onStatus})
// connects, reconnects with backoff, and returns {send(text)}.
"use strict";

function open360Chat(options) {
  const base = (options.url || `${location.protocol}//${location.hostname}:${options.port || 4002}`)
    .replace(/^http/, "ws").replace(/\/$/, "");
  let socket = null;
  let connected = false;
  let backoff = 500;

  function address() {
    const query = new URLSearchParams({ EIO: "4", transport: "websocket", channel: options.channel });
    if (options.user && !options.token) query.set("user", options.user);
    return `${base}/socket.io/?${query}`;
  }

  function connect() {
    socket = new WebSocket(address());
    socket.onmessage = (event) => receive(String(event.data));
    socket.onclose = () => {
      connected = false;
      options.onStatus("disconnected; reconnecting…");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  function receive(packet) {
    switch (packet[0]) {
      case "0": // Engine.IO open: join the default namespace, with the chat token if any.
        socket.send("40" + (options.token ? JSON.stringify({ token: options.token }) : ""));
        return;
      case "2": // ping
        socket.send("3");
        return;
      case "4":
        break;
      default:
        return;
    }
    const body = packet.slice(2);
    switch (packet[1]) {
      case "0":
        connected = true;
        backoff = 500;
        options.onStatus("");
        return;
      case "4": {
        let reason = "refused";
        try { reason = JSON.parse(body).message || reason; } catch (_) { /* keep the default */ }
        options.onStatus(`chat refused: ${reason}`);
        return;
      }
      case "2": {
        let event;
        try { event = JSON.parse(body); } catch (_) { return; }
        if (Array.isArray(event) && event[0] === "chat-message") options.onMessage(event[1] || {});
        if (Array.isArray(event) && event[0] === "chat-error") options.onStatus(String((event[1] || {}).error || event[1]));
        return;
      }
      default:
    }
  }

  connect();
  return {
    send(text) {
      if (!connected) return false;
      socket.send("42" + JSON.stringify(["chat-message", { message: text }]));
      return true;
    },
  };
}
