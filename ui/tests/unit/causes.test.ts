import { describe, expect, it } from 'vitest';
import { causeForWindow, silentOverride } from '../../src/causes';

// The engine's sentences that advise a command (lapwing-core's cause.rs, `Display`).
const ADVISING = [
  { code: 'no-license-key', message: 'no license key: enter one with `lapctl key set` or from the tray' },
  {
    code: 'server-key-changed',
    message:
      "this product's server key changed since the license key was entered: enter the key again to confirm (`lapctl key set` or from the tray)",
  },
  { code: 'no-server-found', message: 'no server found: set one with `lapctl server set HOST:PORT`' },
  {
    code: 'clock-may-be-off',
    message:
      "this machine's clock may be off: the server ignores requests more than 30 s away from its time (`lapctl doctor` compares it with a time server)",
  },
];

describe('causeForWindow', () => {
  it('never shows a command to type in a window', () => {
    for (const cause of ADVISING) {
      const shown = causeForWindow(cause);
      expect(shown.text, cause.code).not.toMatch(/`|lapctl/);
    }
  });
  it('offers the window that fixes the cause', () => {
    expect(causeForWindow(ADVISING[0]).action).toBe('key');
    expect(causeForWindow(ADVISING[1]).action).toBe('key');
    expect(causeForWindow(ADVISING[2]).action).toBe('server');
    expect(causeForWindow(ADVISING[3]).action).toBeNull();
    expect(causeForWindow({ code: 'key-may-be-refused', message: 'the key may not be known' }).action).toBe('key');
  });
  it('shows any other cause in the engine’s words', () => {
    const c = { code: 'unreachable', message: 'the server may be unreachable from this network' };
    expect(causeForWindow(c)).toEqual({ text: c.message, action: null });
  });
  it('names a silent override with its address and offers the server window', () => {
    const cause = {
      code: 'override-silent',
      address: '192.0.2.7:4711',
      message:
        "the server override 192.0.2.7:4711 did not answer: correct it, or clear it to use the product's servers (`lapctl server clear`)",
    };
    const shown = causeForWindow(cause);
    expect(shown.action).toBe('server');
    expect(shown.text).toContain('192.0.2.7:4711 did not answer');
    expect(shown.text).not.toMatch(/`|lapctl/);
    expect(silentOverride(cause)).toBe('192.0.2.7:4711');
    expect(silentOverride({ code: 'unreachable', message: 'x' })).toBeNull();
    const notFound = {
      code: 'override-not-found',
      address: 'lap.corp.invalid:4711',
      reason: 'DNS lookup of lap.corp.invalid failed: no such host',
      message: 'the server override lap.corp.invalid:4711 could not be found (…): correct it, or clear it (`lapctl server clear`)',
    };
    expect(causeForWindow(notFound)).toEqual({
      text: 'The server override lap.corp.invalid:4711 could not be found: correct it, or clear it to use the product’s servers.',
      action: 'server',
    });
  });
  it('offers the server window when nothing listens at the server', () => {
    const refused = { code: 'server-refused', address: '127.0.0.1:9', message: 'nothing listens at 127.0.0.1:9: …' };
    expect(causeForWindow(refused)).toEqual({ text: refused.message, action: 'server' });
  });
});
