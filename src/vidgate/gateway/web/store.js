// What the dashboard remembers in this browser (localStorage): the playground form, recent results and
// the inputs of jobs made here. Never the API key: entries are kept under a fingerprint of it, so
// another key signed in on this browser sees its own.

import { session } from "./api.js";

const RECENT_MAX = 12;
const INPUTS_MAX = 100;

/** A short, one-way fingerprint of the key (FNV-1a), so nothing stored reveals it. */
function owner() {
  let hash = 0x811c9dc5;
  for (const ch of session.key || "") {
    hash ^= ch.codePointAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

const slot = (name) => `vidgate.${owner()}.${name}`;

function read(name, fallback) {
  try {
    const raw = localStorage.getItem(slot(name));
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function write(name, value) {
  try {
    localStorage.setItem(slot(name), JSON.stringify(value));
  } catch {
    // Storage full or refused (private mode): the dashboard works without remembering.
  }
}

export const form = {
  get: () => read("form", null),
  set: (value) => write("form", value),
};

/** Recent results, newest first: ``{id, model, prompt, status, at}``. */
export const recent = {
  list: () => read("recent", []),
  add(video) {
    const rest = recent.list().filter((r) => r.id !== video.id);
    write("recent", [{ id: video.id, model: video.model, prompt: video.prompt || "", status: video.status, at: Date.now() }, ...rest].slice(0, RECENT_MAX));
  },
  update(video) {
    write("recent", recent.list().map((r) => (r.id === video.id ? { ...r, status: video.status } : r)));
  },
  remove(id) {
    write("recent", recent.list().filter((r) => r.id !== id));
  },
};

/** The body a job was created with here, and a small preview of each uploaded input. */
export const jobInputs = {
  get: (id) => read("inputs", {})[id] || null,
  set(id, record) {
    const all = read("inputs", {});
    all[id] = record;
    const ids = Object.keys(all).sort().reverse().slice(0, INPUTS_MAX); // ids sort by time
    write("inputs", Object.fromEntries(ids.map((k) => [k, all[k]])));
  },
};
