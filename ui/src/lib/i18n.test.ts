import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { dictionaries, languages, translate } from "./i18n.svelte";
import { en } from "./locales/en";

const HERE = dirname(fileURLToPath(import.meta.url));
const SRC = join(HERE, "..");
const bindings = readFileSync(join(HERE, "bindings.ts"), "utf8");

/** The string members of an exported union type in the generated bindings. */
function union(name: string): string[] {
  const m = bindings.match(new RegExp(`export type ${name} =([\\s\\S]*?);\\n`));
  if (!m) throw new Error(`type ${name} not in bindings`);
  return [...m[1].replace(/\/\*[\s\S]*?\*\//g, "").matchAll(/"([a-z_]+)"/g)].map((x) => x[1]);
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f: string) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(svelte|ts)$/.test(f) && !f.endsWith(".test.ts") && !p.includes("locales") && f !== "bindings.ts" ? [p] : [];
  });
}

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("translations", () => {
  it("every language has every key, non-empty, with the same placeholders", () => {
    const keys = Object.keys(en).sort();
    for (const lang of languages) {
      const dict = dictionaries[lang];
      expect(Object.keys(dict).sort(), `${lang} keys`).toEqual(keys);
      for (const k of keys) {
        const v = dict[k as keyof typeof en];
        expect(v.trim().length, `${lang}.${k} is empty`).toBeGreaterThan(0);
        expect(placeholders(v), `${lang}.${k} placeholders`).toEqual(placeholders(en[k as keyof typeof en]));
      }
    }
  });

  it("every key the source uses exists", () => {
    const missing: string[] = [];
    for (const file of sources(SRC)) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/\bt\(\s*"([a-z_.]+)"/g)) if (!(m[1] in en)) missing.push(`${file}: ${m[1]}`);
    }
    expect(missing).toEqual([]);
  });

  it("every value Rust can send has a translation", () => {
    const needed = [
      ...union("ErrorCode").map((c) => `error.${c}`),
      ...union("Reason").map((r) => `validation.${r}`),
      ...union("Role").map((r) => `role.${r}`),
      ...union("Screen").map((s) => `screen.${s}`),
      ...union("Permission").map((p) => `permission.${p}`),
      ...union("Language").map((l) => `language.${l}`),
      ...union("FieldName").map((f) => `field.${f}`),
      ...union("AppointmentStatus").map((x) => `status.${x}`),
      ...union("AppointmentKind").map((x) => `kind.${x}`),
      ...union("TicketStatus").map((x) => `ticket.${x}`),
      ...union("Priority").map((x) => `priority.${x}`),
      ...union("Sex").map((x) => `sex.${x}`),
      ...union("Severity").map((x) => `severity.${x}`),
      ...union("DoctorStatus").map((x) => `doctor_status.${x}`),
      ...union("ExceptionKind").map((x) => `exception.${x}`),
      ...union("DuplicateReason").map((x) => `duplicate.${x}`),
    ];
    expect(needed.length).toBeGreaterThan(40);
    expect(needed.filter((k) => !(k in en))).toEqual([]);
  });

  it("interpolates and falls back to English", () => {
    expect(translate("ru", "error.too_many_attempts", { seconds: 30 })).toContain("30");
    expect(translate("th", "home.greeting", { name: "สมชาย" })).toBe("สวัสดี คุณสมชาย");
  });
});
