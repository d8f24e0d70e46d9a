// Dates and times: stored in UTC, shown in the clinic's time zone.
import { intlLocale } from "./i18n.svelte";

export function dateTime(iso: string, timeZone: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(intlLocale(), { dateStyle: "medium", timeStyle: "medium", timeZone }).format(d);
}

export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  const all = intl.supportedValuesOf?.("timeZone");
  return all && all.length > 0
    ? all
    : ["Asia/Bangkok", "Europe/Moscow", "Asia/Almaty", "Asia/Tashkent", "Europe/London", "UTC"];
}

/** The UTC instant (RFC 3339) at the start or the last millisecond of a local calendar
 * day in `timeZone`. A day is 23 or 25 hours long when the clocks change. */
export function dayBoundUtc(day: string, timeZone: string, end: boolean): string {
  if (!end) return zonedToUtc(day, "00:00", timeZone);
  return new Date(Date.parse(zonedToUtc(addDays(day, 1), "00:00", timeZone)) - 1).toISOString();
}

/** Offset (ms) of `timeZone` from UTC at the instant `at`. */
function offsetAt(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(at));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"), get("second")) - Math.floor(at / 1000) * 1000;
}

/** The UTC instant (RFC 3339) of a wall-clock time in `timeZone`: day YYYY-MM-DD, HH:MM. */
export function zonedToUtc(day: string, hhmm: string, timeZone: string): string {
  const naive = Date.parse(`${day}T${hhmm}:00Z`);
  // Two passes settle the offset across a DST change.
  let t = naive - offsetAt(naive, timeZone);
  t = naive - offsetAt(t, timeZone);
  return new Date(t).toISOString();
}

/** Wall-clock parts of a UTC instant in `timeZone`. */
export function zonedParts(iso: string, timeZone: string): { day: string; hhmm: string } {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).formatToParts(new Date(iso));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "00";
  return { day: `${get("year")}-${get("month")}-${get("day")}`, hhmm: `${get("hour") === "24" ? "00" : get("hour")}:${get("minute")}` };
}

/** Today's date in `timeZone`, YYYY-MM-DD. */
export function today(timeZone: string): string {
  return zonedParts(new Date().toISOString(), timeZone).day;
}

export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

export function time(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat(intlLocale(), { hour: "2-digit", minute: "2-digit", timeZone }).format(new Date(iso));
}

export function dayLabel(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat(intlLocale(), { weekday: "short", day: "numeric", month: "short", timeZone }).format(new Date(iso));
}

export function age(birth: string): number {
  const b = new Date(`${birth}T00:00:00Z`);
  const n = new Date();
  let a = n.getUTCFullYear() - b.getUTCFullYear();
  if (n.getUTCMonth() < b.getUTCMonth() || (n.getUTCMonth() === b.getUTCMonth() && n.getUTCDate() < b.getUTCDate())) a--;
  return a;
}

/** Money: integer minor units shown with the currency's digits; never a float. */
export function money(minor: number, currency: string, digits: number): string {
  const neg = minor < 0;
  const s = String(Math.abs(Math.trunc(minor))).padStart(digits + 1, "0");
  const major = digits > 0 ? `${s.slice(0, -digits)}.${s.slice(-digits)}` : s;
  return `${neg ? "-" : ""}${major} ${currency}`;
}

/** Digits after the point of the clinic's currencies (as Rust's `settings::CURRENCIES`). */
export function currencyDigits(currency: string): number {
  return ["VND", "JPY", "KRW"].includes(currency) ? 0 : 2;
}

/** Parses "1234.5" into minor units with `digits` decimals; null if not a plain amount. */
export function toMinor(text: string, digits: number): number | null {
  const m = text.trim().replace(",", ".").match(/^(\d+)(?:\.(\d*))?$/);
  if (!m) return null;
  const frac = (m[2] ?? "").padEnd(digits, "0");
  if (frac.length > digits) return null;
  return Number(m[1]) * 10 ** digits + (digits ? Number(frac) : 0);
}

export function minutesToHhmm(m: number): string {
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

export function hhmmToMinutes(s: string): number | null {
  const m = s.match(/^(\d{1,2}):(\d{2})$/);
  if (!m) return null;
  const v = Number(m[1]) * 60 + Number(m[2]);
  return v >= 0 && v <= 1440 ? v : null;
}
