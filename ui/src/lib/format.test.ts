import { describe, expect, it } from "vitest";
import { dayBoundUtc } from "./format";
import { describe as describeError } from "./errors";
import { CommandError } from "./backend";
import { setLocale } from "./i18n.svelte";

describe("format", () => {
  it("finds a local day's bounds in UTC", () => {
    expect(dayBoundUtc("2026-03-10", "Asia/Bangkok", false)).toBe("2026-03-09T17:00:00.000Z");
    expect(dayBoundUtc("2026-03-10", "Asia/Bangkok", true)).toBe("2026-03-10T16:59:59.999Z");
    expect(dayBoundUtc("2026-07-01", "Europe/Moscow", false)).toBe("2026-06-30T21:00:00.000Z");
  });
});

describe("error messages", () => {
  it("name the field and the rule, in the chosen language", () => {
    const e = new CommandError("staffCreate", {
      code: "validation",
      message: "password: too short",
      params: { field: "password", reason: "too_short", limit: "10" },
    });
    setLocale("en");
    expect(describeError(e)).toBe("Password is too short: at least 10 characters.");
    setLocale("ru");
    expect(describeError(e)).toContain("Пароль");
    setLocale("en");
  });
});
