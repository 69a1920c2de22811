// The CommonJS declarations, resolved through the "require" condition.

import sdk = require("@vidgate/sdk");
import node = require("@vidgate/sdk/node");

export async function example(): Promise<string> {
  const client = new sdk.Client({ apiKey: "vg_…" });
  const video: sdk.Video = await client.videos.createAndWait({ model: "vidgate/procedural", prompt: "a fox" });
  const saved = await node.downloadToFile(client, video.id, "fox.mp4");
  return saved.sha256;
}
