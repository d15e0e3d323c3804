// The dashboard: asks for a new stream key and shows it (to its owner only).
"use strict";

document.getElementById("new-key").addEventListener("click", async () => {
  const shown = document.getElementById("stream-key");
  const response = await fetch("/auth/nsk", { method: "POST" });
  const body = await response.json();
  shown.textContent = response.ok ? body.streamKey : `failed: ${body.error}`;
});
