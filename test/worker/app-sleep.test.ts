/**
 * Sleep on idle as the control plane sees it: the host learns each app's setting from the
 * answer to its reports, reports sleep and wake, and the app's status and `sleeping` (its own
 * answer and the project's list), autoscale answer and events follow. Another org's host neither learns the setting nor changes the state.
 */
import { describe, expect, it } from "vitest";
import { api, expectApiError, signUp, type TestUser, until } from "./helpers";

async function onlineHost(owner: TestUser) {
  const created = await api(`/org/${owner.orgSlug}/hosts`, { token: owner.token, body: { name: `h-${Math.random().toString(36).slice(2, 6)}`, kind: "docker" } });
  expect(created.status, created.text).toBe(201);
  const joined = await api("/agent/join", { body: { join_token: created.body.join_token, agent_version: "test", facts: { cpus: 2, memory_bytes: 4096 * 1024 * 1024 } } });
  expect(joined.status, joined.text).toBe(201);
  return joined.body.credential as string;
}

/** The agent's side of a job over HTTP: claim its lease, start, succeed. */
async function runJob(credential: string, jobId: string, result: Record<string, unknown> | null = null) {
  let lease: any;
  const end = Date.now() + 10_000;
  while (!lease && Date.now() < end) {
    const claim = await api("/agent/claim", { token: credential, body: { held: [], wait: 2 } });
    lease = claim.body.leases.find((l: any) => l.job_id === jobId);
  }
  expect(lease, `no lease for ${jobId}`).toBeDefined();
  expect((await api(`/agent/leases/${lease.lease_id}/start`, { token: credential, method: "POST" })).status).toBe(200);
  const done = await api(`/agent/leases/${lease.lease_id}/finish`, { token: credential, body: { status: "succeeded", result } });
  expect(done.status, done.text).toBe(200);
}

/** An app deployed (by the test acting as its agent) to a host of `owner`'s org, with a sleep setting. */
async function deployedApp(owner: TestUser, credential: string, sleepAfterMinutes: number) {
  const created = await api(`/projects/${owner.projectId}/apps`, { token: owner.token, body: { name: `Sleepy ${Math.random().toString(36).slice(2, 8)}`, image: "127.0.0.1:5000/berth/hello:v1" } });
  expect(created.status, created.text).toBe(201);
  const appId = created.body.id as string;
  if (sleepAfterMinutes) expect((await api(`/apps/${appId}/autoscale`, { token: owner.token, method: "PUT", body: { sleep_after_minutes: sleepAfterMinutes } })).status).toBe(200);
  const deploy = await api(`/apps/${appId}/deploy`, { token: owner.token, method: "POST" });
  expect(deploy.status, deploy.text).toBe(202);
  await runJob(credential, deploy.body.job.id, { container_id: "c-sleepy", host_port: null });
  return appId;
}

const report = (credential: string, entry: Record<string, unknown>) => api("/agent/apps/report", { token: credential, body: { apps: [{ container_id: "c-sleepy", ...entry }] } });

describe("sleep on idle, as the control plane sees it", () => {
  it("hands the host each app's setting and follows its reports of sleep and wake", async () => {
    const owner = await signUp();
    const credential = await onlineHost(owner);
    const sleepy = await deployedApp(owner, credential, 15);
    const never = await deployedApp(owner, credential, 0);

    const lastRequest = "2026-11-29T10:00:00.000Z";
    const awake = await api("/agent/apps/report", {
      token: credential,
      body: {
        apps: [
          { app_id: sleepy, container_id: "c-sleepy", state: "running", sleeping: false, last_request_at: lastRequest },
          { app_id: never, container_id: "c-sleepy", state: "running", sleeping: false, last_request_at: null },
        ],
      },
    });
    expect(awake.status, awake.text).toBe(200);
    expect(awake.body.sleep_after_minutes).toEqual({ [sleepy]: 15, [never]: 0 });
    expect((await api(`/apps/${sleepy}/autoscale`, { token: owner.token })).body).toMatchObject({ sleep_after_minutes: 15, sleeping: false, slept_at: null, last_request_at: lastRequest });

    // The host put it to sleep: Docker's "exited" is the status clients know, `sleeping` says why.
    expect((await report(credential, { app_id: sleepy, state: "exited", sleeping: true, last_request_at: lastRequest })).status).toBe(200);
    const asleepApp = (await api(`/apps/${sleepy}`, { token: owner.token })).body.app;
    expect(asleepApp).toMatchObject({ status: "stopped", sleeping: true });
    // The project's list says which apps sleep, and which do not.
    const listed = (await api(`/projects/${owner.projectId}/apps`, { token: owner.token })).body as Array<{ id: string; sleeping: boolean }>;
    expect(Object.fromEntries(listed.map((a) => [a.id, a.sleeping]))).toEqual({ [sleepy]: true, [never]: false });
    const asleep = (await api(`/apps/${sleepy}/autoscale`, { token: owner.token })).body;
    expect(asleep).toMatchObject({ sleeping: true, slept_at: expect.any(String), last_request_at: lastRequest });
    // Reported again (the 30 s sweep): no second event.
    await report(credential, { app_id: sleepy, state: "exited", sleeping: true, last_request_at: lastRequest });

    // A request woke it.
    const later = "2026-11-29T10:20:00.000Z";
    await report(credential, { app_id: sleepy, state: "running", sleeping: false, last_request_at: later });
    expect((await api(`/apps/${sleepy}`, { token: owner.token })).body.app).toMatchObject({ status: "running", sleeping: false });
    expect(((await api(`/projects/${owner.projectId}/apps`, { token: owner.token })).body as Array<{ sleeping: boolean }>).map((a) => a.sleeping)).toEqual([false, false]);
    expect((await api(`/apps/${sleepy}/autoscale`, { token: owner.token })).body).toMatchObject({ sleeping: false, slept_at: null, last_request_at: later });
    // An agent that restarted forgets requests: an older time does not move the record back.
    await report(credential, { app_id: sleepy, state: "running", sleeping: false, last_request_at: lastRequest });
    expect((await api(`/apps/${sleepy}/autoscale`, { token: owner.token })).body.last_request_at).toBe(later);

    const events = (await api(`/apps/${sleepy}/events`, { token: owner.token })).body as Array<{ type: string; message: string }>;
    expect(events.filter((e) => e.type === "sleep").map((e) => e.message)).toEqual(["Asleep after 15 minutes without requests; the next request wakes it"]);
    expect(events.filter((e) => e.type === "wake")).toHaveLength(1);

    // An agent without sleep on idle (no `sleeping`) changes none of it.
    await report(credential, { app_id: sleepy, state: "exited" });
    expect((await api(`/apps/${sleepy}/autoscale`, { token: owner.token })).body.sleeping).toBe(false);
  });

  it("a stop, start or deploy of a sleeping app leaves it no longer asleep", async () => {
    const owner = await signUp();
    const credential = await onlineHost(owner);
    const appId = await deployedApp(owner, credential, 5);
    await report(credential, { app_id: appId, state: "exited", sleeping: true });
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body.sleeping).toBe(true);

    // The user stops it: stopped for good, traffic no longer wakes it.
    const stop = await api(`/apps/${appId}/stop`, { token: owner.token, method: "POST" });
    expect(stop.status, stop.text).toBe(202);
    await runJob(credential, stop.body.job.id);
    const after = await until(
      "the stop to settle",
      async () => (await api(`/apps/${appId}/autoscale`, { token: owner.token })).body,
      (b) => b.sleeping === false,
    );
    expect(after).toMatchObject({ sleeping: false, slept_at: null });
    expect((await api(`/apps/${appId}`, { token: owner.token })).body.app.status).toBe("stopped");
    const events = (await api(`/apps/${appId}/events`, { token: owner.token })).body as Array<{ type: string; message: string }>;
    expect(events.some((e) => e.type === "wake" && /job/.test(e.message))).toBe(true);

    // Asleep again, then deployed: a deploy wakes it.
    await report(credential, { app_id: appId, state: "exited", sleeping: true });
    const deploy = await api(`/apps/${appId}/deploy`, { token: owner.token, method: "POST" });
    await runJob(credential, deploy.body.job.id, { container_id: "c-sleepy-2", host_port: null });
    await until("the deploy to settle", async () => (await api(`/apps/${appId}/autoscale`, { token: owner.token })).body, (b) => b.sleeping === false);
  });

  it("another org's host learns no setting and changes nothing; bad reports are 400", async () => {
    const owner = await signUp();
    const credential = await onlineHost(owner);
    const appId = await deployedApp(owner, credential, 30);
    const stranger = await signUp();
    const strangerHost = await onlineHost(stranger);

    const foreign = await report(strangerHost, { app_id: appId, state: "exited", sleeping: true, last_request_at: "2026-11-29T11:00:00.000Z" });
    expect(foreign.status, foreign.text).toBe(200);
    expect(foreign.body.sleep_after_minutes).toEqual({});
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body).toMatchObject({ sleeping: false, last_request_at: null });
    expect((await api(`/apps/${appId}`, { token: owner.token })).body.app.status).toBe("running");

    expectApiError(await report(credential, { app_id: appId, state: "exited", sleeping: "yes" }), 400, "invalid_request");
    expectApiError(await report(credential, { app_id: appId, state: "running", sleeping: false, last_request_at: "yesterday" }), 400, "invalid_request");
    expectApiError(await api("/agent/apps/report", { body: { apps: [{ app_id: appId, container_id: "c", state: "exited", sleeping: true }] } }), 401, "invalid_host_credential");
    expect((await api(`/apps/${appId}/autoscale`, { token: owner.token })).body.sleeping).toBe(false);
  });
});
