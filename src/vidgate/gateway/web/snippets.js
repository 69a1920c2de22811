// The same request as code: curl, Python (the vidgate SDK) and TypeScript (@vidgate/sdk). The key is
// never written out: each reads VIDGATE_API_KEY from the environment.

const pyValue = (v, indent) => {
  if (v === null) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (Array.isArray(v)) return `[${v.map((x) => pyValue(x, indent)).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyValue(x, indent)}`).join(", ")}}`;
  }
  return JSON.stringify(v);
};

const shellQuote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

export function curl(base, body) {
  return [
    `curl -sS ${base}/v1/videos \\`,
    `  -H "Authorization: Bearer $VIDGATE_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join("\n");
}

export function python(base, body) {
  const args = Object.entries(body).map(([k, v]) => `    ${k}=${pyValue(v)},`);
  return [
    "from vidgate.client import Client",
    "",
    `client = Client(base_url=${JSON.stringify(base)})  # the key from VIDGATE_API_KEY`,
    "video = client.videos.create_and_wait(",
    ...args,
    ")",
    "print(video.id, video.status)",
  ].join("\n");
}

export function typescript(base, body) {
  const json = JSON.stringify(body, null, 2).replace(/\n/g, "\n");
  return [
    'import { Client } from "@vidgate/sdk";',
    "",
    `const client = new Client({ baseUrl: ${JSON.stringify(base)} }); // the key from VIDGATE_API_KEY`,
    `const video = await client.videos.createAndWait(${json});`,
    "console.log(video.id, video.status);",
  ].join("\n");
}

export const SNIPPETS = [
  ["curl", "curl", curl],
  ["python", "Python", python],
  ["typescript", "TypeScript", typescript],
];
