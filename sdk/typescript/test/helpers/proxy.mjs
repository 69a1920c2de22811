// A tiny HTTP proxy in front of the gateway that misbehaves on request: answer with a status once,
// drop the connection before or after forwarding, cut a body short, or never answer. It records
// every request it sees. With `noLongPolls` it answers as the hosted reference does: `wait` is
// dropped from the query, `If-None-Match` from the request and `ETag` from the answer.

import { createServer, request as forward } from "node:http";

/**
 * Cut once `until()` says the client has the bytes sent so far (polled, for at most 10 s), or after
 * 20 ms without it. A client that has not yet read bytes when its connection drops loses them, so a
 * test about resuming from them waits for them to be kept.
 */
function cutWhen(until, cut) {
  if (!until) {
    setTimeout(cut, 20);
    return;
  }
  const deadline = Date.now() + 10_000;
  const check = () => (until() || Date.now() > deadline ? cut() : setTimeout(check, 10));
  check();
}

export async function startProxy(targetBaseUrl, { noLongPolls = false } = {}) {
  const target = new URL(targetBaseUrl);
  const faults = [];
  const requests = [];
  const sockets = new Set();

  const server = createServer((req, res) => {
    const seen = { method: req.method, url: req.url, headers: { ...req.headers }, at: Date.now() };
    requests.push(seen);
    const at = faults.findIndex((f) => f.method === req.method && f.path.test(req.url));
    const fault = at >= 0 ? faults.splice(at, 1)[0] : undefined;
    seen.fault = fault?.kind;
    if (fault?.kind === "status") {
      req.resume();
      res.writeHead(fault.status, {
        "Content-Type": "application/json",
        "X-Request-Id": "req_proxy",
        ...fault.headers,
      });
      res.end(JSON.stringify({ error: { type: "api_error", code: fault.code, message: "injected by the test proxy", param: null, request_id: "req_proxy" } }));
      return;
    }
    if (fault?.kind === "drop") {
      req.resume();
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "hang") {
      req.resume();
      return; // the socket is destroyed when the proxy closes
    }
    let path = req.url;
    const headers = { ...req.headers };
    if (noLongPolls) {
      const url = new URL(req.url, "http://proxy");
      url.searchParams.delete("wait");
      path = url.pathname + url.search;
      delete headers["if-none-match"];
    }
    const upstream = forward(
      { hostname: target.hostname, port: target.port, method: req.method, path, headers },
      (up) => {
        seen.status = up.statusCode;
        if (fault?.kind === "lose-response") {
          up.resume();
          up.on("end", () => req.socket.destroy()); // the gateway acted; the client never hears of it
          return;
        }
        const answer = { ...up.headers };
        if (noLongPolls) delete answer.etag;
        res.writeHead(up.statusCode, answer);
        if (fault?.kind === "cut") {
          let sent = 0;
          up.on("data", (chunk) => {
            if (sent >= fault.afterBytes) return;
            const piece = chunk.subarray(0, fault.afterBytes - sent);
            sent += piece.length;
            res.write(piece);
            if (sent >= fault.afterBytes) cutWhen(fault.until, () => req.socket.destroy());
          });
          return;
        }
        up.pipe(res);
      },
    );
    upstream.on("error", () => req.socket.destroy());
    req.pipe(upstream);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    /** Queue a fault for the next request matching method and path (a RegExp). */
    fault(method, path, fault) {
      faults.push({ method, path, ...fault });
    },
    clear() {
      faults.length = 0;
      requests.length = 0;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}
