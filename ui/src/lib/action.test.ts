import { describe, expect, it } from "vitest";
import { Outcome } from "./action.svelte";

describe("Outcome", () => {
  it("shows the notice and reloads after an action that worked", async () => {
    let reloads = 0;
    const out = new Outcome(async () => void reloads++);
    out.error = new Error("an earlier failure");
    expect(await out.run(async () => 1, "Saved")).toBe(true);
    expect(out.notice).toBe("Saved");
    expect(out.error).toBeNull();
    expect(out.busy).toBe(false);
    expect(reloads).toBe(1);
  });

  it("keeps the error, shows no notice and doesn't reload when the action fails", async () => {
    let reloads = 0;
    const out = new Outcome(async () => void reloads++);
    out.notice = "an earlier success";
    const failure = new Error("slot_taken");
    let busyDuring = false;
    const ok = await out.run(async () => {
      busyDuring = out.busy;
      throw failure;
    }, "Saved");
    expect(ok).toBe(false);
    expect(busyDuring).toBe(true);
    expect(out.error).toBe(failure);
    expect(out.notice).toBe("");
    expect(out.busy).toBe(false);
    expect(reloads).toBe(0);
  });
});
