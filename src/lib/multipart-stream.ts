/**
 * One file field of a `multipart/form-data` body, read as a stream: its bytes are handed
 * on chunk by chunk as they arrive, and the other fields are skipped. Written here because
 * the parsers on npm that run in workerd (@remix-run/multipart-parser 0.16, hono's
 * parseBody, Request.formData) collect each part in memory, and an image tarball may be
 * gigabytes.
 */

export class MultipartError extends Error {}

const enc = new TextEncoder();
const CRLF = enc.encode("\r\n");
const HEADER_END = enc.encode("\r\n\r\n");
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a `multipart/form-data` content type, or null when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\s*(;|$)/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0]!;
  for (let i = haystack.indexOf(first, from); i >= 0 && i + needle.length <= haystack.length; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (!a.length) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** `name` and `filename` of a part's Content-Disposition. */
function dispositionOf(headerBlock: string): { name: string | null; filename: string | null } {
  const line = headerBlock.split("\r\n").find((l) => /^content-disposition\s*:/i.test(l)) ?? "";
  const param = (key: string) => {
    const m = new RegExp(`;\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, "i").exec(line);
    return m ? (m[1] ?? m[2] ?? "") : null;
  };
  return { name: param("name"), filename: param("filename") };
}

/**
 * Yields the content of the first part named `field`, chunk by chunk; throws
 * MultipartError when the body is not well-formed multipart or has no such part.
 * Only the bytes that might be the start of a boundary are held back between chunks.
 */
export async function* multipartFile(body: ReadableStream<Uint8Array>, boundary: string, field: string): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  // The body starts with `--boundary`; a boundary later on is preceded by CRLF. Reading
  // as if the body began with CRLF makes both the same delimiter.
  const delimiter = enc.encode(`\r\n--${boundary}`);
  let buf: Uint8Array = CRLF;
  let done = false;
  const more = async () => {
    if (done) return false;
    const r = await reader.read();
    if (r.done) {
      done = true;
      return false;
    }
    buf = concat(buf, r.value);
    return true;
  };
  try {
    // Preamble: up to the first delimiter.
    let at = indexOf(buf, delimiter);
    while (at < 0) {
      if (buf.length > MAX_HEADER_BYTES) buf = buf.subarray(buf.length - delimiter.length);
      if (!(await more())) throw new MultipartError("the body has no multipart boundary; is the Content-Type's boundary the one used?");
      at = indexOf(buf, delimiter);
    }
    buf = buf.subarray(at + delimiter.length);
    for (;;) {
      // After a delimiter: `--` ends the body, CRLF starts a part's headers.
      while (buf.length < 2) if (!(await more())) throw new MultipartError("the multipart body ends inside a boundary");
      if (buf[0] === 0x2d && buf[1] === 0x2d) throw new MultipartError(`the multipart body has no field "${field}"`);
      let end = indexOf(buf, HEADER_END);
      while (end < 0) {
        if (buf.length > MAX_HEADER_BYTES) throw new MultipartError("a multipart part's headers are too long");
        if (!(await more())) throw new MultipartError("the multipart body ends inside a part's headers");
        end = indexOf(buf, HEADER_END);
      }
      const { name } = dispositionOf(new TextDecoder().decode(buf.subarray(2, end)));
      buf = buf.subarray(end + HEADER_END.length);
      const wanted = name === field;
      // The part's content: everything up to the next delimiter.
      for (;;) {
        at = indexOf(buf, delimiter);
        if (at >= 0) {
          if (wanted && at > 0) yield buf.slice(0, at);
          buf = buf.subarray(at + delimiter.length);
          break;
        }
        const safe = buf.length - (delimiter.length - 1);
        if (safe > 0) {
          if (wanted) yield buf.slice(0, safe);
          buf = buf.subarray(safe);
        }
        if (!(await more())) throw new MultipartError("the multipart body ends before its closing boundary (upload cut short?)");
      }
      if (wanted) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** Yields a body's chunks as they come (a raw `application/octet-stream` upload). */
export async function* rawBody(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
