// A tiny element builder. Text is always set with textContent (product names, notices and
// messages come from outside and are never parsed as HTML).

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

/**
 * A message area: an ARIA live region inside the view that carries results and errors.
 * Errors never go to alert(); they are said here, next to what caused them.
 */
export class Messages {
  readonly el: HTMLElement;
  constructor(label = 'Messages') {
    this.el = h('div', { class: 'messages', role: 'status', 'aria-live': 'polite', 'aria-label': label });
  }
  clear(): void {
    clear(this.el);
  }
  private say(tone: 'ok' | 'error' | 'info', text: string, detail?: string[]): void {
    clear(this.el);
    const p = h('p', { class: `message message-${tone}` });
    if (tone === 'error') p.appendChild(h('span', { class: 'visually-hidden' }, 'Error: '));
    p.appendChild(document.createTextNode(text));
    this.el.appendChild(p);
    if (detail && detail.length) {
      this.el.appendChild(h('ul', { class: 'diagnosis' }, detail.map((d) => h('li', {}, d))));
    }
  }
  ok(text: string, detail?: string[]): void {
    this.say('ok', text, detail);
  }
  info(text: string, detail?: string[]): void {
    this.say('info', text, detail);
  }
  error(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    this.say('error', msg);
  }
}
