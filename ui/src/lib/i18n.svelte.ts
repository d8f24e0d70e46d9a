// The translator. Every string the UI shows goes through `t`. English is the
// reference; Russian and Thai must have every key (the type system and a test check).
import type { Language } from "./bindings";
import { en, type Key } from "./locales/en";
import { ru } from "./locales/ru";
import { th } from "./locales/th";

export type { Key };
export const dictionaries: Record<Language, Record<Key, string>> = { en, ru, th };
export const languages: Language[] = ["en", "ru", "th"];

const STORAGE_KEY = "clinicdesk.language";

function initial(): Language {
  const saved = typeof localStorage !== "undefined" ? localStorage.getItem(STORAGE_KEY) : null;
  return saved === "ru" || saved === "th" || saved === "en" ? saved : "en";
}

let current = $state<Language>(initial());

export function locale(): Language {
  return current;
}

/** BCP 47 tag for Intl formatting. */
export function intlLocale(): string {
  return { en: "en-GB", ru: "ru-RU", th: "th-TH" }[current];
}

export function setLocale(l: Language) {
  current = l;
  if (typeof localStorage !== "undefined") localStorage.setItem(STORAGE_KEY, l);
  if (typeof document !== "undefined") document.documentElement.lang = l;
}

export function translate(lang: Language, key: Key, params?: Record<string, string | number>): string {
  let s = dictionaries[lang][key] ?? en[key] ?? key;
  if (params) for (const [k, v] of Object.entries(params)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

export function t(key: Key, params?: Record<string, string | number>): string {
  return translate(current, key, params);
}

/** For keys built at run time (error codes, enum values): falls back to the raw value. */
export function tDyn(key: string, params?: Record<string, string | number>): string {
  return key in en ? t(key as Key, params) : key;
}
