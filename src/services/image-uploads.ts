/**
 * Uploaded image tarballs (`docker save`, plain or gzipped): streamed into R2 under
 * `uploads/{app}/{deployment}.tar` without holding more than one R2 part in memory, kept
 * while the deploy that loads them runs, deleted when it ends (src/jobs/outcomes.ts).
 */
import type { Env } from "../env";
import { ApiError } from "../lib/errors";
import { MultipartError } from "../lib/multipart-stream";

/** Dockup's documented limit; IMAGE_UPLOAD_MAX_MB lowers (or raises) it. */
const DEFAULT_MAX_MB = 2048;
/**
 * R2 multipart parts: every part but the last has this size (R2 wants them equal and at
 * least 5 MiB). An upload smaller than one part is one plain put.
 */
const PART_BYTES = 8 * 1024 * 1024;

export const UPLOAD_PREFIX = "uploads/";
/** Repository of uploaded images on a host; the tag is the deployment id. */
export const UPLOAD_REPOSITORY = "berth-upload";

export function uploadLimitBytes(env: Env): number {
  const mb = Number(env.IMAGE_UPLOAD_MAX_MB);
  return (Number.isFinite(mb) && mb > 0 ? mb : DEFAULT_MAX_MB) * 1024 * 1024;
}

export const uploadKey = (appId: string, deploymentId: string) => `${UPLOAD_PREFIX}${appId}/${deploymentId}.tar`;
/** The image reference an upload is loaded as on its host: lower case, as Docker wants repositories. */
export const uploadTag = (slug: string, deploymentId: string) => `${UPLOAD_REPOSITORY}/${slug.toLowerCase()}:${deploymentId}`;

function tooLarge(limit: number): ApiError {
  return new ApiError("payload_too_large", `The image may be at most ${Math.round(limit / (1024 * 1024))} MB (IMAGE_UPLOAD_MAX_MB)`);
}

/** Refuses a body whose declared length is already over the limit, before reading any of it. */
export function checkDeclaredLength(env: Env, contentLength: string | undefined) {
  const limit = uploadLimitBytes(env);
  // A multipart body carries some headers and boundaries besides the file.
  if (contentLength && Number(contentLength) > limit + 64 * 1024) throw tooLarge(limit);
}

/**
 * Streams `chunks` into R2 at `key`; answers the size stored. Over the limit, on a cut
 * upload or a malformed body, nothing is left behind: a started multipart upload is
 * aborted, and the error is the one the caller answers (413, 400).
 */
export async function storeUpload(env: Env, key: string, chunks: AsyncIterable<Uint8Array>, meta: Record<string, string>): Promise<number> {
  const limit = uploadLimitBytes(env);
  const bucket = env.ARCHIVE;
  const part = new Uint8Array(PART_BYTES);
  let filled = 0;
  let total = 0;
  let upload: R2MultipartUpload | null = null;
  const parts: R2UploadedPart[] = [];
  const options = { customMetadata: meta, httpMetadata: { contentType: "application/x-tar" } };
  try {
    for await (const chunk of chunks) {
      total += chunk.length;
      if (total > limit) throw tooLarge(limit);
      let offset = 0;
      while (offset < chunk.length) {
        const n = Math.min(chunk.length - offset, PART_BYTES - filled);
        part.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === PART_BYTES) {
          upload ??= await bucket.createMultipartUpload(key, options);
          // uploadPart may keep a reference until it resolves; it resolves before the buffer is reused.
          parts.push(await upload.uploadPart(parts.length + 1, part));
          filled = 0;
        }
      }
    }
    if (total === 0) throw new ApiError("invalid_request", "The image file is empty: send the tarball `docker save` writes");
    if (!upload) {
      await bucket.put(key, part.subarray(0, filled), options);
    } else {
      if (filled > 0) parts.push(await upload.uploadPart(parts.length + 1, part.subarray(0, filled)));
      await upload.complete(parts);
    }
    return total;
  } catch (err) {
    if (upload) await upload.abort().catch(() => undefined);
    if (err instanceof MultipartError) throw new ApiError("invalid_request", `Malformed multipart body: ${err.message}`);
    if (err instanceof ApiError) throw err;
    // The client went away or the body was cut: say so rather than a 500.
    if (err instanceof TypeError || (err as Error).name === "AbortError") throw new ApiError("invalid_request", `The upload was cut short: ${(err as Error).message}`);
    throw err;
  }
}

/** Deletes an upload's object; an object already gone is fine. */
export async function deleteUpload(env: Env, key: string): Promise<void> {
  if (!key.startsWith(UPLOAD_PREFIX)) return;
  await env.ARCHIVE.delete(key);
}
