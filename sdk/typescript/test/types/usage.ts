// Compiled with `tsc --noEmit` (module NodeNext) by `npm test`: the published declarations, resolved
// through package.json "exports", type the README's examples as a user would write them.

import {
  APIError,
  Client,
  NotFoundError,
  webhooks,
  type StreamEvent,
  type Video,
  type VideoGenerationRequest,
  type VideoStatus,
} from "@vidgate/sdk";
import { downloadToFile, type DownloadedFile } from "@vidgate/sdk/node";

export async function example(): Promise<void> {
  const client = new Client({ apiKey: "vg_…", baseUrl: "http://127.0.0.1:8080" });
  const request: VideoGenerationRequest = { model: "vidgate/procedural", prompt: "A calm ocean at dusk", duration: 1 };
  const job: Video = await client.generateVideo(request);
  const jobs = await client.listVideos({ status: "queued,completed", limit: 2 });
  const first: Video | undefined = jobs.data[0];
  const status = await client.getVideo(job.id);
  const websocketUrl: string = client.videos.websocketUrl(job.id, { intervalMs: 1500 });
  if (status.status === "completed" && status.download_url) console.log(status.download_url, websocketUrl, first);

  const done = await client.videos.createAndWait(request, {
    signal: AbortSignal.timeout(60_000),
    onProgress: (v) => console.log(v.status satisfies VideoStatus, v.progress),
  });
  const sha: string | undefined = done.asset?.sha256;
  for await (const event of client.videos.stream(done.id)) {
    const e: StreamEvent = event;
    if (e.type === "job.updated") console.log(e.event, e.id, e.data.progress);
  }
  const stream: ReadableStream<Uint8Array> = await client.videos.download(done.id);
  const saved: DownloadedFile = await downloadToFile(client, done.id, "out.mp4", { onProgress: (p) => p.bytes });
  console.log(sha, stream, saved.sha256);

  try {
    await client.getVideo("vid_missing");
  } catch (err) {
    if (err instanceof NotFoundError) console.log(err.status, err.code, err.param, err.requestId);
    if (err instanceof APIError) console.log(err.type, err.retryAfter);
  }
  const event = await webhooks.verify("{}", { "webhook-id": "x" }, "whsec_…");
  console.log(event.type, event.data.status);
}
