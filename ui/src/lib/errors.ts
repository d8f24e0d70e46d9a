// Human messages for failed commands, from the stable code and its params.
import { CommandError } from "./backend";
import { tDyn, t } from "./i18n.svelte";

export function describe(e: unknown): string {
  if (!(e instanceof CommandError)) return t("error.internal");
  if (e.code === "validation") {
    const field = e.params.field ? tDyn(`field.${e.params.field}`) : "";
    return tDyn(`validation.${e.params.reason}`, { field, limit: e.params.limit ?? "" });
  }
  // The sync server's refusals, by the server's own code.
  if (e.code === "server" && e.params.code) return tDyn(`sync_server.${e.params.code}`);
  const params: Record<string, string> = { ...e.params };
  if (e.params.field) params.field = tDyn(`field.${e.params.field}`);
  if (e.params.permission) params.permission = tDyn(`permission.${e.params.permission}`);
  if (e.params.entity) params.entity = tDyn(`entity.${e.params.entity}`);
  return tDyn(`error.${e.code}`, params);
}

/** The form field an error belongs to, so the form can mark it. */
export function errorField(e: unknown): string | null {
  return e instanceof CommandError && (e.code === "validation" || e.code === "duplicate") ? (e.params.field ?? null) : null;
}
