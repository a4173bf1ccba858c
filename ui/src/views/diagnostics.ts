import type { ViewContext } from '../main';
import { ipc } from '../ipc';
import { button, busy, clear, h, Messages } from '../dom';
import { levelInfo } from '../format';
import type { Check } from '../types';
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

  root.append(
    header('Diagnostics', product ? `Product: ${product}` : 'Manifests, keyring, policy, machine, clock, servers', rerun, copy),
    messages.el,
    list,
    copyHost,
  );

  function render(checks: Check[]): void {
    clear(list);
    if (!checks.length) list.appendChild(h('li', { class: 'muted' }, 'No checks ran.'));
    for (const c of checks) {
      const lv = levelInfo(c.level);
      list.appendChild(
        h('li', { class: `check level-${c.level}` },
          h('span', { class: 'level-icon', 'aria-hidden': 'true' }, lv.icon),
          h('span', { class: 'visually-hidden' }, `${lv.label}: `),
          h('span', { class: 'subject' }, c.subject),
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
