// The license key window: the stored key (key/stored.ts), the entry form and its check
// (key/form.ts, key/entry.ts, key/feedback.ts), and here the activation and its result. The
// result and the progress of the attempt sit at the top, under the heading, so they are in
// view without scrolling; after a result the form folds away and Done closes the window.
import type { ViewContext } from '../main';
import { ipc } from '../ipc';
import { button, Messages } from '../dom';
import { closeOnEscape, ResultArea, STOPPED_WAITING, withProgress } from '../dialog';
import type { ProductStatus } from '../types';
import { header, section } from './common';
import { badge } from './products';
import { keyEntry, type KeyEntry } from './key/entry';
import { keyForm, type KeyForm } from './key/form';
import { storedKeySection, type StoredKey } from './key/stored';

interface KeyWindow {
  id: string;
  form: KeyForm;
  entry: KeyEntry;
  stored: StoredKey;
  entrySection: HTMLElement;
  result: ResultArea;
  /** The product as last read (its name, and the server the attempt goes to). */
  product: ProductStatus | null;
}

export async function keyView({ root, product }: ViewContext): Promise<void> {
  const id = product as string;
  const close = (): void => {
    ipc.closeWindow().catch((e) => messages.error(e));
  };
  const messages = new Messages('Key messages', (action) => {
    if (action === 'key') showForm(w);
    else ipc.openWindow('server', id).catch((e) => messages.error(e));
  });
  const result = new ResultArea(messages, close);
  const head = header('License key', id);
  const stored = storedKeySection(id);
  const form = keyForm(() => void activate(w));
  const entry = keyEntry(form, messages);
  const entrySection = section('Enter or correct the key', 'enter-title', form.el);
  const w: KeyWindow = { id, form, entry, stored, entrySection, result, product: null };
  root.append(head, result.el, stored.el, entrySection);
  closeOnEscape(close);

  await stored.load();
  w.product = await showProductName(id, head, messages);
  form.input.focus();
  // `lapctl key set` or `key remove` while this window is open: show the key stored now.
  ipc.onStoredChanged(() => void stored.load()).catch((e) => messages.error(e));
}

/** Brings the entry form back (after a result, or from a cause's “Enter key…”). */
function showForm(w: KeyWindow): void {
  w.result.reset();
  w.entrySection.hidden = false;
  w.form.input.focus();
}

/** What the progress says: the server the attempt goes to, when the status names one. */
function progressText(p: ProductStatus | null): string {
  const server = p?.server?.address;
  return server ? `Activating: trying ${server}…` : 'Activating: waiting for the license server…';
}

/** Checks the key once more, stores it with `set_key` (which activates) and shows the result. */
async function activate(w: KeyWindow): Promise<void> {
  const { form, entry, result } = w;
  const check = await entry.check();
  if (!check || !check.valid) return;
  const key = check.display ?? check.normalized;
  result.reset();
  form.activate.disabled = true;
  form.input.disabled = true;
  const waited = await withProgress(result.progress, progressText(w.product), ipc.setKey(w.id, key));
  form.input.disabled = false;
  if (waited.kind === 'failed') {
    // Refused before any attempt (the keyring, a key the engine will not store): the form
    // stays, with the reason above it.
    result.messages.error(waited.error);
    const current = entry.current();
    form.activate.disabled = current === null || !current.valid;
    form.input.focus();
    return;
  }
  entry.reset();
  w.entrySection.hidden = true;
  if (waited.kind === 'cancelled') {
    result.messages.info(STOPPED_WAITING);
  } else {
    showResult(result.messages, waited.value);
  }
  await w.stored.load();
  result.finish(button('Enter another key', () => showForm(w), { id: 'enter-another' }));
}

function showResult(messages: Messages, status: ProductStatus): void {
  if (status.pending_key) {
    // The grant shown is the previous key's: the new key is what was asked for, and it is
    // not in effect, so no green "Activated" for it.
    const note = status.pending_note ?? 'The new key was not accepted yet; the previous key stays in effect';
    messages.info(`${note}. ${status.line}`, status.pending_key.last_try?.diagnosis ?? []);
    return;
  }
  const diagnosis = status.last_attempt?.diagnosis ?? [];
  // Success is this attempt's outcome (Rust's), not the phase: an attempt not sent after an
  // earlier activation is no success.
  if (status.last_attempt?.outcome === 'activated') messages.ok(status.line, diagnosis);
  else messages.info(`The key is stored. ${status.line}`, diagnosis);
  const b = badge(status.state);
  messages.el.firstChild?.insertBefore(b, messages.el.firstChild.firstChild);
  b.after(' ');
}

/** The product's name and vendor under the heading and in the window title. */
async function showProductName(id: string, head: HTMLElement, messages: Messages): Promise<ProductStatus | null> {
  try {
    const all = await ipc.status();
    const p = all.find((x) => x.id === id);
    if (p) {
      head.querySelector('.subtitle')!.textContent = p.vendor ? `${p.name} · ${p.vendor}` : p.name;
      document.title = `License key: ${p.name} — Lapwing`;
      return p;
    }
    messages.error(new Error(`No installed product has the id “${id}”.`));
  } catch (e) {
    messages.error(e);
  }
  return null;
}
