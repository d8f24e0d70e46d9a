// Focus for a field that opens with a form. Not the `autofocus` attribute: WebKit may apply
// that later, when the window is first shown or activated, and then pulls the focus away from
// whatever the person (or a test) is already typing in; the keys after that moment land at
// the start of the autofocused field ("mo" + "admin" = "moadmin" at sign-in, with the tail of
// a password). This focuses once, right after the element is mounted, and only if nothing
// else has the focus yet.

export function focusOnMount(node: HTMLElement, enabled: boolean | "always" = true): void {
  if (!enabled) return;
  queueMicrotask(() => {
    const active = document.activeElement;
    // "always": a modal (the lock screen) takes the focus from whatever had it.
    if (node.isConnected && (enabled === "always" || active === null || active === document.body)) node.focus();
  });
}
