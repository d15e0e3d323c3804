// Drives the `ws` WebSocket client for a Rust test.
// Argument: {"url": "...", "headers": {…}, "protocols": […]}
// Out: {"type":"open"}, {"type":"message","text"} or {"type":"message","binary":<base64>},
//      {"type":"close","code","reason"}, {"type":"http-error","status","body"}, {"type":"error","message"}.
// In:  {"send":<text>}, {"sendBinary":<base64>}, {"close":{"code","reason"}}.
import WebSocket from "ws";
import { config, emit, onCommands } from "./lines.mjs";

const { url, headers = {}, protocols = [] } = config();
const socket = new WebSocket(url, protocols, { headers });

socket.on("open", () => emit({ type: "open" }));
socket.on("message", (data, isBinary) => {
  if (isBinary) emit({ type: "message", binary: Buffer.from(data).toString("base64") });
  else emit({ type: "message", text: data.toString("utf8") });
});
socket.on("close", (code, reason) => emit({ type: "close", code, reason: reason.toString("utf8") }));
socket.on("error", (error) => emit({ type: "error", message: error.message }));
socket.on("unexpected-response", (_request, response) => {
  let body = "";
  response.on("data", (chunk) => (body += chunk));
  response.on("end", () => emit({ type: "http-error", status: response.statusCode, body }));
});

onCommands(
  async (command) => {
    if (command.send !== undefined) socket.send(command.send);
    else if (command.sendBinary !== undefined) socket.send(Buffer.from(command.sendBinary, "base64"));
    else if (command.close !== undefined) socket.close(command.close.code ?? 1000, command.close.reason ?? "");
    else throw new Error(`unknown command: ${JSON.stringify(command)}`);
  },
  () => {
    socket.terminate();
    process.exit(0);
  },
);
