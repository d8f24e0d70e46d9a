// The one door to Rust. Every call goes through the generated `commands`; a failure
// comes back as a `CommandError` carrying the command's name and the stable code.
import { commands, type ApiError } from "./bindings";

export class CommandError extends Error {
  readonly command: string;
  /** A code from `ErrorCode` or a domain's `…Error` type in the bindings (a test checks
   * that every code the UI compares against is one of them). */
  readonly code: string;
  readonly params: Record<string, string>;

  constructor(command: string, e: ApiError) {
    super(`${command}: ${e.message}`);
    this.command = command;
    this.code = e.code;
    this.params = e.params ?? {};
  }
}

function isApiError(e: unknown): e is ApiError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** Turns whatever a rejected call produced into a CommandError. */
export function toCommandError(command: string, e: unknown): CommandError {
  if (e instanceof CommandError) return e;
  if (isApiError(e)) return new CommandError(command, e);
  // Framework-level failures (unknown command, bad argument, ACL) reject with a string.
  return new CommandError(command, { code: "internal", message: String(e), params: {} });
}

type Commands = typeof commands;

/** Listeners for failures every screen must react to the same way (a locked session). */
const failureListeners = new Set<(e: CommandError) => void>();
export function onCommandFailure(f: (e: CommandError) => void): () => void {
  failureListeners.add(f);
  return () => failureListeners.delete(f);
}

export function wrap(target: Commands): Commands {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(target)) {
    out[name] = async (...args: unknown[]) => {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (e) {
        const err = toCommandError(name, e);
        for (const l of failureListeners) l(err);
        throw err;
      }
    };
  }
  return out as Commands;
}

export const api: Commands = wrap(commands);
