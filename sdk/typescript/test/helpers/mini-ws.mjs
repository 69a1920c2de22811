// A small WebSocket client (RFC 6455, text frames, no extensions) with the browser's interface,
// so the SDK's websocket path is tested on Node 18 and 20, which have no global WebSocket,
// without a dependency. Test use only.

import { randomBytes, createHash } from "node:crypto";
import { request } from "node:http";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export class MiniWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /** Every socket opened, with the URL and subprotocols offered (for assertions). */
  static opened = [];

  constructor(url, protocols) {
    const offered = protocols === undefined ? [] : [].concat(protocols);
    MiniWebSocket.opened.push({ url, protocols: offered });
    this.url = url;
    this.readyState = MiniWebSocket.CONNECTING;
    this.protocol = "";
    this.listeners = new Map();
    this.buffer = Buffer.alloc(0);
    this.fragments = [];
    const target = new URL(url.replace(/^ws/, "http"));
    const key = randomBytes(16).toString("base64");
    const headers = {
      Connection: "Upgrade",
      Upgrade: "websocket",
      "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Key": key,
    };
    if (offered.length) headers["Sec-WebSocket-Protocol"] = offered.join(", ");
    const req = request({ hostname: target.hostname, port: target.port, path: target.pathname + target.search, headers });
    req.on("upgrade", (res, socket, head) => {
      const accept = createHash("sha1").update(key + GUID).digest("base64");
      if (res.headers["sec-websocket-accept"] !== accept) {
        socket.destroy();
        this.fail();
        return;
      }
      this.socket = socket;
      this.protocol = res.headers["sec-websocket-protocol"] ?? "";
      this.readyState = MiniWebSocket.OPEN;
      socket.on("data", (chunk) => this.receive(chunk));
      socket.on("close", () => this.closed(1006, ""));
      socket.on("error", () => undefined);
      this.emit("open", {});
      if (head.length) this.receive(head);
    });
    req.on("response", (res) => {
      res.resume();
      this.fail();
    });
    req.on("error", () => this.fail());
    req.end();
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
  }

  removeEventListener(type, fn) {
    this.listeners.get(type)?.delete(fn);
  }

  emit(type, event) {
    for (const fn of [...(this.listeners.get(type) ?? [])]) fn(event);
  }

  send(text) {
    if (this.readyState !== MiniWebSocket.OPEN) throw new Error("not open");
    this.write(0x1, Buffer.from(String(text)));
  }

  close(code = 1000, reason = "") {
    if (this.readyState >= MiniWebSocket.CLOSING) return;
    if (this.readyState === MiniWebSocket.CONNECTING) {
      this.fail();
      return;
    }
    this.readyState = MiniWebSocket.CLOSING;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    this.write(0x8, payload);
    setTimeout(() => this.socket?.destroy(), 1000).unref();
  }

  fail() {
    if (this.readyState === MiniWebSocket.CLOSED) return;
    this.emit("error", {});
    this.closed(1006, "");
  }

  closed(code, reason) {
    if (this.readyState === MiniWebSocket.CLOSED) return;
    this.readyState = MiniWebSocket.CLOSED;
    this.socket?.destroy();
    this.emit("close", { code, reason, wasClean: code !== 1006 });
  }

  write(opcode, payload) {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    if (len < 126) head[1] = 0x80 | len;
    else if (len < 65536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  receive(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 2) {
      const fin = (this.buffer[0] & 0x80) !== 0;
      const opcode = this.buffer[0] & 0x0f;
      let len = this.buffer[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buffer.length < 4) return;
        len = this.buffer.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buffer.length < 10) return;
        len = Number(this.buffer.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buffer.length < at + len) return;
      const payload = this.buffer.subarray(at, at + len);
      this.buffer = this.buffer.subarray(at + len);
      if (opcode === 0x9) this.write(0xa, payload);
      else if (opcode === 0x8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        const reason = payload.subarray(2).toString("utf8");
        if (this.readyState === MiniWebSocket.OPEN) {
          const echo = Buffer.alloc(2);
          echo.writeUInt16BE(code === 1005 ? 1000 : code, 0);
          this.write(0x8, echo);
        }
        this.closed(code, reason);
        return;
      } else if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        this.fragments.push(Buffer.from(payload));
        if (fin) {
          const data = Buffer.concat(this.fragments).toString("utf8");
          this.fragments = [];
          this.emit("message", { data });
        }
      }
    }
  }
}
