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
    // London's clocks go forward on 29 March and back on 25 October 2026: 23- and 25-hour days.
    expect(dayBoundUtc("2026-03-29", "Europe/London", false)).toBe("2026-03-29T00:00:00.000Z");
    expect(dayBoundUtc("2026-03-29", "Europe/London", true)).toBe("2026-03-29T22:59:59.999Z");
    expect(dayBoundUtc("2026-10-25", "Europe/London", false)).toBe("2026-10-24T23:00:00.000Z");
    expect(dayBoundUtc("2026-10-25", "Europe/London", true)).toBe("2026-10-25T23:59:59.999Z");
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

import { money, toMinor, zonedToUtc, zonedParts, addDays } from "./format";

describe("zoned times and money", () => {
  it("converts wall-clock times in a zone to UTC and back", () => {
    expect(zonedToUtc("2026-03-10", "09:00", "Asia/Bangkok")).toBe("2026-03-10T02:00:00.000Z");
    expect(zonedToUtc("2026-03-29", "09:00", "Europe/Berlin")).toBe("2026-03-29T07:00:00.000Z");
    expect(zonedParts("2026-03-10T02:00:00.000Z", "Asia/Bangkok")).toEqual({ day: "2026-03-10", hhmm: "09:00" });
    expect(addDays("2026-02-28", 1)).toBe("2026-03-01");
  });
  it("keeps money in integer minor units", () => {
    expect(money(123456, "THB", 2)).toBe("1234.56 THB");
    expect(money(5, "THB", 2)).toBe("0.05 THB");
    expect(money(1500, "JPY", 0)).toBe("1500 JPY");
    expect(toMinor("500", 2)).toBe(50000);
    expect(toMinor("12.5", 2)).toBe(1250);
    expect(toMinor("1.234", 2)).toBeNull();
    expect(toMinor("abc", 2)).toBeNull();
  });
});
