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
