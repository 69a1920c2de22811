/**
 * Node helpers (`@vidgate/sdk/node`): save an output to a file, resumably, checked against the
 * sha256 the gateway recorded. Everything from the main entry is re-exported here.
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, stat, truncate, unlink } from "node:fs/promises";

import type { Client } from "./client.js";
import { APIConnectionError, ChecksumMismatchError, NotReadyError, VidgateError } from "./errors.js";
import { backoffMs, type RequestOptions } from "./http.js";
import { abortReason, sleep } from "./runtime.js";

export * from "./index.js";

export interface DownloadToFileOptions extends RequestOptions {
  /** Which output (0 by default). */
  index?: number;
  /** Called as bytes arrive, with the bytes on disk so far and the output's size. */
  onProgress?: (progress: { bytes: number; total: number }) => void;
  /** Connection drops survived within one call, each resuming where the bytes stopped (default 3). */
  maxResumes?: number;
}

export interface DownloadedFile {
  path: string;
  bytes: number;
  sha256: string;
  /** Bytes that were already in `<path>.part` from an earlier, interrupted download. */
  resumedFrom: number;
}

/**
 * Save an output to `path`. Bytes go to `<path>.part` first; an interrupted download resumes from
 * there with an HTTP Range request (guarded by `If-Range` on the sha256, so a changed file starts
 * over), both within this call and in a later one. The finished file is hashed and must match the
 * job's `asset.sha256` (which is also the content's ETag) before it is moved into place.
 */
export async function downloadToFile(
  client: Client,
  videoId: string,
  path: string,
  options: DownloadToFileOptions = {},
): Promise<DownloadedFile> {
  const index = options.index ?? 0;
  const { signal } = options;
  const video = await client.videos.get(videoId, options);
  const asset = video.outputs?.[index]?.asset;
  if (video.status !== "completed" || !asset) {
    throw new NotReadyError(409, {
      code: "not_ready",
      message: `video ${videoId} is ${video.status}; output ${index} has nothing to download yet`,
    });
  }
  const { sha256: expected, bytes: total } = asset;
  const part = `${path}.part`;
  let have = await sizeOf(part);
  if (have > total) {
    await truncate(part, 0);
    have = 0;
  }
  const resumedFrom = have;
  const maxResumes = options.maxResumes ?? 3;
  let resumes = 0;
  while (have < total) {
    const response = await client.videos.contentResponse(videoId, {
      ...options,
      index,
      offset: have,
      ifRange: expected,
    });
    if (response.status !== 206) have = 0; // the whole file came back: start the part file over
    const file = await open(part, have > 0 ? "a" : "w");
    if (!response.body) throw new VidgateError("the content response has no body");
    const reader = response.body.getReader();
    let broke: unknown;
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        await file.write(value);
        have += value.length;
        options.onProgress?.({ bytes: have, total });
      }
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      broke = err;
    } finally {
      await file.close();
      reader.releaseLock();
    }
    if (have >= total) break;
    if (resumes++ >= maxResumes) {
      throw new APIConnectionError(
        `download of ${videoId} stopped after ${have} of ${total} bytes; ${part} keeps them and the next call resumes there`,
        { cause: broke },
      );
    }
    await sleep(backoffMs(resumes), signal);
  }
  const actual = await hashFile(part);
  if (actual !== expected) {
    await unlink(part).catch(() => undefined);
    throw new ChecksumMismatchError(
      expected,
      actual,
      `${path}: the downloaded bytes hash to ${actual}, not the stored sha256 ${expected}; the partial file was removed`,
    );
  }
  await rename(part, path);
  return { path, bytes: total, sha256: actual, resumedFrom };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

