#!/usr/bin/env node
// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with type declarations, and checks
// that the main entry type-checks without Node's types (so it needs nothing Node-only).

import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

function run(project) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [tsc, "-p", project], { cwd: root, stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolvePromise() : reject(new Error(`tsc -p ${project} exited ${code}`))));
  });
}

rmSync(join(root, "dist"), { recursive: true, force: true });
try {
  await Promise.all([run("tsconfig.json"), run("tsconfig.cjs.json"), run("tsconfig.web.json")]);
} catch (err) {
  console.error(`build: ${err.message}`);
  process.exit(1);
}
mkdirSync(join(root, "dist", "cjs"), { recursive: true });
writeFileSync(join(root, "dist", "cjs", "package.json"), '{\n  "type": "commonjs"\n}\n');
console.log("built dist/esm and dist/cjs");
