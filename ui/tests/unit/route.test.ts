import { describe, expect, it } from 'vitest';
import { parseRoute, routeQuery, VIEWS } from '../../src/route';

describe('parseRoute', () => {
  it('defaults to products', () => {
    expect(parseRoute('')).toEqual({ view: 'products', product: null, problem: null });
  });
  it('reads every view of COMMANDS.md', () => {
    for (const v of VIEWS) {
      const r = parseRoute(`?view=${v}&product=acme-studio`);
      expect(r.view).toBe(v);
      expect(r.product).toBe('acme-studio');
      expect(r.problem).toBeNull();
    }
  });
  it('global server and diagnostics have no product', () => {
    expect(parseRoute('?view=server')).toEqual({ view: 'server', product: null, problem: null });
  });
  it('an unknown view falls back to products with a sentence', () => {
    const r = parseRoute('?view=admin');
    expect(r.view).toBe('products');
    expect(r.problem).toMatch(/no “admin” window/);
  });
  it('refuses product ids outside [a-z0-9-]', () => {
    for (const bad of ['Acme', '../etc', 'a b', '-x', 'a'.repeat(200)]) {
      const r = parseRoute(`?view=server&product=${encodeURIComponent(bad)}`);
      expect(r.product).toBeNull();
      expect(r.problem).not.toBeNull();
    }
  });
  it('the key view needs a product', () => {
    expect(parseRoute('?view=key').problem).toMatch(/which product/);
  });
  it('routeQuery is the inverse', () => {
    expect(parseRoute(routeQuery('key', 'acme-studio'))).toEqual({ view: 'key', product: 'acme-studio', problem: null });
    expect(routeQuery('about', null)).toBe('?view=about');
  });
});
