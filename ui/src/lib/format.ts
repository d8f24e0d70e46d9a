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

/** The UTC instant (RFC 3339) at the start or end of a local calendar day in `timeZone`. */
export function dayBoundUtc(day: string, timeZone: string, end: boolean): string {
  // Find the offset of the zone at that day's noon, then shift midnight by it.
  const noon = new Date(`${day}T12:00:00Z`);
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).formatToParts(noon);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const local = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"));
  const offset = local - noon.getTime();
  const midnight = Date.parse(`${day}T00:00:00Z`) - offset;
  return new Date(end ? midnight + 86_400_000 - 1 : midnight).toISOString();
}
