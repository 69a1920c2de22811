// The gateway's HTTP API and live job updates, as the dashboard uses them.

const KEY = "vidgate.apiKey";
const ROLE = "vidgate.role";
export const TERMINAL = new Set(["completed", "failed", "cancelled", "expired"]);

// The key lives in this tab's sessionStorage only: never in the URL, never in localStorage. The role
// ("admin" for the gateway's admin key, else "key") only picks the pages shown; the API decides.
export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  get admin() {
    return sessionStorage.getItem(ROLE) === "admin";
  },
  set(key, role = "key") {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ROLE, role);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ROLE);
  },
};

/**
 * Which kind of key ``key`` is: "key" (an API key), "admin" (the admin key), or the API's refusal.
 * API keys start ``vg_``, so each kind is asked first where it belongs: one request, no refusal logged.
 */
export async function roleOf(key) {
  const probes = [["key", "/v1/usage?days=1"], ["admin", "/v1/admin/accounts"]];
  if (!key.startsWith("vg_")) probes.reverse();
  let first = null;
  for (const [role, path] of probes) {
    try {
      await api(path, { key });
      return role;
    } catch (err) {
      // The admin key is refused (403) by an API key's routes and an API key by the admin routes.
      if (!(err instanceof ApiError) || err.status !== 403) throw first || err;
      first = first || err;
    }
  }
  throw first;
}

/** An error the API answered with: its envelope's message, code, param and request id. */
export class ApiError extends Error {
  constructor(status, error, requestId) {
    super(error.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || null;
    this.type = error.type || null;
    this.param = error.param || null;
    this.requestId = error.request_id || requestId || null;
  }
}

export async function api(path, { method = "GET", body, key = session.key, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw networkError(err);
  }
  return answer(res);
}

/** A request that never got an answer: the network, not the API. */
function networkError(err) {
  return new ApiError(0, {
    code: "network_error",
    message: `Network error: the gateway could not be reached (${err.message}). Check the connection and try again.`,
  });
}

async function answer(res) {
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const error = data && data.error && typeof data.error === "object"
      ? data.error
      : { message: (text || res.statusText || "").slice(0, 300) || `HTTP ${res.status}` };
    throw new ApiError(res.status, error, res.headers.get("x-request-id"));
  }
  return data;
}

/** Upload one file (``POST /v1/files``, multipart): the stored file's id, kind and size. */
export async function upload(file, purpose = "input_reference") {
  const form = new FormData();
  form.append("purpose", purpose);
  form.append("file", file, file.name);
  let res;
  try {
    res = await fetch("/v1/files", {
      method: "POST",
      headers: { Accept: "application/json", Authorization: `Bearer ${session.key}` },
      body: form,
      cache: "no-store",
    });
  } catch (err) {
    throw networkError(err);
  }
  return answer(res);
}

/** A signed link to one output of a completed job (works without the key, for ``<video>`` and downloads). */
export async function signedLink(id, disposition, index = 0) {
  const link = await api(`/v1/videos/${encodeURIComponent(id)}/download_url`, {
    method: "POST",
    body: { disposition, index },
  });
  return link.url;
}

/**
 * Follow one job until it ends: the websocket first (authenticated by the ``bearer.KEY`` subprotocol),
 * polling ``GET /v1/videos/{id}`` at ``poll_after_seconds`` if the socket cannot open or drops early.
 * ``on.update(video, message)`` gets every snapshot and update; ``on.mode(mode)`` says how it is followed.
 */
export function watchJob(id, on) {
  let stopped = false;
  let ended = false;
  let socket = null;
  let timer = null;
  let sawTerminal = false;

  const end = () => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    on.mode?.("ended");
    on.end?.();
  };

  const poll = (delayMs) => {
    if (stopped || ended) return;
    on.mode?.("poll");
    timer = setTimeout(async () => {
      try {
        const video = await api(`/v1/videos/${encodeURIComponent(id)}`);
        if (stopped) return;
        on.update(video, { type: "poll" });
        if (TERMINAL.has(video.status)) return end();
        poll(Math.max(1, video.poll_after_seconds || 2) * 1000);
      } catch (err) {
        if (stopped) return;
        if (err.status === 404) {
          on.deleted?.();
          return end();
        }
        on.error?.(err);
        if (err.status === 401) return end();
        poll(5000);
      }
    }, delayMs);
  };

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/v1/async/video/${encodeURIComponent(id)}/ws`;
    try {
      socket = new WebSocket(url, ["vidgate.v1", `bearer.${session.key}`]);
    } catch {
      poll(0); // a key a subprotocol cannot carry, or no WebSocket at all
      return;
    }
    socket.onopen = () => on.mode?.("live");
    socket.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "job.snapshot" || msg.type === "job.updated") {
        on.update(msg.data, msg);
        if (TERMINAL.has(msg.data.status)) sawTerminal = true;
      } else if (msg.type === "job.deleted") {
        sawTerminal = true;
        on.deleted?.();
      }
    };
    socket.onclose = () => {
      socket = null;
      if (stopped) return;
      if (sawTerminal) return end();
      poll(0); // refused, closed early or dropped: carry on by polling
    };
  };

  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close(1000);
    },
  };
}
