import type { ViewContext } from '../main';
import { ipc } from '../ipc';
import { button, h, Messages } from '../dom';
import { closeOnEscape } from '../dialog';
import { header, section } from './common';

export async function settingsView({ root }: ViewContext): Promise<void> {
  const messages = new Messages('Settings messages');
  const toggle = h('input', { type: 'checkbox', id: 'autostart', role: 'switch', 'aria-describedby': 'autostart-help', disabled: true });
  const openServer = button('Server…', () => ipc.openWindow('server', null).catch((e) => messages.error(e)), { id: 'open-server' });
  const openDiag = button('Diagnostics…', () => ipc.openWindow('diagnostics', null).catch((e) => messages.error(e)), { id: 'open-diagnostics' });

  closeOnEscape(() => {
    ipc.closeWindow().catch((e) => messages.error(e));
  });

  toggle.addEventListener('change', () => {
    const wanted = toggle.checked;
    toggle.disabled = true;
    messages.clear();
    ipc
      .setAutostart(wanted)
      .then((s) => {
        toggle.checked = s.autostart;
        messages.ok(s.autostart ? 'Lapwing will start when you log in.' : 'Lapwing will not start on its own.');
      })
      .catch((e) => {
        toggle.checked = !wanted;
        messages.error(e);
      })
      .finally(() => {
        toggle.disabled = false;
        toggle.focus();
      });
  });

  root.append(
    header('Settings'),
    section('Start-up', 'startup-title',
      h('div', { class: 'check-row' }, toggle, h('label', { for: 'autostart' }, 'Start Lapwing when I log in')),
      h('p', { id: 'autostart-help', class: 'help' },
        'Lapwing renews licenses in the background and warns before one runs out; it needs to be running to do that.')),
    section('More', 'more-title',
      h('div', { class: 'link-list' },
        h('div', { class: 'link-row' }, openServer, h('span', { class: 'muted' }, 'The license server for every product')),
        h('div', { class: 'link-row' }, openDiag, h('span', { class: 'muted' }, 'Checks, and a report to send to support')))),
    messages.el,
  );
  try {
    const s = await ipc.settings();
    toggle.checked = s.autostart;
    toggle.disabled = false;
  } catch (e) {
    messages.error(e);
  }
}
