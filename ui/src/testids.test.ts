// Every interactive element the screens draw carries a data-testid, so E2E tests (and
// anyone reading a screenshot) can name it. Third-party widgets (the calendar) are outside.
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

describe("data-testid", () => {
  const files = svelteFiles(join(__dirname));

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
