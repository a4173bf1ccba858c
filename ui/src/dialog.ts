// What every dialog window shares: Escape closes it, a long wait shows its progress with a
// Cancel that stops waiting, and a result sits at the top with a Done button that closes the
// window. The views pass in how to close (the `close_window` command), so this module calls
// no command itself.
import { button, clear, h, type Messages } from './dom';

/** Escape closes the window, unless something inside (a confirmation) took the key first. */
export function closeOnEscape(close: () => void): void {
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || ev.defaultPrevented || ev.isComposing) return;
    ev.preventDefault();
    close();
  });
}

/** How a wait ended. */
export type Waited<T> =
  | { kind: 'done'; value: T }
  | { kind: 'failed'; error: unknown }
  | { kind: 'cancelled' };

/** Whole seconds as a person reads them: “4 s”, “1 min 5 s”. */
export function elapsedWords(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** The sentence for a wait the person stopped: the command could not be called back. */
export const STOPPED_WAITING =
  'Stopped waiting. The attempt continues in the background; its result will show in Products.';

/**
 * Shows `text`, an indeterminate progress bar, the time elapsed and a Cancel button in `host`
 * while `task` runs. Cancel stops the waiting, not the task (a command cannot be called
 * back): its late answer is dropped.
 */
export async function withProgress<T>(host: HTMLElement, text: string, task: Promise<T>): Promise<Waited<T>> {
  const started = Date.now();
  const elapsed = h('span', { class: 'elapsed', id: 'progress-elapsed' }, elapsedWords(0));
  let cancel: () => void = () => {};
  const cancelled = new Promise<Waited<T>>((resolve) => {
    cancel = () => resolve({ kind: 'cancelled' });
  });
  const stop = button('Cancel', () => cancel(), { id: 'cancel-wait' });
  const box = h(
    'div',
    { class: 'progress', role: 'group', 'aria-label': 'Progress' },
    h('p', { class: 'progress-text', role: 'status' }, text),
    h('div', { class: 'progress-row' }, h('progress', { 'aria-label': text }), elapsed, stop),
  );
  clear(host);
  host.appendChild(box);
  host.hidden = false;
  const timer = window.setInterval(() => {
    elapsed.textContent = elapsedWords(Date.now() - started);
  }, 1000);
  try {
    return await Promise.race<Waited<T>>([
      task.then(
        (value): Waited<T> => ({ kind: 'done', value }),
        (error: unknown): Waited<T> => ({ kind: 'failed', error }),
      ),
      cancelled,
    ]);
  } finally {
    window.clearInterval(timer);
    clear(host);
    host.hidden = true;
  }
}

/**
 * The top of a dialog: where progress and results appear, in view without scrolling, with
 * Done (closes the window) once there is a result.
 */
export class ResultArea {
  readonly el: HTMLElement;
  readonly progress: HTMLElement;
  private readonly actions: HTMLElement;
  readonly done: HTMLButtonElement;

  constructor(
    readonly messages: Messages,
    close: () => void,
  ) {
    this.progress = h('div', { class: 'progress-host', hidden: true });
    this.done = button('Done', () => close(), { class: 'primary', id: 'done' });
    this.actions = h('div', { class: 'actions result-actions', hidden: true });
    this.el = h('div', { class: 'result-area', id: 'result' }, this.progress, messages.el, this.actions);
  }

  /** Offers Done (focused) and `more` under the result. */
  finish(...more: HTMLButtonElement[]): void {
    clear(this.actions);
    this.actions.append(this.done, ...more);
    this.actions.hidden = false;
    this.el.scrollIntoView?.({ block: 'nearest' });
    this.done.focus();
  }

  /** Takes the result and its buttons away. */
  reset(): void {
    this.messages.clear();
    clear(this.actions);
    this.actions.hidden = true;
  }
}
