// Drives the official socket.io-client (v4) for a Rust test.
// Argument: {"url": "...", "options": {socket.io-client options: extraHeaders, auth, query, transports…}}
// Out: {"type":"connect","id"}, {"type":"connect_error","message","data"}, {"type":"disconnect","reason"},
//      {"type":"event","event":<name>,"args":[…]}, {"type":"ack","id","args":[…]}.
// In:  {"emit":<name>,"args":[…]} (add "id" to ask for an acknowledgement), {"disconnect":true}.
import { io } from "socket.io-client";
import { config, decodeBinary, emit, encodeBinary, onCommands } from "./lines.mjs";

const { url, options = {} } = config();
const socket = io(url, { forceNew: true, reconnection: false, ...options });

socket.on("connect", () => emit({ type: "connect", id: socket.id }));
socket.on("connect_error", (error) =>
  emit({ type: "connect_error", message: error.message, data: encodeBinary(error.data ?? null) }),
);
socket.on("disconnect", (reason) => emit({ type: "disconnect", reason }));
socket.onAny((event, ...args) => emit({ type: "event", event, args: encodeBinary(args) }));

onCommands(
  async (command) => {
    if (command.emit !== undefined) {
      const args = decodeBinary(command.args ?? []);
      if (command.id !== undefined) {
        const reply = await socket.timeout(command.timeoutMs ?? 10000).emitWithAck(command.emit, ...args);
        emit({ type: "ack", id: command.id, args: encodeBinary([reply]) });
      } else {
        socket.emit(command.emit, ...args);
      }
    } else if (command.disconnect) {
      socket.disconnect();
    } else {
      throw new Error(`unknown command: ${JSON.stringify(command)}`);
    }
  },
  () => {
    socket.disconnect();
    process.exit(0);
  },
);
