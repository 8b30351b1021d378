/**
 * The SSH driver against the OpenSSH servers test/host/setup.sh starts on loopback
 * (127.0.0.1:2222 with host key A, 127.0.0.1:2223 with host key B, user berthssh): the
 * fingerprint it reports is OpenSSH's own, a pinned key that differs is refused before
 * authenticating, and each way a connection fails has its own code.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { connectSsh, SshError, type SshTarget } from "../src/drivers/ssh.ts";

const DIR = "/tmp/berth-host/ssh";
let key: string;
let fingerprintA: string;

const target = (extra: Partial<SshTarget> = {}): SshTarget => ({
  host: "127.0.0.1",
  port: 2222,
  username: "berthssh",
  expectedFingerprint: null,
  secrets: { private_key: key },
  readyTimeoutMs: 10_000,
  ...extra,
});

async function failure(t: SshTarget): Promise<SshError> {
  const err = await connectSsh(t).then(
    (c) => {
      c.close();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SshError);
  return err as SshError;
}

beforeAll(() => {
  key = readFileSync(`${DIR}/client_ed25519`, "utf8");
  fingerprintA = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${DIR}/host_key_0.pub`], { encoding: "utf8" }).split(" ")[1]!;
});

describe("connectSsh", () => {
  it("reports OpenSSH's fingerprint of the server's key and runs a command", async () => {
    const conn = await connectSsh(target());
    try {
      expect(conn.fingerprint).toBe(fingerprintA);
      const ran = await conn.exec("echo out; echo err >&2; exit 7", { timeoutMs: 10_000, maxBytes: 1024 });
      expect(ran).toEqual({ stdout: "out\n", stderr: "err\n", truncated: false, exitCode: 7, stopped: null });
    } finally {
      conn.close();
    }
  });

  it("stops a command when its job is cancelled", async () => {
    const conn = await connectSsh(target({ expectedFingerprint: fingerprintA }));
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    const started = Date.now();
    const ran = await conn.exec("echo started; sleep 20", { timeoutMs: 20_000, maxBytes: 1024, signal: abort.signal });
    expect(ran).toMatchObject({ stdout: "started\n", exitCode: null, stopped: "cancelled" });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("refuses a server whose key is not the pinned one", async () => {
    const err = await failure(target({ port: 2223, expectedFingerprint: fingerprintA }));
    expect(err.code).toBe("host_key_mismatch");
    expect(err.fingerprint).not.toBe(fingerprintA);
    expect(err.message).toContain(fingerprintA);
  });

  it("names a refused password, a closed port and an unusable key", async () => {
    expect((await failure(target({ secrets: { password: "wrong" } }))).code).toBe("ssh_auth_failed");
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    expect((await failure(target({ port: closed }))).code).toBe("ssh_unreachable");
    const bad = await failure(target({ secrets: { private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n" } }));
    expect(bad.code).toBe("ssh_failed");
    expect(bad.message).toMatch(/private key/);
  });
});
