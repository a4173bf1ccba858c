// A tiny element builder. Text is always set with textContent (product names, notices and
// messages come from outside and are never parsed as HTML).

import type { Cause } from './types';
import { ACTION_LABELS, causeForWindow, type CauseAction } from './causes';

/** What a cause's button does in this window (open the key or server window). */
export type Act = (action: CauseAction) => void;

type Attrs = Record<string, string | number | boolean | null | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = String(value);
    else if (name === 'text') el.textContent = String(value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

export function clear(el: Node): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

let uid = 0;
export function nextId(prefix: string): string {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A button; `onClick` runs on click (and so on Enter/Space, which browsers map to click). */
export function button(
  label: string,
  onClick: (ev: MouseEvent) => void,
  attrs: Attrs = {},
): HTMLButtonElement {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', onClick);
  return b;
}

/** Runs `task` with the button disabled and a busy label; restores it afterwards. */
export async function busy<T>(b: HTMLButtonElement, label: string, task: () => Promise<T>): Promise<T> {
  const before = b.textContent;
  const wasDisabled = b.disabled;
  b.disabled = true;
  b.setAttribute('aria-busy', 'true');
  b.textContent = label;
  try {
    return await task();
  } finally {
    b.textContent = before;
    b.disabled = wasDisabled;
    b.removeAttribute('aria-busy');
  }
}

/** A line under a message: plain text, or one of the engine's causes. */
export type Detail = string | Cause;

/**
 * A list of causes (or plain lines). Each cause's item carries its stable code in
 * `data-code`; its words are the window's (causes.ts): the engine's sentence, or for advice
 * that is a command to type, the gist and a button that does it (when `act` is given).
 */
export function causeList(detail: readonly Detail[], attrs: Record<string, string> = {}, act?: Act): HTMLElement {
  return h(
    'ul',
    { class: 'diagnosis', ...attrs },
    detail.map((d) => {
      if (typeof d === 'string') return h('li', {}, d);
      const shown = causeForWindow(d);
      const action = shown.action;
      return h(
        'li',
        { 'data-code': d.code },
        shown.text,
        action && act
          ? [' ', button(ACTION_LABELS[action], () => act(action), { class: 'link-button', 'data-action': action })]
          : null,
      );
    }),
  );
}

/**
 * A message area: an ARIA live region inside the view that carries results and errors.
 * Errors never go to alert(); they are said here, next to what caused them.
 */
export class Messages {
  readonly el: HTMLElement;
  constructor(
    label = 'Messages',
    private readonly act?: Act,
  ) {
    this.el = h('div', { class: 'messages', role: 'status', 'aria-live': 'polite', 'aria-label': label });
  }
  clear(): void {
    clear(this.el);
  }
  private say(tone: 'ok' | 'error' | 'info', text: string, detail?: readonly Detail[]): void {
    clear(this.el);
    const p = h('p', { class: `message message-${tone}` });
    if (tone === 'error') p.appendChild(h('span', { class: 'visually-hidden' }, 'Error: '));
    p.appendChild(document.createTextNode(text));
    this.el.appendChild(p);
    if (detail && detail.length) {
      this.el.appendChild(causeList(detail, {}, this.act));
    }
  }
  ok(text: string, detail?: readonly Detail[]): void {
    this.say('ok', text, detail);
  }
  info(text: string, detail?: readonly Detail[]): void {
    this.say('info', text, detail);
  }
  error(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    this.say('error', msg);
  }
}
