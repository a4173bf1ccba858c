import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openView, calls, assertClean, screenshot } from './harness.mjs';
import { fixture } from './fixtures.mjs';

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

test('server: a bad HOST:PORT is refused inline, a good one is saved with the right arguments', async () => {
  const page = await openView(browser, server.url, '?view=server&product=acme-studio', fixture());
  try {
    // Discovery's findings, in order, with their sources in words; skipped ones with a reason.
    const rows = await page.locator('.discovery tbody tr').allInnerTexts();
    assert.equal(rows.length, 3);
    assert.match(rows[0], /1\s+lap\.example\.com:4711\s+DNS SRV\s+_lap\._udp\.example\.com, priority 10/);
    assert.match(rows[2], /lap\.acme\.example:4711\s+product’s default/);
    assert.match(await page.locator('.skipped').innerText(), /DNS-SD _lap\._udp\.local: no answer to mDNS/);

    const input = page.getByLabel('Server for this product');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'server-input');
    await input.fill('lap.example.com');
    await page.waitForFunction(() => document.querySelector('#server-input').getAttribute('aria-invalid') === 'true');
    assert.equal(await page.locator('#server-feedback').innerText(), 'Expected HOST:PORT, for example lap.example.com:4711.');
    await screenshot(page, 'server-invalid');
    // Saving what is invalid does not reach set_server.
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForFunction(() => document.querySelector('#server-feedback').textContent.includes('HOST:PORT'));
    assert.equal((await calls(page, 'set_server')).length, 0);

    await input.fill('lap.corp.example:70000');
    await page.waitForFunction(() => document.querySelector('#server-feedback').textContent.includes('out of range'));

    await input.fill('lap.corp.example:4711');
    await page.waitForFunction(() => document.querySelector('#server-feedback').classList.contains('ok'));
    assert.equal(await input.getAttribute('aria-invalid'), 'false');
    await input.press('Enter');
    await page.getByText('Saved: lap.corp.example:4711 is now the server for acme-studio.').waitFor();
    assert.deepEqual((await calls(page, 'set_server')).map((c) => c.args), [
      { product: 'acme-studio', server: 'lap.corp.example:4711' },
    ]);
    assert.ok((await calls(page, 'check_server')).some((c) => c.args.text === 'lap.corp.example:4711'));
    assert.match(await page.locator('.facts').innerText(), /This product\s+lap\.corp\.example:4711/);
    assert.match(await page.locator('.discovery tbody tr').first().innerText(), /lap\.corp\.example:4711\s+set by hand/);

    await page.getByRole('button', { name: 'Try now' }).click();
    await page.locator('.messages .message-ok').getByText(/Activated until/).waitFor();
    assert.deepEqual((await calls(page, 'activate')).map((c) => c.args), [{ id: 'acme-studio' }]);
    await screenshot(page, 'server-saved');

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByText(/found automatically again/).waitFor();
    assert.deepEqual((await calls(page, 'set_server')).map((c) => c.args)[1], { product: 'acme-studio', server: null });
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('server: global window passes product null; Try now activates all', async () => {
  const page = await openView(browser, server.url, '?view=server', fixture());
  try {
    assert.deepEqual((await calls(page, 'server_info')).map((c) => c.args), [{ product: null }]);
    await page.getByLabel('Server for every product').fill('[2001:db8::1]:4711');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText(/is now the server for every product/).waitFor();
    assert.deepEqual((await calls(page, 'set_server')).map((c) => c.args), [{ product: null, server: '[2001:db8::1]:4711' }]);
    await page.getByRole('button', { name: 'Try now' }).click();
    await page.getByText(/products activated\./).waitFor();
    assert.equal((await calls(page, 'activate_all')).length, 1);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('server: a locked machine policy disables the inputs and says so', async () => {
  const page = await openView(browser, server.url, '?view=server&product=cartograph-pro', fixture({
    policy: { server: 'lap.corp.example:4711', locked: true },
  }));
  try {
    const note = page.locator('#policy-lock');
    assert.equal(await note.isVisible(), true);
    assert.equal(await note.innerText(), 'Your administrator set the server to lap.corp.example:4711; it cannot be changed here.');
    assert.equal(await page.locator('#server-input').isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Save' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Clear' }).isDisabled(), true);
    assert.match(await page.locator('#server-input').getAttribute('aria-describedby'), /policy-lock/);
    assert.match(await page.locator('.facts').innerText(), /Machine policy\s+lap\.corp\.example:4711 \(locked\)/);
    assert.match(await page.locator('.discovery tbody tr').first().innerText(), /machine policy/);
    // Try now still works: the policy decides where, not whether.
    assert.equal(await page.getByRole('button', { name: 'Try now' }).isEnabled(), true);
    await screenshot(page, 'server-policy-locked');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});
