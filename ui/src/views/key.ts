import type { ViewContext } from '../main';
import { ipc } from '../ipc';
import { button, busy, clear, h, Messages } from '../dom';
import { describeKeyError, differences, formatKeyField, GROUP_CHARS, keyGroups, normalizeKeyInput } from '../keys';
import type { KeyCheck, ProductStatus } from '../types';
import { header, section } from './common';
import { badge } from './products';

const CHECK_DELAY_MS = 180;
const REVEAL_MS = 30_000;

export async function keyView({ root, product }: ViewContext): Promise<void> {
  const id = product as string;
  const messages = new Messages('Key messages');
  const head = header('License key', id);
  root.append(head);

  // --- the stored key, masked -------------------------------------------------------------
  const stored = h('code', { class: 'key-text', id: 'stored-key' });
  const storedNote = h('p', { class: 'muted' });
  let revealTimer: number | undefined;
  const show = button('Show', () => void toggleReveal(), { 'aria-pressed': 'false', 'aria-controls': 'stored-key' });
  const removeMessages = new Messages('Remove key messages');
  const remove = button('Remove key…', () => askRemove());
  const confirmBox = h('div', { class: 'confirm', hidden: true, role: 'group', 'aria-label': 'Confirm removal' });
  const storedRow = h('div', { class: 'stored-row' }, stored, show, remove);

  async function loadMasked(): Promise<void> {
    hideReveal();
    try {
      const masked = await ipc.keyMasked(id);
      if (masked === null) {
        stored.textContent = '';
        storedRow.hidden = true;
        storedNote.textContent = 'No key is stored: the product runs as an evaluation if its vendor offers one.';
      } else {
        stored.textContent = masked;
        stored.dataset.masked = masked;
        storedRow.hidden = false;
        storedNote.textContent = 'Only the last group is shown. Show reveals the whole key in this window.';
      }
    } catch (e) {
      removeMessages.error(e);
    }
  }

  function hideReveal(): void {
    if (revealTimer !== undefined) window.clearTimeout(revealTimer);
    revealTimer = undefined;
    if (show.getAttribute('aria-pressed') === 'true') {
      stored.textContent = stored.dataset.masked ?? '';
      show.textContent = 'Show';
      show.setAttribute('aria-pressed', 'false');
    }
  }

  async function toggleReveal(): Promise<void> {
    if (show.getAttribute('aria-pressed') === 'true') {
      hideReveal();
      return;
    }
    try {
      const full = await ipc.revealKey(id);
      if (full === null) return loadMasked();
      stored.textContent = full;
      show.textContent = 'Hide';
      show.setAttribute('aria-pressed', 'true');
      revealTimer = window.setTimeout(hideReveal, REVEAL_MS);
    } catch (e) {
      removeMessages.error(e);
    }
  }

  function askRemove(): void {
    clear(confirmBox);
    const yes = button('Remove', () => {
      void busy(yes, 'Removing…', async () => {
        try {
          const status = await ipc.removeKey(id);
          closeConfirm(false);
          await loadMasked();
          removeMessages.ok(`Key removed. ${status.line}`);
          storedNote.focus();
        } catch (e) {
          removeMessages.error(e);
        }
      });
    }, { class: 'danger' });
    const no = button('Cancel', () => closeConfirm(true));
    confirmBox.append(
      h('p', {}, 'Remove the stored key? The product falls back to an evaluation, or stops working if it has none.'),
      h('div', { class: 'actions' }, yes, no),
    );
    confirmBox.hidden = false;
    no.focus();
  }

  function closeConfirm(refocus: boolean): void {
    confirmBox.hidden = true;
    clear(confirmBox);
    if (refocus) remove.focus();
  }
  confirmBox.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      closeConfirm(true);
    }
  });
  storedNote.tabIndex = -1;

  root.append(
    section('Stored key', 'stored-title', storedNote, storedRow, confirmBox, removeMessages.el),
  );

  // --- entering a key ----------------------------------------------------------------------
  const input = h('input', {
    id: 'key-input',
    class: 'key-input',
    type: 'text',
    autocomplete: 'off',
    autocapitalize: 'characters',
    spellcheck: 'false',
    inputmode: 'text',
    placeholder: 'XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX',
    'aria-describedby': 'key-help key-feedback',
    'aria-invalid': 'false',
  });
  const strip = h('div', { class: 'key-strip', 'aria-hidden': 'true' });
  const feedback = h('p', { id: 'key-feedback', class: 'feedback', 'aria-live': 'polite' });
  const suggestionBox = h('div', { class: 'suggestions', role: 'group', 'aria-label': 'Suggested keys', hidden: true });
  const activate = button('Activate', () => void doActivate(), { class: 'primary', disabled: true, id: 'activate-key' });
  const form = h(
    'form',
    { class: 'key-form', novalidate: true },
    h('label', { for: 'key-input' }, 'License key'),
    input,
    h('p', { id: 'key-help', class: 'help' },
      '28 characters in 7 groups of 4. Paste it as it is: spaces, dashes and line breaks are ignored.'),
    strip,
    feedback,
    suggestionBox,
    h('div', { class: 'actions' }, activate),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!activate.disabled) void doActivate();
  });
  root.append(section('Enter or correct the key', 'enter-title', form, messages.el));

  let current: KeyCheck | null = null;
  let seq = 0;
  let timer: number | undefined;

  function renderStrip(normalized: string, marks: number[]): void {
    clear(strip);
    const groups = keyGroups(normalized);
    const markSet = new Set(marks);
    groups.forEach((g, gi) => {
      const cell = h('span', { class: 'key-group' });
      const chars = Array.from(g);
      if (chars.length < GROUP_CHARS && gi < 7) cell.classList.add('partial');
      if (gi >= 7) cell.classList.add('extra');
      for (let ci = 0; ci < GROUP_CHARS; ci++) {
        const ch = chars[ci];
        const pos = gi * GROUP_CHARS + ci;
        const span = h('span', { class: ch === undefined ? 'slot blank' : 'slot' }, ch ?? '·');
        if (markSet.has(pos)) {
          span.classList.add('bad');
          cell.classList.add('bad');
        }
        cell.appendChild(span);
      }
      strip.appendChild(cell);
    });
  }

  function setSuggestions(list: string[], typed: string): void {
    clear(suggestionBox);
    suggestionBox.hidden = list.length === 0;
    if (!list.length) return;
    suggestionBox.appendChild(h('span', { class: 'muted' }, list.length === 1 ? 'Did you mean' : 'Did you mean one of'));
    for (const s of list) {
      const diff = new Set(differences(typed, s));
      const b = h('button', { type: 'button', class: 'suggestion', 'aria-label': `Use ${s}` });
      let i = 0;
      for (const ch of s) {
        if (ch === '-') {
          b.appendChild(document.createTextNode('-'));
          continue;
        }
        b.appendChild(diff.has(i) ? h('mark', {}, ch) : document.createTextNode(ch));
        i++;
      }
      b.addEventListener('click', () => {
        setField(s);
        void runCheck();
        input.focus();
      });
      suggestionBox.appendChild(b);
    }
  }

  function show_(check: KeyCheck | null, normalized: string): void {
    current = check;
    if (!check || normalized === '') {
      input.setAttribute('aria-invalid', 'false');
      feedback.textContent = '';
      feedback.className = 'feedback';
      setSuggestions([], '');
      renderStrip(normalized, []);
      activate.disabled = true;
      return;
    }
    if (check.valid) {
      input.setAttribute('aria-invalid', 'false');
      feedback.className = 'feedback ok';
      feedback.textContent = check.evaluation
        ? 'This is the all-zero “no key” form: the product runs as an evaluation.'
        : 'The key is well formed. Activate to send it to the license server.';
      setSuggestions([], '');
      renderStrip(check.normalized, []);
      activate.disabled = false;
      return;
    }
    const error = check.error ?? { code: 'check', message: 'The key is not valid', position: null, found: null };
    const problem = describeKeyError(error, check.normalized, check.suggestions);
    input.setAttribute('aria-invalid', 'true');
    feedback.className = 'feedback error';
    feedback.textContent = problem.text;
    setSuggestions(check.suggestions, check.normalized);
    renderStrip(check.normalized, problem.marks);
    activate.disabled = true;
  }

  function setField(text: string): void {
    const f = formatKeyField(text, text.length);
    input.value = f.value;
    input.setSelectionRange(f.caret, f.caret);
  }

  async function runCheck(): Promise<KeyCheck | null> {
    window.clearTimeout(timer);
    timer = undefined;
    const normalized = normalizeKeyInput(input.value);
    const mine = ++seq;
    if (normalized === '') {
      show_(null, '');
      return null;
    }
    try {
      const check = await ipc.checkKey(normalized);
      if (mine === seq) show_(check, normalized);
      return check;
    } catch (e) {
      if (mine === seq) {
        show_(null, normalized);
        messages.error(e);
      }
      return null;
    }
  }

  function scheduleCheck(): void {
    window.clearTimeout(timer);
    activate.disabled = true; // until the check of what is there now says yes
    renderStrip(normalizeKeyInput(input.value), []);
    timer = window.setTimeout(() => void runCheck(), CHECK_DELAY_MS);
  }

  input.addEventListener('input', () => {
    const f = formatKeyField(input.value, input.selectionStart ?? input.value.length);
    if (f.value !== input.value) {
      input.value = f.value;
      input.setSelectionRange(f.caret, f.caret);
    }
    scheduleCheck();
  });

  function pasteInto(text: string, whole: boolean): void {
    let start = input.selectionStart ?? input.value.length;
    let end = input.selectionEnd ?? start;
    if (whole) {
      start = 0;
      end = input.value.length;
    }
    const cleaned = normalizeKeyInput(text);
    const raw = input.value.slice(0, start) + cleaned + input.value.slice(end);
    const f = formatKeyField(raw, start + cleaned.length);
    input.value = f.value;
    input.setSelectionRange(f.caret, f.caret);
    input.focus();
    void runCheck();
  }

  input.addEventListener('paste', (ev) => {
    const text = ev.clipboardData?.getData('text/plain');
    if (text === undefined) return;
    ev.preventDefault();
    pasteInto(text, false);
  });
  // A paste anywhere else in the window (not in another field) fills the key field.
  document.addEventListener('paste', (ev) => {
    const t = ev.target as HTMLElement | null;
    if (t === input || (t && (t.closest('input, textarea, [contenteditable]')))) return;
    const text = ev.clipboardData?.getData('text/plain');
    if (!text) return;
    ev.preventDefault();
    pasteInto(text, true);
  });

  async function doActivate(): Promise<void> {
    const check = await runCheck();
    if (!check || !check.valid) return;
    const key = check.display ?? check.normalized;
    await busy(activate, 'Activating…', async () => {
      messages.clear();
      try {
        const status = await ipc.setKey(id, key);
        input.value = '';
        show_(null, '');
        showResult(status);
        await loadMasked();
      } catch (e) {
        messages.error(e);
      }
    });
    activate.disabled = current === null || !current.valid;
  }

  function showResult(status: ProductStatus): void {
    const diagnosis = status.last_attempt?.diagnosis ?? [];
    if (status.state === 'activated') messages.ok(status.line, diagnosis);
    else messages.info(`The key is stored. ${status.line}`, diagnosis);
    const b = badge(status.state);
    messages.el.firstChild?.insertBefore(b, messages.el.firstChild.firstChild);
    b.after(' ');
  }

  renderStrip('', []);
  await loadMasked();
  try {
    const all = await ipc.status();
    const p = all.find((x) => x.id === id);
    if (p) {
      head.querySelector('.subtitle')!.textContent = p.vendor ? `${p.name} · ${p.vendor}` : p.name;
      document.title = `License key: ${p.name} — Lapwing`;
    } else {
      messages.error(new Error(`No installed product has the id “${id}”.`));
    }
  } catch (e) {
    messages.error(e);
  }
  input.focus();
}
