import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openView, calls, assertClean, screenshot } from './harness.mjs';
import { fixture, report } from './fixtures.mjs';

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

test('diagnostics: checks with level, subject, message; Copy report puts the report on the clipboard', async () => {
  const page = await openView(browser, server.url, '?view=diagnostics', fixture(), { clipboard: true });
  try {
    const items = page.locator('.checks .check');
    assert.equal(await items.count(), 5);
    assert.deepEqual(
      await items.evaluateAll((els) => els.map((e) => e.className)),
      ['check level-ok', 'check level-ok', 'check level-info', 'check level-warning', 'check level-problem'],
    );
    const problem = items.nth(4);
    assert.equal(await problem.locator('.level-icon').textContent(), '×');
    assert.equal(await problem.locator('.level-icon').getAttribute('aria-hidden'), 'true');
    assert.equal(await problem.locator('.subject').textContent(), 'Servers');
    assert.equal(await problem.locator('.check-message').textContent(), 'Echo Notes: no server found.');
    assert.equal(await problem.textContent(), '×Problem: ServersEcho Notes: no server found.');
    assert.match(await items.nth(3).textContent(), /Warning: Clock/);
    assert.deepEqual((await calls(page, 'doctor')).map((c) => c.args), [{ product: null }]);

    await page.getByRole('button', { name: 'Copy report' }).click();
    await page.getByText(/Report copied/).waitFor();
    assert.deepEqual((await calls(page, 'doctor_report')).map((c) => c.args), [{ product: null }]);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), report);
    await screenshot(page, 'diagnostics');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('diagnostics: without the clipboard API the report is copied from a selected text area', async () => {
  const page = await openView(browser, server.url, '?view=diagnostics&product=echo-notes', fixture(), {
    extraInit: `Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined });
      window.__copied = null;
      document.addEventListener('copy', () => { window.__copied = String(window.getSelection()) || document.activeElement.value.slice(document.activeElement.selectionStart, document.activeElement.selectionEnd); });\n`,
  });
  try {
    await page.getByRole('button', { name: 'Copy report' }).click();
    await page.locator('.messages .message').waitFor();
    assert.deepEqual((await calls(page, 'doctor_report')).map((c) => c.args), [{ product: 'echo-notes' }]);
    const copied = await page.evaluate(() => window.__copied);
    const manual = await page.locator('textarea.copy-fallback').count();
    // execCommand('copy') either copied the selected report, or the report stays selected for Ctrl+C.
    if (manual) assert.equal(await page.locator('textarea.copy-fallback').inputValue(), report);
    else assert.equal(copied, report);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('about: version, paths and licenses', async () => {
  const page = await openView(browser, server.url, '?view=about', fixture());
  try {
    assert.match(await page.locator('.subtitle').innerText(), /Version 0\.1\.0/);
    const facts = await page.locator('.facts').innerText();
    assert.match(facts, /State file\s+\/home\/ada\/\.local\/share\/lapwing\/state\.json/);
    assert.match(facts, /Products\s+\/usr\/share\/lap\/products\.d\s+\/home\/ada/);
    assert.match(facts, /Log\s+\/home\/ada\/\.local\/state\/lapwing\/lapwing\.log/);
    assert.equal(await page.locator('tbody tr').count(), 3);
    assert.match(await page.locator('tbody tr').first().innerText(), /tauri\s+2\.9\.0\s+Apache-2\.0 OR MIT/);
    assert.equal(await page.title(), 'About Lapwing — Lapwing');
    await screenshot(page, 'about');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('settings: autostart toggle calls set_autostart; links open Server and Diagnostics by keyboard', async () => {
  const page = await openView(browser, server.url, '?view=settings', fixture());
  try {
    const toggle = page.getByRole('switch', { name: 'Start Lapwing when I log in' });
    await page.waitForFunction(() => !document.querySelector('#autostart').disabled);
    assert.equal(await toggle.isChecked(), true);
    await toggle.click();
    await page.getByText('Lapwing will not start on its own.').waitFor();
    assert.deepEqual((await calls(page, 'set_autostart')).map((c) => c.args), [{ enabled: false }]);
    assert.equal(await toggle.isChecked(), false);

    // Tab order: toggle → Server… → Diagnostics…; Enter and Space press buttons.
    await toggle.focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'open-server');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'open-diagnostics');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => window.__lapwingCalls.filter((c) => c.cmd === 'open_window').length === 2);
    assert.deepEqual((await calls(page, 'open_window')).map((c) => c.args), [
      { view: 'server', product: null },
      { view: 'diagnostics', product: null },
    ]);
    await screenshot(page, 'settings');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('settings: a failed set_autostart is said inline and the toggle goes back', async () => {
  const page = await openView(browser, server.url, '?view=settings', fixture({
    fail: { set_autostart: { kind: 'engine', message: 'The autostart entry could not be written.' } },
  }));
  try {
    const toggle = page.locator('#autostart');
    await page.waitForFunction(() => !document.querySelector('#autostart').disabled);
    await toggle.click();
    await page.getByText('The autostart entry could not be written.').waitFor();
    assert.equal(await toggle.isChecked(), true);
    assert.equal(await page.locator('.messages').getAttribute('aria-live'), 'polite');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('routing: an unknown view falls back to products and says so; key without product explains', async () => {
  const page = await openView(browser, server.url, '?view=nope', fixture());
  try {
    assert.match(await page.locator('main').innerText(), /There is no “nope” window/);
    assert.equal(await page.locator('h1').innerText(), 'Products');
  } finally {
    await page.closeAll();
  }
  const key = await openView(browser, server.url, '?view=key', fixture());
  try {
    assert.match(await key.locator('main').innerText(), /does not say which product/);
    assert.equal((await calls(key)).length, 0);
  } finally {
    await key.closeAll();
  }
});
