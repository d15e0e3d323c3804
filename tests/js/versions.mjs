// Prints the versions of Node and of the installed peer packages as one JSON line, then exits.
import { readFileSync } from "node:fs";
import { emit } from "./lines.mjs";

const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;

emit({
  type: "versions",
  node: process.versions.node,
  "socket.io-client": version("socket.io-client"),
  ws: version("ws"),
  "playwright-core": version("playwright-core"),
});
