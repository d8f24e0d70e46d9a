// What the window is showing: set-up, sign-in, or the signed-in app (possibly locked).
// Idle locking is decided in Rust; the UI mirrors it and tells Rust about activity.
import { api, onCommandFailure } from "./backend";
import type { AppInfo, Screen, SessionInfo, Status } from "./bindings";
import { setLocale } from "./i18n.svelte";

type Phase = "loading" | "setup" | "login" | "app";

const TOUCH_EVERY_MS = 30_000;
const CHECK_EVERY_MS = 5_000;

class AppState {
  phase = $state<Phase>("loading");
  info = $state<AppInfo | null>(null);
  session = $state<SessionInfo | null>(null);
  screen = $state<Screen>("home");
  /** The sync state, read every second by the shell (`refreshSync`) for the header, the
   * download panel and the Sync screen; null without permission or when it can't be read. */
  sync = $state<Status | null>(null);
  #lastInput = Date.now();
  #lastTouch = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  async start() {
    onCommandFailure((e) => {
      if (e.code === "session_locked" && this.session) this.session.locked = true;
      if (e.code === "not_authenticated" && this.phase === "app") this.signedOut();
    });
    this.info = await api.appInfo();
    if (!this.info.initialized) {
      this.phase = "setup";
      return;
    }
    try {
      this.signedIn(await api.sessionInfo());
    } catch {
      this.phase = "login";
    }
  }

  /** Reads the sync state again (kept as it was while the session is locked). */
  async refreshSync() {
    if (!this.session?.permissions.includes("sync_status") || this.session.locked) return;
    try {
      this.sync = await api.syncStatus();
    } catch {
      this.sync = null;
    }
  }

  setupDone() {
    this.phase = "login";
  }

  /** After a change to the signed-in person (roles, name, language): show what now holds. */
  async refreshSession() {
    const s = await api.sessionInfo();
    this.session = s;
    setLocale(s.language);
    if (!s.screens.includes(this.screen)) this.screen = "home";
  }

  signedIn(s: SessionInfo) {
    this.session = s;
    setLocale(s.language);
    if (!s.screens.includes(this.screen)) this.screen = "home";
    this.phase = "app";
    this.#watchIdle();
  }

  signedOut() {
    this.session = null;
    this.sync = null;
    this.phase = "login";
    this.screen = "home";
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  async logout() {
    try {
      await api.logout();
    } finally {
      this.signedOut();
    }
  }

  async lock() {
    await api.lock();
    if (this.session) this.session.locked = true;
  }

  unlocked(s: SessionInfo) {
    this.session = s;
    this.#lastInput = Date.now();
  }

  #watchIdle() {
    if (this.#timer || typeof window === "undefined") return;
    const mark = () => (this.#lastInput = Date.now());
    for (const ev of ["keydown", "mousedown", "mousemove", "wheel", "touchstart"]) {
      window.addEventListener(ev, mark, { passive: true });
    }
    this.#timer = setInterval(() => void this.#checkIdle(), CHECK_EVERY_MS);
  }

  async #checkIdle() {
    const s = this.session;
    if (!s || s.locked) return;
    const now = Date.now();
    if (now - this.#lastInput > s.idle_lock_minutes * 60_000) {
      await this.lock().catch(() => {});
    } else if (this.#lastInput > this.#lastTouch && now - this.#lastTouch > TOUCH_EVERY_MS) {
      this.#lastTouch = now;
      await api.sessionTouch().catch(() => {});
    }
  }
}

export const app = new AppState();
