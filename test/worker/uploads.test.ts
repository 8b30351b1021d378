/**
 * Image uploads (Dockup's `POST /apps/{appId}/upload-image` and `POST /deploy/{slug}` with a
 * tarball): stored in R2 as sent, served to the host holding the deploy's lease only, gone
 * once the deploy ended; over the limit 413, malformed 400, and nothing left behind either way.
 * The worker tests run with IMAGE_UPLOAD_MAX_MB = 12 (test/vitest.config.ts).
 */
import { describe, expect, it } from "vitest";
import { api, createOrgKey, env, fetchWorker, orgWithEveryRole, signUp, type TestUser } from "./helpers";

const MB = 1024 * 1024;

async function onlineHost(owner: TestUser, orgSlug: string, name = "box") {
  const created = await api(`/org/${orgSlug}/hosts`, { token: owner.token, body: { name, kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 8192 * MB } } });
  expect(joined.status, joined.text).toBe(201);
  return { id: created.body.host.id as string, credential: joined.body.credential as string };
}

async function newApp(owner: TestUser, projectId: string) {
  const res = await api(`/projects/${projectId}/apps`, { token: owner.token, body: { name: `Up ${Math.random().toString(36).slice(2, 8)}`, image: "127.0.0.1:5000/berth/hello:v1", memory_limit: 64 } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; slug: string };
}

/** Random bytes: a boundary match inside them would be a parser bug (the boundary is 40 bytes). */
function tarball(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65_536)));
  return out;
}

const sha256 = async (bytes: ArrayBuffer | Uint8Array) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

function multipart(file: Uint8Array, field = "image", boundary = "----berthTestBoundary7MA4YWxkTrZu0gW"): { body: Uint8Array; type: string } {
  const enc = new TextEncoder();
  const head = enc.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nnot the image\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="app.tar"\r\nContent-Type: application/x-tar\r\n\r\n`,
  );
  const tail = enc.encode(`\r\n--${boundary}--\r\n`);
  const body = new Uint8Array(head.length + file.length + tail.length);
  body.set(head);
  body.set(file, head.length);
  body.set(tail, head.length + file.length);
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

/** A body with no Content-Length, sent in 1 MB pieces (what `curl --data-binary @-` or a cut connection looks like). */
function streamed(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + MB));
      at += MB;
    },
  });
}

async function send(path: string, token: string, body: BodyInit | null, contentType?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (contentType) headers["content-type"] = contentType;
  const res = await fetchWorker(`/api/v1${path}`, { method: "POST", headers, body });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, body: parsed, text };
}

const objectsOf = async (appId: string) => (await env.ARCHIVE.list({ prefix: `uploads/${appId}/` })).objects.map((o) => ({ key: o.key, size: o.size }));

async function claimLease(credential: string, jobId: string) {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const claim = await api("/agent/claim", { token: credential, body: { held: [], wait: 1 } });
    const lease = claim.body.leases?.find((l: any) => l.job_id === jobId);
    if (lease) return lease;
  }
  throw new Error(`no lease for ${jobId}`);
}

describe("image uploads", () => {
  it("store a multipart upload as sent, deploy it as a job, serve it to the lease's host only, and delete it when the deploy ended", async () => {
    const owner = await signUp();
    const host = await onlineHost(owner, owner.orgSlug);
    const other = await signUp();
    const otherHost = await onlineHost(other, other.orgSlug);
    const app = await newApp(owner, owner.projectId);
    const file = tarball(300 * 1024);
    const { body, type } = multipart(file);

    const res = await send(`/apps/${app.id}/upload-image`, owner.token, body, type);
    expect(res.status, res.text).toBe(200);
    const dep = res.body.deployment.id as string;
    expect(res.body).toMatchObject({
      loaded_image: null,
      tagged_as: `berth-upload/${app.slug}:${dep}`,
      size_bytes: file.length,
      app: { id: app.id },
      deployment: { status: "pending", image: `berth-upload/${app.slug}:${dep}` },
      job: { type: "app.deploy", host_id: host.id },
    });
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.app.image).toBe(`berth-upload/${app.slug}:${dep}`);
    expect(await objectsOf(app.id)).toEqual([{ key: `uploads/${app.id}/${dep}.tar`, size: file.length }]);

    // The host holding the lease gets the bytes as uploaded; another org's host does not.
    const lease = await claimLease(host.credential, res.body.job.id);
    expect(lease.payload).toMatchObject({ type: "app.deploy", image: `berth-upload/${app.slug}:${dep}`, upload: { size_bytes: file.length } });
    const fetched = await fetchWorker(`/api/v1/agent/leases/${lease.lease_id}/image`, { headers: { authorization: `Bearer ${host.credential}` } });
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get("content-length")).toBe(String(file.length));
    expect(new Uint8Array(await fetched.arrayBuffer())).toEqual(file);
    const stolen = await api(`/agent/leases/${lease.lease_id}/image`, { token: otherHost.credential });
    expect(stolen.status).toBe(409);
    expect(stolen.body.error.code).toBe("lease_stale");
    expect((await api(`/agent/leases/${lease.lease_id}/image`, { token: owner.token })).status).toBe(401);

    // The deploy ends: the object goes.
    expect((await api(`/agent/leases/${lease.lease_id}/start`, { token: host.credential, method: "POST" })).status).toBe(200);
    const done = await api(`/agent/leases/${lease.lease_id}/finish`, { token: host.credential, body: { status: "succeeded", result: { container_id: "c".repeat(64), host_port: null } } });
    expect(done.status, done.text).toBe(200);
    const end = Date.now() + 5_000;
    while ((await objectsOf(app.id)).length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(await objectsOf(app.id)).toEqual([]);
    expect((await api(`/apps/${app.id}/deployments`, { token: owner.token })).body[0]).toMatchObject({ id: dep, status: "succeeded" });
  });

  it("take a raw streamed tarball by slug with a dkp_ key, in R2 parts, and answer Dockup's deploy shape", async () => {
    const t = await orgWithEveryRole();
    await onlineHost(t.owner, t.slug);
    const project = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "CI" } });
    const app = await newApp(t.owner, project.body.project.id);
    const dkp = await api("/api-keys", { token: t.developer.token, body: { name: "ci" } });
    // Larger than one 8 MiB R2 part, with no Content-Length: a multipart upload to R2.
    const file = tarball(9 * MB + 12345);
    const res = await send(`/deploy/${app.slug}`, dkp.body.key, streamed(file), "application/octet-stream");
    expect(res.status, res.text).toBe(202);
    const dep = res.body.deployment.id as string;
    expect(res.body).toMatchObject({ slug: app.slug, tagged_as: `berth-upload/${app.slug}:${dep}`, app: { id: app.id }, job: { type: "app.deploy" } });
    expect(res.body.message).toMatch(/uploaded image \(9\.0 MB\)/);
    const stored = await env.ARCHIVE.get(`uploads/${app.id}/${dep}.tar`);
    expect(stored?.size).toBe(file.length);
    expect(await sha256(await stored!.arrayBuffer())).toEqual(await sha256(file));
    await env.ARCHIVE.delete(`uploads/${app.id}/${dep}.tar`);

    // Dockup's `curl --data-binary @app.tar …/upload-image` sends no Content-Type of its own: curl says form-urlencoded.
    const small = tarball(2048);
    const plain = await send(`/apps/${app.id}/upload-image`, dkp.body.key, small, "application/x-www-form-urlencoded");
    expect(plain.status, plain.text).toBe(200);
    expect(plain.body.size_bytes).toBe(small.length);
    await env.ARCHIVE.delete(`uploads/${app.id}/${plain.body.deployment.id}.tar`);
  });

  it("answer 413 over IMAGE_UPLOAD_MAX_MB, declared or streamed, and keep nothing", async () => {
    const owner = await signUp();
    await onlineHost(owner, owner.orgSlug);
    const app = await newApp(owner, owner.projectId);
    const big = tarball(13 * MB);

    const declared = await send(`/apps/${app.id}/upload-image`, owner.token, big, "application/octet-stream");
    expect(declared.status, declared.text).toBe(413);
    expect(declared.body.error).toMatchObject({ code: "payload_too_large", message: expect.stringMatching(/at most 12 MB/) });

    // No Content-Length: refused once 12 MB went by, after one R2 part was already stored.
    const { body, type } = multipart(big);
    const cut = await send(`/apps/${app.id}/upload-image`, owner.token, streamed(body), type);
    expect(cut.status, cut.text).toBe(413);
    expect(cut.body.error.code).toBe("payload_too_large");
    expect(await objectsOf(app.id)).toEqual([]);
    expect((await api(`/apps/${app.id}/deployments`, { token: owner.token })).body).toEqual([]);
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.app.image).toBe("127.0.0.1:5000/berth/hello:v1");
  });

  it("answer 400 to malformed multipart, a missing or empty file and a body that is no upload", async () => {
    const owner = await signUp();
    await onlineHost(owner, owner.orgSlug);
    const app = await newApp(owner, owner.projectId);
    const path = `/apps/${app.id}/upload-image`;
    const file = tarball(4096);
    const { body, type } = multipart(file);

    const cases: Array<[string, BodyInit | null, string | undefined, RegExp]> = [
      ["cut before its closing boundary", body.slice(0, body.length - 30), type, /closing boundary/],
      ["another boundary than declared", body, "multipart/form-data; boundary=nope", /no multipart boundary/],
      ["no boundary at all", body, "multipart/form-data", /no boundary/],
      ["no image field", multipart(file, "tarball").body, type, /no field "image"/],
      ["an empty image", multipart(new Uint8Array(0)).body, type, /empty/],
      ["JSON", JSON.stringify({ image: "x" }), "application/json", /multipart\/form-data/],
      ["no body", null, undefined, /multipart|No image/],
    ];
    for (const [what, b, t, message] of cases) {
      const res = await send(path, owner.token, b, t);
      expect(res.status, `${what}: ${res.text}`).toBe(400);
      expect(res.body.error.code, what).toMatch(/^invalid_(request|json)$/);
      expect(res.body.error.message, what).toMatch(message);
    }
    expect(await objectsOf(app.id)).toEqual([]);
    expect((await api(`/apps/${app.id}/deployments`, { token: owner.token })).body).toEqual([]);
    // /deploy/{slug} reads the same uploads the same way.
    expect((await send(`/deploy/${app.slug}`, owner.token, body.slice(0, 100), type)).status).toBe(400);
  });

  it("are a deploy: developers, dkp_, full and deploy keys may; viewers, read-only keys, other orgs and nobody may not; no host, 409 and nothing kept", async () => {
    const t = await orgWithEveryRole();
    const project = await api(`/org/${t.slug}/projects`, { token: t.owner.token, body: { name: "Shop" } });
    const app = await newApp(t.owner, project.body.project.id);
    const { body, type } = multipart(tarball(1024));
    const up = (token: string) => send(`/apps/${app.id}/upload-image`, token, body, type);

    const noHost = await up(t.owner.token);
    expect(noHost.status).toBe(409);
    expect(noHost.body.error.code).toBe("no_host_available");

    await onlineHost(t.owner, t.slug);
    const dkp = await api("/api-keys", { token: t.developer.token, body: { name: "ci" } });
    for (const token of [t.developer.token, dkp.body.key, (await createOrgKey(t.owner, t.slug, "deploy")).key, (await createOrgKey(t.owner, t.slug, "full")).key]) {
      expect((await up(token)).status).toBe(200);
    }
    expect((await up(t.viewer.token)).status).toBe(403);
    expect((await up((await createOrgKey(t.owner, t.slug, "read-only")).key)).status).toBe(403);
    const outsider = await signUp();
    await onlineHost(outsider, outsider.orgSlug);
    const notTheirs = await up(outsider.token);
    expect(notTheirs.status).toBe(404);
    expect(notTheirs.body.error.code).toBe("app_not_found");
    expect((await send(`/deploy/${app.slug}`, outsider.token, body, type)).status).toBe(404);
    expect((await up("")).status).toBe(401);
    // Four uploads were taken, one per allowed caller.
    expect(await objectsOf(app.id)).toHaveLength(4);
    for (const o of await objectsOf(app.id)) await env.ARCHIVE.delete(o.key);
  });
});
