import { describe, expect, it } from "vitest";
import { CommandError, onCommandFailure, toCommandError, wrap } from "./backend";

describe("backend", () => {
  it("turns an ApiError into a CommandError with the command's name", () => {
    const e = toCommandError("login", { code: "bad_credentials", message: "wrong", params: {} });
    expect(e).toBeInstanceOf(CommandError);
    expect(e.code).toBe("bad_credentials");
    expect(e.command).toBe("login");
  });

  it("treats framework strings as internal errors", () => {
    const e = toCommandError("staffList", "command staff_list not allowed by ACL");
    expect(e.code).toBe("internal");
    expect(e.message).toContain("not allowed");
  });

  it("wrapped commands rethrow typed errors and tell listeners", async () => {
    const seen: string[] = [];
    const off = onCommandFailure((e) => seen.push(`${e.command}:${e.code}`));
    const fake = {
      ok: async () => 42,
      locked: async () => {
        throw { code: "session_locked", message: "locked", params: {} };
      },
    };
    const api = wrap(fake as never) as unknown as typeof fake;
    expect(await api.ok()).toBe(42);
    await expect(api.locked()).rejects.toMatchObject({ code: "session_locked", command: "locked" });
    expect(seen).toEqual(["locked:session_locked"]);
    off();
  });
});

describe("the one door", () => {
  it("is the only module that takes anything but types from the bindings", async () => {
    const { readFileSync, readdirSync, statSync } = await import("node:fs");
    const { join } = await import("node:path");
    const root = join(__dirname, "..");
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((f: string) => {
        const p = join(dir, f);
        return statSync(p).isDirectory() ? files(p) : /\.(svelte|ts)$/.test(f) ? [p] : [];
      });
    const offenders: string[] = [];
    let seen = 0;
    for (const f of files(root)) {
      if (f.endsWith("backend.ts") || f.endsWith("bindings.ts") || f.endsWith(".test.ts")) continue;
      for (const m of readFileSync(f, "utf8").matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+"[./]*(?:lib\/)?bindings"/g)) {
        seen++;
        const values = m[1] ? [] : m[2].split(",").map((x) => x.trim()).filter((x) => x && !x.startsWith("type "));
        if (values.length) offenders.push(`${f}: ${values.join(", ")}`);
      }
    }
    expect(seen).toBeGreaterThan(5);
    expect(offenders).toEqual([]);
  });
});
