// Input files: checked for type and size before anything is sent, large images shrunk on a canvas,
// then uploaded through POST /v1/files (inline JSON bodies are capped far below a photo's size).

export const ACCEPT = {
  image: ["image/png", "image/jpeg", "image/webp"],
  video: ["video/mp4", "video/webm", "video/quicktime"],
  audio: ["audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav", "audio/mp4", "audio/aac", "audio/ogg", "audio/flac"],
};
const IMAGE_MAX_BYTES = 1_500_000; // larger images are re-encoded smaller
const IMAGE_MAX_SIDE = 2048;
const MEDIA_MAX_BYTES = 100 * 1024 * 1024; // the gateway's default upload limit
const PREVIEW_SIDE = 96;

/** A refusal of a chosen file, worded for the person who chose it. */
export class InputError extends Error {}

/** ``file`` ready to upload (an image shrunk when it is large), or an ``InputError``. */
export async function prepare(file, kind) {
  if (!ACCEPT[kind].includes(file.type)) {
    const names = ACCEPT[kind].map((t) => t.split("/")[1].toUpperCase());
    throw new InputError(`${file.name} is ${file.type || "of an unknown type"}; choose a ${[...new Set(names)].join(", ")} file`);
  }
  if (kind !== "image") {
    if (file.size > MEDIA_MAX_BYTES) throw new InputError(`${file.name} is ${mb(file.size)}; the limit is ${mb(MEDIA_MAX_BYTES)}`);
    return file;
  }
  const bitmap = await createImageBitmap(file).catch(() => {
    throw new InputError(`${file.name} could not be read as an image`);
  });
  const side = Math.max(bitmap.width, bitmap.height);
  if (file.size <= IMAGE_MAX_BYTES && side <= IMAGE_MAX_SIDE) {
    bitmap.close();
    return file;
  }
  let scale = Math.min(1, IMAGE_MAX_SIDE / side);
  for (let quality = 0.9; ; quality -= 0.15) {
    const blob = await draw(bitmap, scale, "image/jpeg", quality);
    if (blob.size <= IMAGE_MAX_BYTES || quality < 0.4) {
      bitmap.close();
      return new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" });
    }
    scale *= 0.8;
  }
}

function draw(bitmap, scale, type, quality) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(2, Math.round(bitmap.width * scale));
  canvas.height = Math.max(2, Math.round(bitmap.height * scale));
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // JPEG has no transparency: flatten onto white, not black
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

/** A small ``data:`` preview of an image, small enough to remember with the job. */
export async function preview(file) {
  if (!file.type.startsWith("image/")) return null;
  const bitmap = await createImageBitmap(file);
  const blob = await draw(bitmap, Math.min(1, PREVIEW_SIDE / Math.max(bitmap.width, bitmap.height)), "image/jpeg", 0.7);
  bitmap.close();
  return new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.readAsDataURL(blob);
  });
}

export const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;
