/**
 * The outcome of a screen's actions: the last error, a success notice, and whether one is
 * running. One per screen, so every screen reports a command's result the same way.
 */
export class Outcome {
  error = $state<unknown>(null);
  notice = $state("");
  busy = $state(false);

  private readonly reload?: () => Promise<unknown>;

  /** `reload` runs after every action that worked (usually the screen's load). */
  constructor(reload?: () => Promise<unknown>) {
    this.reload = reload;
  }

  clear() {
    this.error = null;
    this.notice = "";
  }

  /** Runs `action`; on success shows `done` and reloads. True when it worked. */
  async run(action: () => Promise<unknown>, done: string): Promise<boolean> {
    this.clear();
    this.busy = true;
    try {
      await action();
      this.notice = done;
      await this.reload?.();
      return true;
    } catch (e) {
      this.error = e;
      return false;
    } finally {
      this.busy = false;
    }
  }
}
