import type { ViewName } from './types';

export const VIEWS: readonly ViewName[] = [
  'products',
  'key',
  'server',
  'diagnostics',
  'about',
  'settings',
];

export interface Route {
  view: ViewName;
  /** A product id (`[a-z0-9-]`), or null for "every product" / global. */
  product: string | null;
  /** Set when the query asked for something we do not have (shown, not thrown). */
  problem: string | null;
}

const PRODUCT_ID = /^[a-z0-9][a-z0-9-]{0,127}$/;

/** Reads `?view=…&product=…` (the window URLs of COMMANDS.md). */
export function parseRoute(search: string): Route {
  const q = new URLSearchParams(search);
  const rawView = q.get('view');
  const rawProduct = q.get('product');
  let problem: string | null = null;
  let view: ViewName = 'products';
  if (rawView !== null && rawView !== '') {
    if ((VIEWS as readonly string[]).includes(rawView)) view = rawView as ViewName;
    else problem = `There is no “${rawView}” window; showing the products instead.`;
  }
  let product: string | null = null;
  if (rawProduct !== null && rawProduct !== '') {
    if (PRODUCT_ID.test(rawProduct)) product = rawProduct;
    else problem = 'The product named in this window’s address is not a valid product id.';
  }
  if (view === 'key' && product === null && problem === null) {
    problem = 'This window does not say which product the key is for.';
  }
  return { view, product, problem };
}

/** The query string of a view, the inverse of parseRoute. */
export function routeQuery(view: ViewName, product: string | null): string {
  const q = new URLSearchParams({ view });
  if (product !== null) q.set('product', product);
  return `?${q.toString()}`;
}
