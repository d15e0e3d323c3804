// The channel page: plays the live stream (HLS, natively), follows the channel's state and
// viewer count, and runs the chat.
"use strict";

(function () {
  const section = document.querySelector("section.channel");
  const username = section.dataset.username;
  const player = document.getElementById("player");
  const status = document.getElementById("player-status");
  const viewers = document.getElementById("viewers");
  const canPlay = player.canPlayType("application/vnd.apple.mpegurl") !== "";

  function follow(state) {
    viewers.textContent = String(state.viewers);
    if (state.streamStatus === "ONLINE") {
      if (!canPlay) {
        status.textContent = `This browser cannot play HLS; open ${location.origin}${player.dataset.src} in a player such as VLC.`;
        return;
      }
      status.textContent = "Live";
      if (!player.getAttribute("src")) {
        player.src = player.dataset.src;
        player.play().catch(() => { status.textContent = "Live: press play"; });
      }
    } else {
      status.textContent = state.streamStatus === "LURKING" ? "Starting…" : "Offline";
      if (player.getAttribute("src") && state.streamStatus === "OFFLINE") {
        player.removeAttribute("src");
        player.load();
      }
    }
  }

  async function poll() {
    try {
      const response = await fetch(`/channel/${encodeURIComponent(username)}/stats`, { cache: "no-store" });
      if (response.ok) follow(await response.json());
    } catch (_) { /* the next poll tries again */ }
  }
  poll();
  setInterval(poll, 3000);

  // The chat: the server escapes HTML in messages; decode it once and show it as text.
  const list = document.getElementById("chat-messages");
  const chatStatus = document.getElementById("chat-status");
  const decoder = document.createElement("textarea");
  const viewer = section.dataset.viewer;
  const chat = open360Chat({
    url: section.dataset.chatUrl,
    port: section.dataset.chatPort,
    channel: username,
    token: section.dataset.chatToken,
    user: viewer,
    onStatus: (text) => { chatStatus.textContent = text; },
    onMessage: (message) => {
      const item = document.createElement("li");
      const name = document.createElement("b");
      name.textContent = message.user || "anonymous";
      if (/^#[0-9a-fA-F]{6}$/.test(message.colour || "")) name.style.color = message.colour;
      decoder.innerHTML = String(message.message || "");
      const text = document.createElement("span");
      text.textContent = " " + decoder.value;
      item.append(name, text);
      list.append(item);
      list.scrollTop = list.scrollHeight;
    },
  });
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  if (!viewer) input.disabled = true;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && chat.send(text)) input.value = "";
  });
})();
