// Drives headless Chromium through playwright-core for a Rust test.
// Argument: {"executablePath": "/usr/bin/chromium", "args": [extra Chromium flags]}
// Every command carries an "id" and gets exactly one reply {"type":"reply","id","ok",("value"|"error")}.
// Commands: {"op":"newPage"} → page number; {"op":"goto","page","url"} → HTTP status;
//   {"op":"evaluate","page","expression"} → the JSON value of the expression (promises awaited);
//   {"op":"waitFor","page","expression","timeoutMs"} → the first truthy value of the expression;
//   {"op":"screenshot","page","path"}; {"op":"close"}.
// Also out: {"type":"ready"} once Chromium runs, {"type":"console","page","level","text"},
//   {"type":"pageerror","page","message"}.
import { chromium } from "playwright-core";
import { config, emit, onCommands } from "./lines.mjs";

const settings = config();
// The flags this machine kind needs (DEPENDENCIES.md): no sandbox as root, no GPU, no background
// network traffic (the network is closed), and fake camera/microphone with auto-accepted prompts.
const flags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required",
  ...(settings.args ?? []),
];

// Playwright gives each launch a fresh, temporary profile directory.
const browser = await chromium.launch({
  executablePath: settings.executablePath ?? "/usr/bin/chromium",
  headless: true,
  args: flags,
});
const pages = [];
emit({ type: "ready", version: browser.version() });

function page(number) {
  const found = pages[number];
  if (found === undefined) throw new Error(`no page ${number}`);
  return found;
}

// The page itself, or (with `frame`) its first frame whose URL contains that text, waiting
// for such a frame to navigate in if there is none yet.
async function target(command) {
  const found = page(command.page);
  if (command.frame === undefined) return found;
  const deadline = Date.now() + (command.timeoutMs ?? 30000);
  for (;;) {
    const frame = found.frames().find((f) => f.url().includes(command.frame));
    if (frame !== undefined) return frame;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no frame whose URL contains ${command.frame}`);
    await found.waitForEvent("framenavigated", { timeout: left });
  }
}

async function run(command) {
  switch (command.op) {
    case "newPage": {
      // One browser context per page: separate cookies and storage, like two people.
      const context = await browser.newContext({ permissions: ["camera", "microphone"] });
      const created = await context.newPage();
      const number = pages.length;
      pages.push(created);
      created.on("console", (message) =>
        emit({ type: "console", page: number, level: message.type(), text: message.text() }),
      );
      created.on("pageerror", (error) => emit({ type: "pageerror", page: number, message: error.message }));
      return number;
    }
    case "goto": {
      const response = await page(command.page).goto(command.url, { timeout: command.timeoutMs ?? 30000 });
      return response === null ? null : response.status();
    }
    case "evaluate":
      return await (await target(command)).evaluate(command.expression);
    case "waitFor": {
      const handle = await (await target(command)).waitForFunction(command.expression, null, {
        timeout: command.timeoutMs ?? 30000,
        polling: "raf",
      });
      return await handle.jsonValue();
    }
    case "screenshot":
      await page(command.page).screenshot({ path: command.path, fullPage: true });
      return command.path;
    case "close":
      await browser.close();
      return null;
    default:
      throw new Error(`unknown op: ${command.op}`);
  }
}

onCommands(
  async (command) => {
    try {
      const value = await run(command);
      emit({ type: "reply", id: command.id, ok: true, value: value === undefined ? null : value });
    } catch (error) {
      emit({ type: "reply", id: command.id, ok: false, error: String(error?.message ?? error) });
    }
  },
  async () => {
    await browser.close().catch(() => {});
    process.exit(0);
  },
);
