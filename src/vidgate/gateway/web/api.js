// The gateway's HTTP API and live job updates, as the dashboard uses them.

const KEY = "vidgate.apiKey";
export const TERMINAL = new Set(["completed", "failed", "cancelled", "expired"]);

// The key lives in this tab's sessionStorage only: never in the URL, never in localStorage.
export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

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
    throw new ApiError(0, { code: "network_error", message: `Cannot reach the gateway (${err.message})` });
  }
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
