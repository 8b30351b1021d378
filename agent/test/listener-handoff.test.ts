/**
 * listenerHandoff reads and sets net.ipv4.tcp_migrate_req; these tests point it at a file of
 * their own rather than the machine's /proc (`npm run bench:reload` measures the kernel's side).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listenerHandoff } from "../src/drivers/listener-handoff.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-handoff-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setting(name: string, value: string): string {
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`);
  return path;
}

describe("listenerHandoff", () => {
  it("turns the setting on when it is off, and says so", () => {
    const path = setting("off", "0");
    const result = listenerHandoff({ turnOn: true, path });
    expect(result.state).toBe("turned-on");
    expect(readFileSync(path, "utf8").trim()).toBe("1");
  });

  it("leaves a setting that is on alone", () => {
    const path = setting("on", "1");
    expect(listenerHandoff({ turnOn: true, path }).state).toBe("on");
  });

  it("only reports when asked not to change it (doctor)", () => {
    const path = setting("report", "0");
    const result = listenerHandoff({ turnOn: false, path });
    expect(result.state).toBe("off");
    expect(result.detail).toContain("the agent turns it on when it starts");
    expect(readFileSync(path, "utf8").trim()).toBe("0");
  });

  it("says what to run when the setting cannot be written", () => {
    // Root writes any file of its own; a read-only sysctl refuses root too.
    let path = "/proc/sys/kernel/ngroups_max";
    if (process.getuid?.() !== 0) {
      path = setting("read-only", "0");
      chmodSync(path, 0o444);
    }
    const result = listenerHandoff({ turnOn: true, path });
    expect(result.state).toBe("denied");
    expect(result.detail).toContain("the agent could not set it: run sysctl -w net.ipv4.tcp_migrate_req=1");
  });

  it("says a kernel without the setting is older than 5.14", () => {
    const result = listenerHandoff({ turnOn: true, path: join(dir, "missing") });
    expect(result.state).toBe("absent");
    expect(result.detail).toContain("5.14");
  });
});
