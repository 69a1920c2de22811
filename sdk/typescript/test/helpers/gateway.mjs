// A real `vidgate serve` on loopback: started once by test/run.mjs for the whole run (and shared
// through the environment), or by a test file itself when it runs alone.

import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
export const ADMIN_KEY = "sdk-test-admin-key";
export const MODEL = "vidgate/procedural";
export const SMALL = { duration: 1, size: "160x90" };
export const LONG = { duration: 20, size: "1920x1080" };

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Start a gateway with a temp data dir and a known admin key; `stop()` ends it and removes the dir. */
export async function startGateway({ env = {} } = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "vidgate-sdk-"));
  const logPath = join(dataDir, "serve.log");
  const log = openSync(logPath, "a");
  const bin = process.env.VIDGATE_BIN || join(REPO_ROOT, ".venv", "bin", "vidgate");
  const child = spawn(bin, ["serve", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir], {
    env: {
      ...process.env,
      VIDGATE_ADMIN_KEY: ADMIN_KEY,
      VIDGATE_ALLOW_PRIVATE_URLS: "1", // webhooks to the test's receiver on 127.0.0.1
      VIDGATE_LEASE_SECONDS: "3",
      VIDGATE_WEBHOOK_BACKOFF_BASE_SECONDS: "0.2",
      PYTHONUNBUFFERED: "1",
      ...env,
    },
    stdio: ["ignore", log, log],
    detached: true, // its own process group, so stop() ends its workers too
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  // Should this process end without stop() (an uncaught error, process.exit), take the gateway along.
  const orphanGuard = () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.once("exit", orphanGuard);
  const stop = async () => {
    process.removeListener("exit", orphanGuard);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (true) {
    if (child.exitCode !== null) {
      const tail = readFileSync(logPath, "utf8").slice(-3000);
      await stop();
      throw new Error(`vidgate serve exited with ${child.exitCode}:\n${tail}`);
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`vidgate serve did not start:\n${readFileSync(logPath, "utf8").slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { baseUrl, adminKey: ADMIN_KEY, pid: child.pid, logPath, stop };
}

let shared;

/** The run's gateway (from test/run.mjs), or one started for this file and stopped after it. */
export function gateway() {
  if (!shared) {
    const baseUrl = process.env.VIDGATE_SDK_TEST_BASE_URL;
    if (baseUrl) {
      shared = Promise.resolve({ baseUrl, adminKey: process.env.VIDGATE_SDK_TEST_ADMIN_KEY || ADMIN_KEY, stop: async () => {} });
    } else {
      shared = startGateway();
      after(async () => (await shared).stop());
    }
  }
  return shared;
}

/** A fresh API key (its own jobs, its own balance) through the admin API. */
export async function newKey(gw, name = "sdk-test") {
  const res = await fetch(`${gw.baseUrl}/v1/admin/keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${gw.adminKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`creating a key answered ${res.status}: ${await res.text()}`);
  return (await res.json()).key;
}

export function prompt(words = "a lighthouse at dusk") {
  return `${words} ${Math.random().toString(36).slice(2, 10)}`;
}
