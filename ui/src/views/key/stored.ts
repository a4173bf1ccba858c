// The stored key: shown masked, in full only on request and for a while, removed after a
// confirmation; and a new key not accepted yet, which the person can drop.
import { ipc } from '../../ipc';
import { button, busy, clear, h, Messages } from '../../dom';
import { section } from '../common';

const REVEAL_MS = 30_000;

export interface StoredKey {
  el: HTMLElement;
  /** Reads the masked key again (after a key was stored or removed, here or elsewhere). */
  load(): Promise<void>;
}

export function storedKeySection(id: string): StoredKey {
  const stored = h('code', { class: 'key-text', id: 'stored-key' });
  const note = h('p', { class: 'muted' });
  const messages = new Messages('Remove key messages');
  const reveal = revealToggle(id, stored, messages, () => load());
  const remove = button('Remove key…', () => confirm.open());
  const row = h('div', { class: 'stored-row' }, stored, reveal.button, remove);
  const confirm = removalConfirmation(id, remove, messages, async (line) => {
    await load();
    messages.ok(`Key removed. ${line}`);
    note.focus();
  });
  note.tabIndex = -1;
  const pendingNote = h('p', { id: 'pending-key-note' });
  const drop = button('Drop the new key', () => {
    void busy(drop, 'Dropping…', async () => {
      try {
        const status = await ipc.dropPendingKey(id);
        await load();
        messages.ok(`The new key was dropped; the current key stays. ${status.line}`);
        note.focus();
      } catch (e) {
        messages.error(e);
      }
    });
  }, { id: 'drop-pending-key', title: 'Keep the current key' });
  const pending = h('div', { class: 'pending-key', role: 'group', 'aria-label': 'New key not accepted yet', hidden: true },
    pendingNote, h('div', { class: 'actions' }, drop));

  async function load(): Promise<void> {
    // A revealed key is hidden on every read: the key may have changed since.
    reveal.hide();
    try {
      const masked = await ipc.keyMasked(id);
      if (masked === null) {
        stored.textContent = '';
        row.hidden = true;
        note.textContent = 'No key is stored: the product runs as an evaluation if its vendor offers one.';
      } else {
        stored.textContent = masked;
        stored.dataset.masked = masked;
        row.hidden = false;
        note.textContent = 'Only the last group is shown. Show reveals the whole key in this window.';
      }
    } catch (e) {
      messages.error(e);
    }
    await loadPending();
  }

  /** Whether a new key waits for a server to accept it (the key itself is never shown). */
  async function loadPending(): Promise<void> {
    try {
      const status = (await ipc.status()).find((p) => p.id === id);
      const waiting = status?.pending_key ? status : null;
      pending.hidden = waiting === null;
      pendingNote.textContent = waiting
        ? (waiting.pending_note ?? 'The new key was not accepted yet; the previous key stays in effect')
        : '';
    } catch (e) {
      messages.error(e);
    }
  }

  return {
    el: section('Stored key', 'stored-title', note, row, pending, confirm.el, messages.el),
    load,
  };
}

/** The Show/Hide button: the full key for REVEAL_MS, then masked again. */
function revealToggle(id: string, stored: HTMLElement, messages: Messages, reload: () => Promise<void>) {
  let timer: number | undefined;
  const toggle = button('Show', () => void flip(), { 'aria-pressed': 'false', 'aria-controls': 'stored-key' });
  const shown = () => toggle.getAttribute('aria-pressed') === 'true';

  function hide(): void {
    if (timer !== undefined) window.clearTimeout(timer);
    timer = undefined;
    if (shown()) {
      stored.textContent = stored.dataset.masked ?? '';
      toggle.textContent = 'Show';
      toggle.setAttribute('aria-pressed', 'false');
    }
  }

  async function flip(): Promise<void> {
    if (shown()) {
      hide();
      return;
    }
    try {
      const full = await ipc.revealKey(id);
      if (full === null) return reload();
      stored.textContent = full;
      toggle.textContent = 'Hide';
      toggle.setAttribute('aria-pressed', 'true');
      timer = window.setTimeout(hide, REVEAL_MS);
    } catch (e) {
      messages.error(e);
    }
  }

  return { button: toggle, hide };
}

/** Asks before removing; Cancel or Escape closes it and gives focus back to `opener`. */
function removalConfirmation(
  id: string,
  opener: HTMLButtonElement,
  messages: Messages,
  removed: (line: string) => Promise<void>,
) {
  const box = h('div', { class: 'confirm', hidden: true, role: 'group', 'aria-label': 'Confirm removal' });

  function close(refocus: boolean): void {
    box.hidden = true;
    clear(box);
    if (refocus) opener.focus();
  }

  function open(): void {
    clear(box);
    const yes = button('Remove', () => {
      void busy(yes, 'Removing…', async () => {
        try {
          const status = await ipc.removeKey(id);
          close(false);
          await removed(status.line);
        } catch (e) {
          messages.error(e);
        }
      });
    }, { class: 'danger' });
    const no = button('Cancel', () => close(true));
    box.append(
      h('p', {}, 'Remove the stored key? The product falls back to an evaluation, or stops working if it has none.'),
      h('div', { class: 'actions' }, yes, no),
    );
    box.hidden = false;
    no.focus();
  }

  box.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      close(true);
    }
  });
  return { el: box, open };
}
