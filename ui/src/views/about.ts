import type { ViewContext } from '../main';
import { ipc } from '../ipc';
import { h, Messages } from '../dom';
import { closeOnEscape } from '../dialog';
import { header, row, section } from './common';

export async function aboutView({ root }: ViewContext): Promise<void> {
  const messages = new Messages('About messages');
  const head = header('About Lapwing', 'License activation assistant');
  root.append(head, messages.el);
  closeOnEscape(() => {
    ipc.closeWindow().catch((e) => messages.error(e));
  });
  try {
    const a = await ipc.about();
    head.querySelector('.subtitle')!.textContent = `Version ${a.version} · License activation assistant`;
    const code = (s: string) => h('code', {}, s);
    root.append(
      section('Where things are', 'where-title',
        h('dl', { class: 'facts paths' },
          row('Data', code(a.data_dir)),
          row('State file', code(a.state_file)),
          row('Machine policy', code(a.policy_file)),
          row('Products', a.products_dirs.length ? h('span', { class: 'stack' }, a.products_dirs.map(code)) : 'none'),
          row('Log', code(a.log)))),
      section('Third-party software', 'licenses-title',
        h('table', { class: 'table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Component'), h('th', { scope: 'col' }, 'Version'),
            h('th', { scope: 'col' }, 'License'))),
          h('tbody', {}, a.licenses.map((l) =>
            h('tr', {}, h('td', {}, l.name), h('td', {}, l.version), h('td', {}, l.license)))))),
    );
  } catch (e) {
    messages.error(e);
  }
}
