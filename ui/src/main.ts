import { parseRoute } from './route';
import { clear, h } from './dom';
import type { ViewName } from './types';
import { productsView } from './views/products';
import { keyView } from './views/key';
import { serverView } from './views/server';
import { diagnosticsView } from './views/diagnostics';
import { aboutView } from './views/about';
import { settingsView } from './views/settings';

export interface ViewContext {
  root: HTMLElement;
  product: string | null;
}

const VIEWS: Record<ViewName, (ctx: ViewContext) => Promise<void>> = {
  products: productsView,
  key: keyView,
  server: serverView,
  diagnostics: diagnosticsView,
  about: aboutView,
  settings: settingsView,
};

async function start(): Promise<void> {
  const root = document.getElementById('app') as HTMLElement;
  const route = parseRoute(window.location.search);
  document.documentElement.dataset.view = route.view;
  clear(root);
  try {
    if (route.problem) {
      root.appendChild(h('p', { class: 'message message-error', role: 'status' }, route.problem));
    }
    if (!(route.view === 'key' && route.product === null)) {
      await VIEWS[route.view]({ root, product: route.product });
    }
  } finally {
    root.removeAttribute('aria-busy');
    document.documentElement.dataset.ready = 'true';
  }
}

void start();
