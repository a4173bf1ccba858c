import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openView, calls, assertClean, screenshot } from './harness.mjs';
import { fixture } from './fixtures.mjs';
import { recorded } from './recorded.mjs';

/** What Rust says when `check_server` refuses `text`. */
const refusal = (text) => recorded.check_server[text].error.message;

/**
 * What Rust's `server_info` answered in this situation (the key the fake backend looks it up
 * with: `Situation` in src-tauri/tests/ui_recordings.rs, the same fields in the same order).
 */
function serverInfo(product, { product_override = null, global_override = null, policy_server = null, policy_locked = false } = {}) {
  const key = JSON.stringify({ product, product_override, global_override, policy_server, policy_locked });
  assert.ok(key in recorded.server_info, `no recorded server_info for ${key}`);
  return recorded.server_info[key].ok;
}

/** Text as the page shows it, white space (cells, lines) collapsed to one space. */
const squash = (text) => text.replace(/\s+/g, ' ').trim();
const discoveryRows = async (page) => (await page.locator('.discovery tbody tr').allInnerTexts()).map(squash);

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
    // Discovery's findings, in Rust's order (a host with two addresses gives two rows), with
    // their sources in words; a skipped source with its reason.
    const found = serverInfo('acme-studio');
    const detail = found.candidates.map((c) => c.detail);
    assert.deepEqual(await discoveryRows(page), [
      `1 [2001:db8::11]:4711 lap.example.com DNS SRV ${detail[0]}`,
      `2 192.0.2.1:4711 lap.example.com DNS SRV ${detail[1]}`,
      `3 192.0.2.2:4711 lap2.example.com DNS SRV ${detail[2]}`,
      `4 192.0.2.3:4711 lap.acme.example product’s default ${detail[3]}`,
    ]);
    assert.match(detail[0], /^SRV _lap\._udp\.example\.com priority 10 /);
    assert.equal(squash(await page.locator('.skipped').innerText()),
      `DNS-SD _lap._udp.corp.example: ${found.skipped[0].reason}`);

    const input = page.getByLabel('Server for this product');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'server-input');
    await input.fill('lap.example.com');
    await page.waitForFunction(() => document.querySelector('#server-input').getAttribute('aria-invalid') === 'true');
    assert.equal(await page.locator('#server-feedback').innerText(), refusal('lap.example.com'));
    await screenshot(page, 'server-invalid');
    // Saving what is invalid does not reach set_server.
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForFunction((m) => document.querySelector('#server-feedback').textContent === m, refusal('lap.example.com'));
    assert.equal((await calls(page, 'set_server')).length, 0);

    await input.fill('lap.corp.example:70000');
    await page.waitForFunction((m) => document.querySelector('#server-feedback').textContent === m, refusal('lap.corp.example:70000'));

    await input.fill('lap.corp.example:4711');
    await page.waitForFunction(() => document.querySelector('#server-feedback').classList.contains('ok'));
    assert.equal(await input.getAttribute('aria-invalid'), 'false');
    await input.press('Enter');
    await page.getByText('Saved: lap.corp.example:4711 is now the server for Acme Studio.').waitFor();
    assert.deepEqual((await calls(page, 'set_server')).map((c) => c.args), [
      { product: 'acme-studio', server: 'lap.corp.example:4711' },
    ]);
    assert.ok((await calls(page, 'check_server')).some((c) => c.args.text === 'lap.corp.example:4711'));
    assert.match(await page.locator('.facts').innerText(), /This product\s+lap\.corp\.example:4711/);
    // The override is tried first, at the address its name resolves to; discovery follows.
    const rows = await discoveryRows(page);
    assert.match(rows[0], /^1 192\.0\.2\.10:4711 lap\.corp\.example set by hand manual override for this product/);
    assert.match(rows[1], /^2 \[2001:db8::11\]:4711 lap\.example\.com DNS SRV/);

    await page.getByRole('button', { name: 'Try now' }).click();
    await page.locator('.messages .message-ok').getByText(/Activated until/).waitFor();
    assert.deepEqual((await calls(page, 'activate')).map((c) => c.args), [{ id: 'acme-studio' }]);
    await screenshot(page, 'server-saved');

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByText(/found automatically again/).waitFor();
    assert.deepEqual((await calls(page, 'set_server')).map((c) => c.args)[1], { product: 'acme-studio', server: null });
    assert.equal((await discoveryRows(page))[0], `1 [2001:db8::11]:4711 lap.example.com DNS SRV ${detail[0]}`);
    assert.match(await page.locator('.facts').innerText(), /This product\s+not set/);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('server: global window passes product null; Try now activates all', async () => {
  const page = await openView(browser, server.url, '?view=server', fixture());
  try {
    assert.deepEqual((await calls(page, 'server_info')).map((c) => c.args), [{ product: null }]);
    // Without a product there is no manifest to follow: nothing found, and why DNS-SD gave none.
    await page.getByText('No server found. Set one above, or ask your administrator.').waitFor();
    assert.equal(squash(await page.locator('.skipped').innerText()),
      `DNS-SD _lap._udp.corp.example: ${serverInfo(null).skipped[0].reason}`);
    await page.getByLabel('Server for every product').fill('[2001:db8::1]:4711');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText(/is now the server for every product/).waitFor();
    assert.deepEqual((await calls(page, 'set_server')).map((c) => c.args), [{ product: null, server: '[2001:db8::1]:4711' }]);
    assert.match(await page.locator('.facts').innerText(), /Every product\s+\[2001:db8::1\]:4711/);
    assert.deepEqual(await discoveryRows(page), ['1 [2001:db8::1]:4711 set by hand manual override (all products): [2001:db8::1]:4711']);
    await page.getByRole('button', { name: 'Try now' }).click();
    // Rust's count (BatchResult): attempts not sent are not counted as activated, and said.
    await page.getByText(recorded.activate_all[Object.keys(recorded.activate_all)[0]].message).waitFor();
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
    // The locked server is the only one tried.
    const { detail } = serverInfo('cartograph-pro', { policy_server: 'lap.corp.example:4711', policy_locked: true }).candidates[0];
    assert.deepEqual(await discoveryRows(page), [`1 192.0.2.10:4711 lap.corp.example machine policy ${detail}`]);
    // Try now still works: the policy decides where, not whether.
    assert.equal(await page.getByRole('button', { name: 'Try now' }).isEnabled(), true);
    await screenshot(page, 'server-policy-locked');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});
