// The line protocol every driver here speaks with the Rust harness (tests/src/node.rs):
// one JSON document per line on stdout for each thing that happens, one JSON command per line
// on stdin, and free text on stderr. Binary payloads travel as {"$binary": "<base64>"}.
import { createInterface } from "node:readline";

export function emit(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

// Replaces binary values (Buffer, ArrayBuffer, typed arrays) by {"$binary": base64}, deeply.
export function encodeBinary(value) {
  if (Buffer.isBuffer(value)) return { $binary: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) {
    return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(encodeBinary);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encodeBinary(v)]));
  }
  return value;
}

// The inverse of encodeBinary: {"$binary": base64} becomes a Buffer, deeply.
export function decodeBinary(value) {
  if (Array.isArray(value)) return value.map(decodeBinary);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$binary") return Buffer.from(value.$binary, "base64");
    return Object.fromEntries(keys.map((k) => [k, decodeBinary(value[k])]));
  }
  return value;
}

// Calls `handle` with each command read from stdin, in order; `onEnd` when stdin closes.
// A command that is not JSON, or whose handler throws, is reported as {"type":"command-error"}.
export function onCommands(handle, onEnd) {
  const input = createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  input.on("line", (line) => {
    if (line.trim() === "") return;
    chain = chain.then(async () => {
      let command;
      try {
        command = JSON.parse(line);
      } catch (error) {
        emit({ type: "command-error", error: `not JSON: ${error.message}`, line });
        return;
      }
      try {
        await handle(command);
      } catch (error) {
        emit({ type: "command-error", id: command.id ?? null, error: String(error?.message ?? error) });
      }
    });
  });
  input.on("close", () => {
    chain = chain.then(() => onEnd());
  });
}

// The first command-line argument, parsed as JSON (the driver's configuration).
export function config() {
  const raw = process.argv[2];
  if (raw === undefined) return {};
  return JSON.parse(raw);
}
