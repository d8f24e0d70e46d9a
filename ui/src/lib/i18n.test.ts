import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { dictionaries, languages, translate } from "./i18n.svelte";
import { en } from "./locales/en";

const HERE = dirname(fileURLToPath(import.meta.url));
const SRC = join(HERE, "..");
const bindings = readFileSync(join(HERE, "bindings.ts"), "utf8");

/** Every exported type in the generated bindings, by name, with its definition. */
function exportedTypes(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of bindings.matchAll(/export type (\w+) =([\s\S]*?);\n(?=\n|export|\/\*|$)/g)) {
    out.set(m[1], m[2].replace(/\/\*[\s\S]*?\*\//g, ""));
  }
  return out;
}

/** Members of a union of string literals (`"a" | "b"`), or null for any other type. */
function stringUnion(def: string): string[] | null {
  const parts = def.split("|").map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0 || !parts.every((p) => /^"[a-z0-9_]+"$/.test(p))) return null;
  return parts.map((p) => p.slice(1, -1));
}

const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();

/**
 * The translation keys Rust can make the UI show, read off the bindings so that nothing is
 * listed by hand: a domain's `…Field` enum is labelled `field.<name>`, its `…Table` enum
 * `entity.<name>`, the codes of `ErrorCode` and of each `…Error` type are `error.<code>`,
 * and every other enum of strings is `<type in snake_case>.<value>` (`TicketStatus` →
 * `ticket_status.waiting`, `Validation` → `validation.too_short`).
 */
export function rustKeys(): string[] {
  const keys: string[] = [];
  for (const [name, def] of exportedTypes()) {
    if (name.endsWith("Error") && name !== "ApiError") {
      for (const m of def.matchAll(/code: "([a-z_]+)"/g)) keys.push(`error.${m[1]}`);
      continue;
    }
    const values = stringUnion(def);
    if (!values) continue;
    const prefix = name === "ErrorCode" ? "error" : name.endsWith("Field") ? "field" : name.endsWith("Table") ? "entity" : snake(name);
    keys.push(...values.map((v) => `${prefix}.${v}`));
  }
  return keys;
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
    const needed = rustKeys();
    // The reading of the bindings finds what it must: each kind of name, from several domains.
    for (const k of ["error.internal", "error.slot_taken", "error.last_admin", "field.given_name", "field.licence_number",
      "entity.patients", "entity.staff", "validation.too_short", "ticket_status.waiting", "role.admin", "clash.patient"]) {
      expect(needed, k).toContain(k);
    }
    expect(needed.filter((k) => !(k in en))).toEqual([]);
  });

  it("every error code the UI branches on is one Rust sends", () => {
    const codes = new Set(rustKeys().filter((k) => k.startsWith("error.")).map((k) => k.slice(6)));
    const used: string[] = [];
    for (const file of sources(SRC)) {
      for (const m of readFileSync(file, "utf8").matchAll(/\bcode\s*!?===?\s*"([a-z_]+)"/g)) used.push(m[1]);
    }
    expect(used.length).toBeGreaterThan(3);
    expect(used.filter((c) => !codes.has(c))).toEqual([]);
  });

  it("interpolates and falls back to English", () => {
    expect(translate("ru", "error.too_many_attempts", { seconds: 30 })).toContain("30");
    expect(translate("th", "home.greeting", { name: "สมชาย" })).toBe("สวัสดี คุณสมชาย");
  });
});
