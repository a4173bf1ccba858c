// The dialog windows (key, server, diagnostics, about, settings) at the sizes the app opens
// them with: the result at the top and in view, Done that closes, Escape that closes, a long
// attempt's progress with a Cancel that stops waiting, and windows that read again what an
// outside change (`lapctl key set`, `lapctl server clear`) changed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serveDist, launch, openView, calls, assertClean, screenshot } from './harness.mjs';
import { fixture, NOW } from './fixtures.mjs';
import { keys } from './recorded.mjs';

/** The inner size `windows.rs` opens a view's window with (`View::size`). */
function windowSize(variant) {
  const source = readFileSync(new URL('../../../src-tauri/src/windows.rs', import.meta.url), 'utf8');
  const m = source.match(new RegExp(`Self::${variant} => \\((\\d+)\\.0, (\\d+)\\.0\\)`));
  assert.ok(m, `windows.rs sizes ${variant}`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

const STOPPED = 'Stopped waiting. The attempt continues in the background; its result will show in Products.';

let server;
let browser;
before(async () => {
  server = await serveDist();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** Whether the element is wholly inside the window, without scrolling. */
async function inView(page, selector) {
  return page.locator(selector).first().evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && window.scrollY === 0;
  });
}

async function closed(page) {
  return page.evaluate(() => window.__lapwingFake.state.closed);
}

/** How many times the window asked to close, once it has asked `n` times or 2 s passed:
 * `close_window` is an asynchronous command, so a key press is not yet a call. */
async function closedAfter(page, n) {
  await page.waitForFunction((want) => window.__lapwingFake.state.closed >= want, n, { timeout: 2000 }).catch(() => {});
  return closed(page);
}

test('key window: typo → suggestion → Activate, with the result and Done in view; Done closes', async () => {
  const viewport = windowSize('Key\\(_\\)');
  const page = await openView(browser, server.url, '?view=key&product=echo-notes', fixture(), { viewport });
  try {
    await page.locator('#key-input').fill(keys.mistyped);
    const suggestion = page.getByRole('button', { name: `Use ${keys.entered}` });
    await suggestion.waitFor();
    // The tallest state of the form: a typo, its feedback and a suggestion. Activate is in view.
    assert.ok(await inView(page, '#activate-key'), 'Activate is in view with a suggestion shown');
    await screenshot(page, 'dialog-key-typo');
    await suggestion.click();
    await page.locator('#activate-key:not([disabled])').click();
    await page.locator('#done').waitFor();
    assert.match(await page.locator('#result .message-ok').innerText(), /Activated until/);
    assert.ok(await inView(page, '#result .message-ok'), 'the result is in view');
    assert.ok(await inView(page, '#done'), 'Done is in view');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'done');
    // No empty form left behind: the form folds away once there is a result.
    assert.equal(await page.locator('#key-input').isVisible(), false);
    await screenshot(page, 'dialog-key-result');

    await page.getByRole('button', { name: 'Enter another key' }).click();
    assert.equal(await page.locator('#key-input').isVisible(), true);
    assert.equal(await page.locator('#done').isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'key-input');

    await page.locator('#key-input').fill(keys.pasted);
    await page.locator('#activate-key:not([disabled])').click();
    await page.locator('#done').click();
    assert.equal(await closedAfter(page, 1), 1, 'Done closed the window');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('key window: a long attempt shows progress and elapsed time; Cancel stops waiting, honestly', async () => {
  const page = await openView(browser, server.url, '?view=key&product=acme-studio', fixture({ hang: ['set_key'] }), {
    viewport: windowSize('Key\\(_\\)'),
    clock: NOW * 1000,
  });
  try {
    await page.locator('#key-input').fill(keys.pasted);
    await page.locator('#activate-key:not([disabled])').waitFor();
    await page.locator('#activate-key').click();
    const progress = page.locator('.progress');
    await progress.waitFor();
    // The server the attempt goes to, when the status names it (Acme Studio: its SRV record).
    assert.equal(await progress.locator('.progress-text').innerText(), 'Activating: trying lap.example.com:4711…');
    assert.equal(await progress.locator('progress').count(), 1);
    assert.equal(await progress.locator('progress').getAttribute('value'), null, 'indeterminate');
    assert.ok(await inView(page, '.progress'), 'the progress is in view');
    assert.equal(await page.locator('#key-input').isDisabled(), true);
    await page.clock.runFor(7000);
    assert.equal(await page.locator('#progress-elapsed').innerText(), '7 s');
    await page.clock.runFor(60_000);
    assert.equal(await page.locator('#progress-elapsed').innerText(), '1 min 7 s');
    await screenshot(page, 'dialog-key-progress');

    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('#done').waitFor();
    assert.equal(await progress.count(), 0);
    assert.equal(await page.locator('#result .message-info').innerText(), STOPPED);
    assert.equal(await page.locator('#key-input').isVisible(), false, 'no empty form left open');
    assert.equal((await calls(page, 'set_key')).length, 1);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('Escape closes every dialog, but first an open confirmation inside it', async () => {
  const key = await openView(browser, server.url, '?view=key&product=acme-studio', fixture());
  try {
    await key.getByRole('button', { name: 'Remove key…' }).click();
    await key.keyboard.press('Escape');
    assert.equal(await key.getByRole('button', { name: 'Cancel' }).count(), 0, 'the confirmation closed');
    assert.equal(await closed(key), 0, 'the window did not');
    await key.keyboard.press('Escape');
    assert.equal(await closedAfter(key, 1), 1);
    await assertClean(key);
  } finally {
    await key.closeAll();
  }
  for (const query of ['?view=server&product=acme-studio', '?view=server', '?view=diagnostics', '?view=about', '?view=settings']) {
    const page = await openView(browser, server.url, query, fixture());
    try {
      await page.keyboard.press('Escape');
      assert.equal(await closedAfter(page, 1), 1, query);
      await assertClean(page);
    } finally {
      await page.closeAll();
    }
  }
  // The products window is the app's main window, not a dialog.
  const products = await openView(browser, server.url, '?view=products', fixture());
  try {
    await products.keyboard.press('Escape');
    assert.equal(await closed(products), 0);
  } finally {
    await products.closeAll();
  }
});

test('server window: names, not ids; Save’s result and Done in view; Try now with progress and Cancel', async () => {
  const viewport = windowSize('Server\\(_\\)');
  const page = await openView(browser, server.url, '?view=server&product=acme-studio', fixture({ hang: ['activate'] }), { viewport });
  try {
    assert.match(await page.locator('.subtitle').innerText(), /^Acme Studio · Acme Software Ltd\.$/);
    assert.equal(await page.title(), 'Server: Acme Studio — Lapwing');
    assert.doesNotMatch(await page.locator('main').innerText(), /acme-studio/);
    await page.locator('#server-input').fill('lap.corp.example:4711');
    await page.waitForFunction(() => document.querySelector('#server-feedback').classList.contains('ok'));
    await page.locator('#server-input').press('Enter');
    await page.locator('#done').waitFor();
    assert.equal(await page.locator('#result .message-ok').innerText(), 'Saved: lap.corp.example:4711 is now the server for Acme Studio.');
    assert.ok(await inView(page, '#result .message-ok'), 'the result is in view');
    assert.ok(await inView(page, '#done'), 'Done is in view');
    assert.ok(await inView(page, '#server-try'), 'Try now is in view');
    await screenshot(page, 'dialog-server-saved');

    await page.locator('#server-try').click();
    await page.locator('.progress').waitFor();
    assert.equal(await page.locator('.progress-text').innerText(), 'Activating Acme Studio: trying lap.corp.example:4711…');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('#done').waitFor();
    assert.equal(await page.locator('#result .message-info').innerText(), STOPPED);
    await page.locator('#done').click();
    assert.equal(await closedAfter(page, 1), 1);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('an outside change reaches open windows: the key and server windows read again', async () => {
  const key = await openView(browser, server.url, '?view=key&product=acme-studio', fixture());
  try {
    const masked = (k) => `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-${k.slice(-4)}`;
    assert.equal(await key.locator('#stored-key').innerText(), masked(keys.stored));
    // `lapctl key set acme-studio` in a terminal: the app hears the state file change.
    await key.evaluate((k) => {
      window.__lapwingFake.state.keys['acme-studio'] = k;
      window.__lapwingFake.emit('stored-changed', null);
    }, keys.pasted);
    await key.waitForFunction((m) => document.querySelector('#stored-key').textContent === m, masked(keys.pasted));
    // `lapctl key remove acme-studio`.
    await key.evaluate(() => {
      delete window.__lapwingFake.state.keys['acme-studio'];
      window.__lapwingFake.emit('stored-changed', null);
    });
    await key.getByText(/No key is stored/).waitFor();
    await assertClean(key);
  } finally {
    await key.closeAll();
  }

  const page = await openView(browser, server.url, '?view=server&product=acme-studio', fixture({
    overrides: { global: null, products: { 'acme-studio': 'lap.corp.example:4711' } },
  }));
  try {
    assert.match(await page.locator('.facts').innerText(), /This product\s+lap\.corp\.example:4711/);
    // `lapctl server clear --product acme-studio`.
    await page.evaluate(() => {
      window.__lapwingFake.state.overrides.products['acme-studio'] = null;
      window.__lapwingFake.emit('stored-changed', null);
    });
    await page.waitForFunction(() => /This product\s+not set/.test(document.querySelector('.facts').innerText));
    assert.equal(await page.locator('#server-clear').isDisabled(), true);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products window: About, Diagnostics and Settings reachable; causes offer buttons, not commands', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture());
  try {
    for (const name of ['Settings…', 'Diagnostics…', 'About Lapwing']) {
      await page.locator('.app-links').getByRole('button', { name }).click();
    }
    await page.waitForFunction(() => window.__lapwingCalls.filter((c) => c.cmd === 'open_window').length === 3);
    assert.deepEqual((await calls(page, 'open_window')).map((c) => c.args), [
      { view: 'settings', product: null },
      { view: 'diagnostics', product: null },
      { view: 'about', product: null },
    ]);
    assert.equal(await page.locator('#no-tray').isVisible(), false, 'a tray is there: nothing to say');
    // No command to type anywhere a button belongs.
    assert.doesNotMatch(await page.locator('main').innerText(), /`|lapctl/);
    const echo = page.locator('article[data-product="echo-notes"]');
    await echo.locator('[data-code="no-server-found"]').getByRole('button', { name: 'Set the server' }).click();
    await page.waitForFunction(() => window.__lapwingCalls.filter((c) => c.cmd === 'open_window').length === 4);
    assert.deepEqual((await calls(page, 'open_window')).at(-1).args, { view: 'server', product: 'echo-notes' });
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products window without a tray host says so, and that closing it quits', async () => {
  const message = 'No tray icon can be shown: there is no session bus, so no system tray can be reached. ' +
    'This window is Lapwing’s main window: closing it quits Lapwing, and licenses are then not renewed until it runs again.';
  const page = await openView(browser, server.url, '?view=products', fixture({
    trayHost: { present: false, reason: 'no-session-bus', message },
  }));
  try {
    const notice = page.locator('#no-tray');
    await notice.waitFor();
    assert.equal(await notice.innerText(), message);
    await screenshot(page, 'products-no-tray');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('diagnostics: a product is named, not given by its id', async () => {
  const page = await openView(browser, server.url, '?view=diagnostics&product=echo-notes', fixture({
    checks: [{ subject: 'product echo-notes', level: 'problem', message: 'no server found' }],
  }));
  try {
    assert.equal(await page.locator('.subtitle').innerText(), 'Echo Notes');
    assert.equal(await page.locator('.check .subject').innerText(), 'Echo Notes');
    assert.doesNotMatch(await page.locator('main').innerText(), /echo-notes/);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

