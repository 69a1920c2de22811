#!/usr/bin/env node
// Generates src/types.gen.ts from the gateway's own OpenAPI document, so the SDK's types and
// routes cannot drift from the server's.
//
//   node scripts/gen-types.mjs                     # from the gateway in ../../ (its .venv)
//   node scripts/gen-types.mjs --from openapi.json # from a saved document
//   node scripts/gen-types.mjs --from http://127.0.0.1:8080/openapi.json
//   node scripts/gen-types.mjs --check             # exit 1 when src/types.gen.ts is out of date
//
// Rules: a property is required when the schema lists it as required, or when the schema is a
// response (it does not forbid unknown fields) and the property has a default, because the
// gateway always writes defaults in responses. Request schemas (additionalProperties: false)
// keep defaulted properties optional.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO_ROOT = resolve(PACKAGE_DIR, "../..");
const OUT = join(PACKAGE_DIR, "src", "types.gen.ts");
const PYTHON_SNIPPET =
  "import json, sys\n" +
  "from vidgate.gateway.api.routes import document\n" +
  "sys.stdout.write(json.dumps(document()))\n";

async function loadDocument(from) {
  if (from && /^https?:\/\//.test(from)) {
    const res = await fetch(from);
    if (!res.ok) throw new Error(`GET ${from} answered ${res.status}`);
    return res.json();
  }
  if (from) return JSON.parse(readFileSync(from, "utf8"));
  const python = process.env.VIDGATE_PYTHON || join(REPO_ROOT, ".venv", "bin", "python");
  if (!existsSync(python)) {
    throw new Error(`no gateway Python at ${python}: set VIDGATE_PYTHON or pass --from FILE|URL`);
  }
  const out = execFileSync(python, ["-c", PYTHON_SNIPPET], { cwd: REPO_ROOT, maxBuffer: 64 << 20 });
  return JSON.parse(out.toString("utf8"));
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function key(name) {
  return IDENT.test(name) ? name : JSON.stringify(name);
}

function refName(ref) {
  const prefix = "#/components/schemas/";
  if (!ref.startsWith(prefix)) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(prefix.length);
}

function doc(text, indent) {
  if (!text) return "";
  const clean = text.replace(/``([^`]+)``/g, "`$1`").replace(/\*\//g, "*\\/").trim();
  const lines = clean.split("\n").map((l) => l.trim());
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

function union(types) {
  return [...new Set(types)].join(" | ");
}

function tsType(schema, indent = "") {
  if (!schema || typeof schema !== "object") return "unknown";
  if (schema.$ref) return refName(schema.$ref);
  if ("const" in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return union(schema.enum.map((v) => JSON.stringify(v)));
  const members = schema.anyOf || schema.oneOf;
  if (Array.isArray(members)) return union(members.map((m) => tsType(m, indent)));
  if (Array.isArray(schema.type)) return union(schema.type.map((t) => tsType({ ...schema, type: t }, indent)));
  switch (schema.type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const inner = tsType(schema.items, indent);
      return /[ |&{]/.test(inner) ? `Array<${inner}>` : `${inner}[]`;
    }
    case "object":
      if (schema.properties) return objectLiteral(schema, indent);
      if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
        return `Record<string, ${tsType(schema.additionalProperties, indent)}>`;
      }
      return "Record<string, unknown>";
    default:
      return "unknown";
  }
}

function objectLiteral(schema, indent) {
  const inner = `${indent}  `;
  const required = new Set(schema.required || []);
  const isResponse = schema.additionalProperties !== false;
  let body = "";
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const present = required.has(name) || (isResponse && "default" in prop);
    const notes = [prop.description, "default" in prop && prop.default !== null ? `@default ${JSON.stringify(prop.default)}` : ""]
      .filter(Boolean)
      .join("\n");
    body += doc(notes, inner);
    body += `${inner}${key(name)}${present ? "" : "?"}: ${tsType(prop, inner)};\n`;
  }
  return `{\n${body}${indent}}`;
}

function schemaDeclaration(name, schema) {
  let out = doc(schema.description, "");
  if (schema.type === "object" && schema.properties) {
    out += `export interface ${name} ${objectLiteral(schema, "")}\n`;
  } else {
    out += `export type ${name} = ${tsType(schema, "")};\n`;
  }
  return out;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function paramsType(params, where) {
  const mine = params.filter((p) => p.in === where);
  if (mine.length === 0) return "Record<string, never>";
  const lines = mine.map((p) => `      ${key(p.name)}${p.required ? "" : "?"}: ${tsType(p.schema, "      ")};`);
  return `{\n${lines.join("\n")}\n    }`;
}

function successType(op) {
  const codes = Object.keys(op.responses || {}).filter((c) => /^2\d\d$/.test(c)).sort();
  const first = codes[0] ?? Object.keys(op.responses || {})[0];
  const response = first ? op.responses[first] : undefined;
  const [media, body] = Object.entries(response?.content ?? {})[0] ?? [];
  if (!media) return "void";
  if (body.schema?.$ref) return refName(body.schema.$ref);
  if (body.schema?.format === "binary") return "Uint8Array";
  return tsType(body.schema);
}

function bodyType(op) {
  const media = op.requestBody?.content?.["application/json"];
  if (!media) return "never";
  return tsType(media.schema);
}

function operationsSection(paths) {
  const table = [];
  const types = [];
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const id = op.operationId;
      if (!id) throw new Error(`${method.toUpperCase()} ${path} has no operationId`);
      table.push(`  ${key(id)}: { method: ${JSON.stringify(method.toUpperCase())}, path: ${JSON.stringify(path)} },`);
      const params = op.parameters || [];
      const bodyOptional = op.requestBody && !op.requestBody.required ? "?" : "";
      types.push(
        doc(op.summary, "  ") +
          `  ${key(id)}: {\n` +
          `    path: ${paramsType(params, "path")};\n` +
          `    query: ${paramsType(params, "query")};\n` +
          `    headers: ${paramsType(params, "header")};\n` +
          `    body${bodyOptional}: ${bodyType(op)};\n` +
          `    response: ${successType(op)};\n` +
          `  };`,
      );
    }
  }
  return (
    "/** Every route of the gateway: its method and path template. */\n" +
    `export const operations = {\n${table.join("\n")}\n} as const;\n\n` +
    "export type OperationId = keyof typeof operations;\n\n" +
    "/** Parameters, body and success response of every route. */\n" +
    `export interface Operations {\n${types.join("\n")}\n}\n`
  );
}

export function generate(document) {
  const schemas = document.components?.schemas ?? {};
  const parts = [
    "// Generated by scripts/gen-types.mjs from the gateway's OpenAPI document " +
      `(${document.info?.title ?? "vidgate"} ${document.info?.version ?? ""}`.trimEnd() +
      "). Do not edit:\n// run `npm run gen:types` after the gateway's models or routes change.\n",
    "/* eslint-disable */\n",
  ];
  for (const [name, schema] of Object.entries(schemas)) parts.push(schemaDeclaration(name, schema));
  parts.push(operationsSection(document.paths ?? {}));
  return parts.join("\n");
}

async function main(argv) {
  const check = argv.includes("--check");
  const fromAt = argv.indexOf("--from");
  const from = fromAt >= 0 ? argv[fromAt + 1] : undefined;
  const text = generate(await loadDocument(from));
  if (check) {
    const current = existsSync(OUT) ? readFileSync(OUT, "utf8") : "";
    if (current !== text) {
      const a = current.split("\n");
      const b = text.split("\n");
      let line = 0;
      while (line < a.length && line < b.length && a[line] === b[line]) line++;
      console.error(
        `src/types.gen.ts is out of date with the gateway's OpenAPI document (first difference at line ${line + 1}:\n` +
          `  file:      ${JSON.stringify(a[line] ?? "<end>")}\n  generated: ${JSON.stringify(b[line] ?? "<end>")})\n` +
          "Run `npm run gen:types` and commit the result.",
      );
      process.exit(1);
    }
    console.log("src/types.gen.ts matches the gateway's OpenAPI document");
    return;
  }
  writeFileSync(OUT, text);
  console.log(`wrote ${OUT}`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`gen-types: ${err.message}`);
  process.exit(1);
});
