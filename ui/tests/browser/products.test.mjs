import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openView, calls, assertClean, screenshot } from './harness.mjs';
import { fixture, products } from './fixtures.mjs';
import { recorded } from './recorded.mjs';

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

const card = (page, id) => page.locator(`article[data-product="${id}"]`);

test('products: every state gets its badge, dates, server words and last attempt', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture());
  try {
    assert.equal(await page.locator('article.product').count(), 6);
    const badges = {
      'acme-studio': ['activated', 'Activated'],
      'acme-export': ['evaluation', 'Evaluation'],
      'borealis-draw': ['evaluation-expired', 'Evaluation ended'],
      'cartograph-pro': ['renewal-due', 'Renewal due'],
      'delta-mixer': ['expired', 'Expired'],
      'echo-notes': ['unlicensed', 'Not licensed'],
    };
    for (const [id, [state, label]] of Object.entries(badges)) {
      const b = card(page, id).locator('.badge');
      assert.equal(await b.getAttribute('data-state'), state, id);
      assert.equal((await b.textContent()).trim(), label, id);
    }
    const studio = card(page, 'acme-studio');
    const text = await studio.innerText();
    assert.match(text, /Activated until 12 Mar 2027/);
    assert.match(text, /Ends\s+12 Mar 2027 \(107 days left\)/);
    assert.match(text, /Kind\s+Term/);
    assert.match(text, /Compliance\s+In compliance/);
    assert.match(text, /Features\s+pro, export/);
    assert.match(text, /Notice\s+Licensed to Example Ltd\./);
    assert.match(text, /Server\s+lap\.example\.com:4711 — DNS SRV/);
    assert.match(text, /Last attempt\s+25 Nov 2026, 11:00 — activated/);

    assert.match(await card(page, 'acme-export').innerText(), /lap\.acme\.example:4711 — product’s default/);
    assert.match(await card(page, 'acme-export').innerText(), /Acme Software Ltd\. · add-on/);
    assert.match(await card(page, 'borealis-draw').innerText(), /DNS-SD/);
    assert.match(await card(page, 'borealis-draw').innerText(), /ended 23 days ago/);
    const carto = await card(page, 'cartograph-pro').innerText();
    assert.match(carto, /192\.0\.2\.10:4711 — machine policy/);
    assert.match(carto, /no answer/);
    assert.match(carto, /Out of compliance/);
    assert.match(carto, /6 days left/);
    assert.equal(await card(page, 'cartograph-pro').locator('.diagnosis li').count(), 3);
    assert.equal(await card(page, 'cartograph-pro').locator('.diagnosis li').first().getAttribute('data-code'), 'clock-may-be-off');
    assert.match(await card(page, 'cartograph-pro').locator('.diagnosis li').first().innerText(), /clock may be off/);
    const delta = await card(page, 'delta-mixer').innerText();
    assert.match(delta, /lap\.corp\.example:4711 — set by hand/);
    assert.match(delta, /answer refused/);
    assert.match(delta, /clock moved back by 3 minutes/);
    // The recorded cause (Rust's), shown after the attempt's outcome: this code's sentence
    // tells a terminal user to type a command, so the window says the gist and offers the
    // button instead (causes.ts).
    const echo = await card(page, 'echo-notes').innerText();
    const noServer = recorded.status['echo-notes'].last_attempt.diagnosis[0];
    assert.equal(noServer.code, 'no-server-found');
    const notSent = echo.indexOf('not sent');
    assert.ok(notSent >= 0 && echo.indexOf('No server found.') > notSent, echo);
    assert.ok(!echo.includes('lapctl'), echo);
    assert.equal(await card(page, 'echo-notes').getByRole('button', { name: 'Set the server' }).count(), 1);
    // The header counts the verdicts Rust gave: the tray's icon would be "not usable" too.
    assert.equal(await page.locator('#summary').innerText(), '6 products · 3 not usable · 1 needs attention');
    assert.equal(await page.locator('#summary').getAttribute('data-verdict'), 'broken');
    await screenshot(page, 'products-light');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products: dark theme renders (screenshot) with the same content', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture(), { colorScheme: 'dark' });
  try {
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(28, 28, 30)');
    await screenshot(page, 'products-dark');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products: buttons call activate and open_window with the product; Activate all', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture());
  try {
    const echo = card(page, 'echo-notes');
    await echo.getByRole('button', { name: 'Enter or correct key…' }).click();
    await echo.getByRole('button', { name: 'Server…' }).click();
    await page.waitForFunction(() => window.__lapwingCalls.filter((c) => c.cmd === 'open_window').length === 2);
    assert.deepEqual((await calls(page, 'open_window')).map((c) => c.args), [
      { view: 'key', product: 'echo-notes' },
      { view: 'server', product: 'echo-notes' },
    ]);

    const delta = card(page, 'delta-mixer');
    await delta.getByRole('button', { name: 'Activate now' }).click();
    await page.locator('article[data-product="delta-mixer"] .badge[data-state="activated"]').waitFor();
    assert.deepEqual((await calls(page, 'activate')).map((c) => c.args), [{ id: 'delta-mixer' }]);
    // Focus stays on the product's Activate button after its card is redrawn.
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.focus), 'delta-mixer:activate');

    await page.getByRole('button', { name: 'Activate all' }).click();
    await page.getByText('4 of 6 products activated; 2 not sent (Borealis Draw: no attempt was made; Echo Notes: no server found).').waitFor();
    assert.equal((await calls(page, 'activate_all')).length, 1);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products: status-changed updates the list live; empty state', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture());
  try {
    await page.waitForFunction(() => window.__lapwingFake.listenerCount('status-changed') === 1);
    const next = products.map((p) => (p.id === 'echo-notes'
      ? { ...p, state: 'activated', line: products[0].line, has_key: true }
      : p)).filter((p) => p.id !== 'borealis-draw');
    await page.evaluate((payload) => window.__lapwingFake.emit('status-changed', payload), next);
    await page.locator('article[data-product="echo-notes"] .badge[data-state="activated"]').waitFor();
    assert.equal(await page.locator('article.product').count(), 5);

    await page.evaluate(() => window.__lapwingFake.emit('status-changed', []));
    await page.getByText('No licensed products are installed.').waitFor();
    assert.equal(await page.locator('article.product').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Activate all' }).isVisible(), false);
    await screenshot(page, 'products-empty');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products: names and notices are text, never markup; errors show inline', async () => {
  const evil = '<img src=x onerror="window.__pwned=1">';
  const list = [{ ...products[0], name: evil, notice: `<b>${evil}</b>` }];
  const page = await openView(browser, server.url, '?view=products', fixture({
    products: list,
    fail: { activate: { kind: 'keyring', message: 'The keyring is locked: unlock it and try again.' } },
  }));
  try {
    assert.equal(await page.locator('article.product h2').textContent(), evil);
    assert.equal(await page.locator('article.product img').count(), 0);
    let dialogs = 0;
    page.on('dialog', (d) => { dialogs++; void d.dismiss(); });
    await page.getByRole('button', { name: 'Activate now' }).click();
    const msg = page.locator('article.product .messages[aria-live="polite"] .message-error');
    await msg.waitFor();
    assert.match(await msg.innerText(), /keyring is locked/);
    assert.equal(dialogs, 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products: an override that did not answer is named next to the server that did', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture());
  try {
    await page.waitForFunction(() => window.__lapwingFake.listenerCount('status-changed') === 1);
    const silent = {
      code: 'override-silent',
      address: '192.0.2.7:4711',
      message: "the server override 192.0.2.7:4711 did not answer: correct it, or clear it to use the product's servers (`lapctl server clear`)",
    };
    const next = products.map((p) => (p.id === 'acme-export'
      ? { ...p, last_attempt: { ...p.last_attempt, outcome: 'activated', diagnosis: [silent] } }
      : p));
    await page.evaluate((payload) => window.__lapwingFake.emit('status-changed', payload), next);
    const exportCard = card(page, 'acme-export');
    await exportCard.locator('[data-override-silent="192.0.2.7:4711"]').waitFor();
    const text = await exportCard.innerText();
    assert.match(text, /lap\.acme\.example:4711 — product’s default \(your override 192\.0\.2\.7:4711 did not answer\)/);
    assert.match(text, /The server override 192\.0\.2\.7:4711 did not answer/);
    assert.ok(!text.includes('lapctl'), text);
    assert.equal(await exportCard.getByRole('button', { name: 'Set the server' }).count(), 1);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('products: a new key not accepted yet is said on the card, the key in effect stays', async () => {
  const pending = recorded.status['after-pending-key'];
  const withPending = products.map((p) =>
    (p.id === 'acme-studio' ? { ...p, pending_key: pending.pending_key, pending_note: pending.pending_note } : p));
  const page = await openView(browser, server.url, '?view=products', fixture({ products: withPending }));
  try {
    const studio = card(page, 'acme-studio');
    assert.equal(await studio.locator('.pending-key-note').innerText(), pending.pending_note);
    const text = await studio.innerText();
    assert.match(text, /New key\s+entered, not accepted yet/);
    assert.match(text, /Activated until 12 Mar 2027/, 'the key in effect keeps its line');
    assert.equal(await card(page, 'acme-export').locator('.pending-key-note').count(), 0);
    assert.doesNotMatch(await card(page, 'acme-export').innerText(), /New key/);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});
