import type { ViewContext } from '../main';
import { ipc } from '../ipc';
import { button, busy, clear, h, Messages } from '../dom';
import { levelInfo } from '../format';
import type { Check } from '../types';
import { closeOnEscape } from '../dialog';
import { header } from './common';

/** Puts text on the clipboard: the async API, else a selected textarea and execCommand. */
export async function copyText(text: string, host: HTMLElement): Promise<'clipboard' | 'fallback' | 'manual'> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return 'clipboard';
    }
  } catch {
    // fall through to the textarea
  }
  const area = h('textarea', { class: 'copy-fallback', readonly: true, 'aria-label': 'Diagnostics report' });
  area.value = text;
  host.appendChild(area);
  area.focus();
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  if (ok) {
    area.remove();
    return 'fallback';
  }
  // Leave it selected and visible so the person can press Ctrl+C.
  return 'manual';
}

/** A check's subject with a product id (`product acme-studio`) given as the product's name. */
export function subjectWords(subject: string, names: ReadonlyMap<string, string>): string {
  const id = subject.startsWith('product ') ? subject.slice('product '.length) : null;
  const name = id === null ? undefined : names.get(id);
  return name ?? subject;
}

export async function diagnosticsView({ root, product }: ViewContext): Promise<void> {
  const messages = new Messages('Diagnostics messages');
  const list = h('ul', { class: 'checks', 'aria-label': 'Checks' });
  const copyHost = h('div', { class: 'copy-host' });
  const rerun = button('Run again', () => void busy(rerun, 'Checking…', load));
  const copy = button('Copy report', () => {
    void busy(copy, 'Copying…', async () => {
      messages.clear();
      clear(copyHost);
      try {
        const report = await ipc.doctorReport(product);
        const how = await copyText(report, copyHost);
        if (how === 'manual') messages.info('Press Ctrl+C (⌘C on a Mac) to copy the selected report.');
        else messages.ok('Report copied. It holds no license keys or other secrets.');
      } catch (e) {
        messages.error(e);
      }
    });
  }, { class: 'primary', id: 'copy-report' });

  const head = header('Diagnostics', product ? null : 'Manifests, keyring, policy, machine, clock, servers', rerun, copy);
  root.append(head, messages.el, list, copyHost);
  closeOnEscape(() => {
    ipc.closeWindow().catch((e) => messages.error(e));
  });
  // A person reads names: the product's, and in each check's subject the names of the
  // products it names by id.
  let names = new Map<string, string>();
  try {
    names = new Map((await ipc.status()).map((p) => [p.id, p.name]));
  } catch (e) {
    messages.error(e);
  }
  if (product) {
    head.querySelector('.titles')?.appendChild(h('p', { class: 'subtitle' }, names.get(product) ?? product));
  }

  function render(checks: Check[]): void {
    clear(list);
    if (!checks.length) list.appendChild(h('li', { class: 'muted' }, 'No checks ran.'));
    for (const c of checks) {
      const lv = levelInfo(c.level);
      list.appendChild(
        h('li', { class: `check level-${c.level}` },
          h('span', { class: 'level-icon', 'aria-hidden': 'true' }, lv.icon),
          h('span', { class: 'visually-hidden' }, `${lv.label}: `),
          h('span', { class: 'subject' }, subjectWords(c.subject, names)),
          h('span', { class: 'check-message' }, c.message)),
      );
    }
  }

  async function load(): Promise<void> {
    try {
      render(await ipc.doctor(product));
    } catch (e) {
      messages.error(e);
    }
  }
  await load();
}
