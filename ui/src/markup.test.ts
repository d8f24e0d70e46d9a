// Checks on the components' markup: every interactive element carries a data-testid (so
// E2E tests can name it), and no words are written into the markup instead of through t().
// Third-party widgets (the calendar) are outside.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const INTERACTIVE = /<(button|input|select|textarea|a)[\s>]/g;

/** The text of the start tag beginning at `from`, skipping `>` inside quotes and `{…}`. */
function startTag(src: string, from: number): string {
  let depth = 0;
  let quote = "";
  for (let i = from + 1; i < src.length; i++) {
    const c = src[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'" || c === "`") {
      if (depth === 0) quote = c;
    } else if (c === "{") depth++;
    else if (c === "}") depth--;
    else if (c === ">" && depth === 0) return src.slice(from, i + 1);
  }
  return src.slice(from);
}

function svelteFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? svelteFiles(join(dir, e.name)) : e.name.endsWith(".svelte") ? [join(dir, e.name)] : [],
  );
}

/** Text between tags that is written literally (outside `{…}`), scripts and styles removed. */
function literalText(src: string): string[] {
  const markup = src.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>|<!--[\s\S]*?-->/g, "");
  const out: string[] = [];
  let text = "";
  let i = 0;
  while (i < markup.length) {
    const c = markup[i];
    if (c === "<") {
      out.push(text);
      text = "";
      i += startTag(markup, i).length;
    } else if (c === "{") {
      let depth = 0;
      do {
        if (markup[i] === "{") depth++;
        else if (markup[i] === "}") depth--;
        i++;
      } while (depth > 0 && i < markup.length);
    } else {
      text += c;
      i++;
    }
  }
  out.push(text);
  return out.map((t) => t.trim()).filter((t) => /\p{L}/u.test(t));
}

/** Words that are the same in every language: the product's name and key names. */
const UNTRANSLATED = /^(ClinicDesk|Alt\+[A-Z]?)$/;

const files = svelteFiles(join(__dirname));

describe("data-testid", () => {
  it("finds the screens", () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it("is on every button, input, select, textarea and link", () => {
    const missing: string[] = [];
    for (const f of files) {
      const src = readFileSync(f, "utf8");
      for (const m of src.matchAll(INTERACTIVE)) {
        const tag = startTag(src, m.index);
        if (!tag.includes("data-testid")) {
          missing.push(`${f}:${src.slice(0, m.index).split("\n").length} ${tag.slice(0, 80)}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it("reads a tag whose handler contains an arrow", () => {
    const tag = startTag(`<button onclick={() => (x = 1)} data-testid="b">Go</button>`, 0);
    expect(tag).toContain('data-testid="b"');
  });
});

describe("translated markup", () => {
  it("has no literal words outside t()", () => {
    const literal = files.flatMap((f) =>
      literalText(readFileSync(f, "utf8"))
        .filter((t) => !UNTRANSLATED.test(t))
        .map((t) => `${f}: ${t.slice(0, 60)}`),
    );
    expect(literal).toEqual([]);
  });

  it("finds a literal word and skips expressions", () => {
    expect(literalText(`<p class="a">{t("x")} · <b>Save</b></p>`)).toEqual(["Save"]);
  });
});

describe("focus", () => {
  it("never uses the autofocus attribute (WebKit may apply it late and steal typed keys)", () => {
    const offenders = files.filter((f) => /\sautofocus[\s=>/]/.test(readFileSync(f, "utf8"))).map((f) => f);
    expect(offenders).toEqual([]);
  });
});
