import type { ViewContext } from '../main';
import { ipc, IpcError } from '../ipc';
import { button, busy, clear, h, Messages } from '../dom';
import { closeOnEscape, ResultArea, STOPPED_WAITING, withProgress } from '../dialog';
import { sourceWords } from '../format';
import type { BatchResult, ProductStatus, ServerInfo } from '../types';
import { header, row, section } from './common';

const CHECK_DELAY_MS = 250;

/** The sentence for a locked policy (kept in one place: the tests look for it). */
export function policySentence(server: string | null): string {
  return server
    ? `Your administrator set the server to ${server}; it cannot be changed here.`
    : 'Your administrator locked the server setting; it cannot be changed here.';
}

/** The product's name (a person reads names, not ids); the id when it cannot be read. */
async function productName(product: string, messages: Messages): Promise<ProductStatus | null> {
  try {
    return (await ipc.status()).find((p) => p.id === product) ?? null;
  } catch (e) {
    messages.error(e);
    return null;
  }
}

/** The server the next attempt tries first, as far as this window knows. */
function firstServer(info: ServerInfo | null): string | null {
  if (!info) return null;
  return info.product_override ?? info.global_override ?? info.candidates[0]?.address ?? null;
}

export async function serverView({ root, product }: ViewContext): Promise<void> {
  const close = (): void => {
    ipc.closeWindow().catch((e) => messages.error(e));
  };
  const messages = new Messages('Server messages', (action) => {
    if (action === 'key' && product) ipc.openWindow('key', product).catch((e) => messages.error(e));
  });
  const result = new ResultArea(messages, close);
  const head = header('License server', product ? null : 'Every product (global setting)');
  root.append(head, result.el);
  closeOnEscape(close);
  const named = product ? await productName(product, messages) : null;
  const name = named?.name ?? product;
  const scope = product ? `for ${name}` : 'for every product';
  if (product) {
    head.querySelector('.titles')?.appendChild(h('p', { class: 'subtitle' }, `${name}${named?.vendor ? ` · ${named.vendor}` : ''}`));
    document.title = `Server: ${name} — Lapwing`;
  }

  const lockNote = h('p', { class: 'message message-locked', id: 'policy-lock', hidden: true });
  const current = h('dl', { class: 'facts' });

  const input = h('input', {
    id: 'server-input',
    type: 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'lap.example.com:4711',
    'aria-describedby': 'server-help server-feedback',
    'aria-invalid': 'false',
  });
  const feedback = h('p', { id: 'server-feedback', class: 'feedback', 'aria-live': 'polite' });
  const save = button('Save', () => void doSave(), { class: 'primary', id: 'server-save' });
  const clearBtn = button('Clear', () => void doClear(), { id: 'server-clear' });
  const tryNow = button('Try now', () => void doTry(), { id: 'server-try' });
  const form = h(
    'form',
    { class: 'server-form', novalidate: true },
    h('label', { for: 'server-input' }, product ? 'Server for this product' : 'Server for every product'),
    h('div', { class: 'input-row' }, input, save, clearBtn),
    h('p', { id: 'server-help', class: 'help' },
      'HOST:PORT, e.g. lap.example.com:4711 or 192.0.2.10:4711 or [2001:db8::1]:4711. Clear to find the server automatically.'),
    feedback,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!save.disabled) void doSave();
  });

  const candidates = h('div', { class: 'discovery' });

  root.append(
    lockNote,
    section(`Override ${scope}`, 'override-title', current, form),
    h('div', { class: 'actions footer-actions' }, tryNow),
    section('What discovery found', 'found-title', candidates),
  );

  let info: ServerInfo | null = null;
  let seq = 0;
  let timer: number | undefined;

  function render(next: ServerInfo): void {
    info = next;
    clear(current);
    current.append(
      ...row('This product', product ? next.product_override ?? 'not set' : null),
      ...row('Every product', next.global_override ?? 'not set'),
      ...row('Machine policy', next.policy_server ? `${next.policy_server}${next.policy_locked ? ' (locked)' : ''}` : 'none'),
      ...row(
        'Provisioned',
        next.through
          ? `through ${next.through} (set up by your administrator; only that server can answer for this product)`
          : null,
      ),
    );
    const locked = next.policy_locked;
    lockNote.hidden = !locked;
    lockNote.textContent = locked ? policySentence(next.policy_server) : '';
    input.disabled = locked;
    save.disabled = locked;
    clearBtn.disabled = locked || (product ? next.product_override === null : next.global_override === null);
    if (locked) input.setAttribute('aria-describedby', 'policy-lock server-help');
    else input.setAttribute('aria-describedby', 'server-help server-feedback');

    clear(candidates);
    if (next.candidates.length === 0) {
      candidates.appendChild(h('p', { class: 'muted' }, 'No server found. Set one above, or ask your administrator.'));
    } else {
      candidates.appendChild(
        h(
          'table',
          { class: 'table' },
          h('caption', { class: 'visually-hidden' }, 'Servers in the order they are tried'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, '#'), h('th', { scope: 'col' }, 'Address'),
            h('th', { scope: 'col' }, 'Found by'), h('th', { scope: 'col' }, 'Detail'))),
          h('tbody', {}, next.candidates.map((c, i) =>
            h('tr', {}, h('td', { class: 'num' }, String(i + 1)),
              h('td', {}, h('code', {}, c.address), c.host && c.host !== c.address.replace(/:\d+$/, '') ? h('span', { class: 'muted' }, ` ${c.host}`) : null),
              h('td', {}, sourceWords(c.source)), h('td', {}, c.detail)))),
        ),
      );
    }
    if (next.skipped.length) {
      candidates.appendChild(h('h3', {}, 'Skipped'));
      candidates.appendChild(
        h('ul', { class: 'skipped' }, next.skipped.map((s) =>
          h('li', {}, h('strong', {}, sourceWords(s.source)), ' ', h('code', {}, s.subject), `: ${s.reason}`))),
      );
    }
  }

  function showValidity(ok: boolean | null, text: string): void {
    feedback.textContent = text;
    feedback.className = ok === null ? 'feedback' : ok ? 'feedback ok' : 'feedback error';
    input.setAttribute('aria-invalid', ok === false ? 'true' : 'false');
  }

  /** true: valid, false: refused (said inline), null: superseded or empty. */
  async function check(): Promise<boolean | null> {
    window.clearTimeout(timer);
    const text = input.value.trim();
    const mine = ++seq;
    if (text === '') {
      showValidity(null, '');
      return null;
    }
    try {
      await ipc.checkServer(text);
      if (mine !== seq) return null;
      showValidity(true, `${text} looks right.`);
      return true;
    } catch (e) {
      if (mine !== seq) return null;
      if (e instanceof IpcError && (e.kind === 'bad-server' || e.kind === 'invalid-input')) {
        showValidity(false, e.message);
        return false;
      }
      showValidity(null, '');
      messages.error(e);
      return false;
    }
  }

  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void check(), CHECK_DELAY_MS);
  });

  async function doSave(): Promise<void> {
    const text = input.value.trim();
    if (text === '') {
      showValidity(false, 'Enter a server as HOST:PORT, or use Clear to find it automatically.');
      input.focus();
      return;
    }
    await busy(save, 'Saving…', async () => {
      result.reset();
      const ok = await check();
      if (!ok) {
        input.focus();
        return;
      }
      try {
        render(await ipc.setServer(product, text));
        input.value = '';
        showValidity(null, '');
        messages.ok(`Saved: ${text} is now the server ${scope}.`);
        result.finish();
      } catch (e) {
        messages.error(e);
      }
    });
    if (info?.policy_locked) save.disabled = true;
  }

  async function doClear(): Promise<void> {
    await busy(clearBtn, 'Clearing…', async () => {
      result.reset();
      try {
        render(await ipc.setServer(product, null));
        messages.ok(`Cleared: the server ${scope} is found automatically again.`);
        result.finish();
      } catch (e) {
        messages.error(e);
      }
    });
    if (info) clearBtn.disabled = info.policy_locked || (product ? info.product_override === null : info.global_override === null);
  }

  async function doTry(): Promise<void> {
    result.reset();
    tryNow.disabled = true;
    const first = firstServer(info);
    const text = product
      ? first ? `Activating ${name}: trying ${first}…` : `Activating ${name}…`
      : 'Activating every product…';
    const attempt: Promise<ProductStatus | BatchResult> = product ? ipc.activate(product) : ipc.activateAll();
    const waited = await withProgress(result.progress, text, attempt);
    tryNow.disabled = false;
    if (waited.kind === 'failed') {
      messages.error(waited.error);
      return;
    }
    if (waited.kind === 'cancelled') {
      messages.info(STOPPED_WAITING);
    } else if ('result' in waited.value) {
      // Counted in Rust from each attempt's outcome: an attempt not sent is not "activated".
      const batch = waited.value;
      messages.info(batch.result.message, batch.products.map((p) => `${p.name}: ${p.line}`));
    } else {
      const p = waited.value;
      const d = p.last_attempt?.diagnosis ?? [];
      // This attempt's outcome, not the phase: not sent after an earlier activation is no
      // success; activated past a silent override is said, not "ok".
      if (p.last_attempt?.outcome === 'activated' && d.length === 0) messages.ok(p.line, d);
      else messages.info(p.line, d);
    }
    result.finish();
  }

  // `lapctl server set/clear` or another window while this one is open: show what holds now.
  let reads = 0;
  async function reread(): Promise<void> {
    const mine = ++reads;
    try {
      const next = await ipc.serverInfo(product);
      if (mine === reads) render(next);
    } catch (e) {
      messages.error(e);
    }
  }
  ipc.onStoredChanged(() => void reread()).catch((e) => messages.error(e));

  try {
    render(await ipc.serverInfo(product));
  } catch (e) {
    messages.error(e);
  }
  if (!input.disabled) input.focus();
}
