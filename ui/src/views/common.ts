import { h } from '../dom';

/** The window's heading block; also sets the window title. */
export function header(title: string, subtitle?: string | null, ...actions: HTMLElement[]): HTMLElement {
  document.title = `${title} — Lapwing`;
  return h(
    'header',
    { class: 'view-header' },
    h('div', { class: 'titles' }, h('h1', {}, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
    actions.length ? h('div', { class: 'header-actions' }, actions) : null,
  );
}

export function section(title: string, id: string, ...children: (Node | null)[]): HTMLElement {
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), children);
}

/** A definition list row; skipped when value is null. */
export function row(term: string, value: Node | string | null): HTMLElement[] {
  if (value === null || value === '') return [];
  return [h('dt', {}, term), h('dd', {}, value)];
}
