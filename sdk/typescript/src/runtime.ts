/** What differs between runtimes (Node 18+, browsers, Deno, Bun), looked up without Node-only imports. */

interface GlobalLike {
  process?: { env?: Record<string, string | undefined> };
  crypto?: Crypto;
  WebSocket?: unknown;
}

const global = globalThis as unknown as GlobalLike;

/** An environment variable on runtimes that have `process.env` (Node, Bun, Deno's Node compatibility). */
export function env(name: string): string | undefined {
  try {
    const value = global.process?.env?.[name];
    return value === "" ? undefined : value;
  } catch {
    return undefined; // Deno without --allow-env throws on access
  }
}

let cryptoPromise: Promise<Crypto> | undefined;

/**
 * WebCrypto: `globalThis.crypto` everywhere but Node 18, where it sits in `node:crypto`. The
 * specifier is a variable so that bundlers for browsers leave it alone.
 */
export function webcrypto(): Promise<Crypto> {
  if (global.crypto?.subtle) return Promise.resolve(global.crypto);
  cryptoPromise ??= (async () => {
    const specifier = "node:crypto";
    const mod = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as { webcrypto?: Crypto };
    if (!mod.webcrypto?.subtle) throw new Error("no WebCrypto in this runtime");
    return mod.webcrypto;
  })();
  return cryptoPromise;
}

export async function randomId(): Promise<string> {
  const crypto = await webcrypto();
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The reason an aborted signal carries, as the error to throw. */
export function abortReason(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  const err = new Error("This operation was aborted");
  err.name = "AbortError";
  return err;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A controller that aborts when any of `signals` does; `dispose` detaches it from them. */
export function linkedController(...signals: Array<AbortSignal | undefined>): {
  controller: AbortController;
  dispose: () => void;
} {
  const controller = new AbortController();
  const detach: Array<() => void> = [];
  for (const signal of signals) {
    if (!signal) continue;
    if (signal.aborted) {
      controller.abort(abortReason(signal));
      break;
    }
    const onAbort = () => controller.abort(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    detach.push(() => signal.removeEventListener("abort", onAbort));
  }
  return { controller, dispose: () => detach.forEach((f) => f()) };
}

export function globalWebSocket(): unknown {
  return global.WebSocket;
}
