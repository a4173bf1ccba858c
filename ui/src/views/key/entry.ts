// Typing and pasting into the key field: the field keeps its groups, and Rust's check_key
// runs shortly after the last keystroke (at once after a paste); a stale answer is dropped.
import { ipc } from '../../ipc';
import type { Messages } from '../../dom';
import { formatKeyField, normalizeKeyInput } from '../../keys';
import type { KeyCheck } from '../../types';
import { renderStrip, showCheck } from './feedback';
import type { KeyForm } from './form';

const CHECK_DELAY_MS = 180;

export interface KeyEntry {
  /** Checks what the field holds now; `null` when it is empty or the check failed. */
  check(): Promise<KeyCheck | null>;
  /** The last check shown, `null` when there is none. */
  current(): KeyCheck | null;
  /** Empties the field and its feedback. */
  reset(): void;
}

export function keyEntry(form: KeyForm, messages: Messages): KeyEntry {
  const { input } = form;
  let current: KeyCheck | null = null;
  let seq = 0;
  let timer: number | undefined;

  function show(check: KeyCheck | null, normalized: string): void {
    current = check;
    showCheck(form, check, normalized, pick);
  }

  function pick(key: string): void {
    setField(key);
    void check();
    input.focus();
  }

  function setField(text: string): void {
    const f = formatKeyField(text, text.length);
    input.value = f.value;
    input.setSelectionRange(f.caret, f.caret);
  }

  async function check(): Promise<KeyCheck | null> {
    window.clearTimeout(timer);
    timer = undefined;
    const normalized = normalizeKeyInput(input.value);
    const mine = ++seq;
    if (normalized === '') {
      show(null, '');
      return null;
    }
    try {
      const answer = await ipc.checkKey(normalized);
      if (mine === seq) show(answer, normalized);
      return answer;
    } catch (e) {
      if (mine === seq) {
        show(null, normalized);
        messages.error(e);
      }
      return null;
    }
  }

  function scheduleCheck(): void {
    window.clearTimeout(timer);
    form.activate.disabled = true; // until the check of what is there now says yes
    renderStrip(form.strip, normalizeKeyInput(input.value), []);
    timer = window.setTimeout(() => void check(), CHECK_DELAY_MS);
  }

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
    void check();
  }

  input.addEventListener('input', () => {
    const f = formatKeyField(input.value, input.selectionStart ?? input.value.length);
    if (f.value !== input.value) {
      input.value = f.value;
      input.setSelectionRange(f.caret, f.caret);
    }
    scheduleCheck();
  });
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

  renderStrip(form.strip, '', []);
  return {
    check,
    current: () => current,
    reset() {
      input.value = '';
      show(null, '');
    },
  };
}
