import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openView, calls, assertClean, screenshot } from './harness.mjs';
import { fixture } from './fixtures.mjs';
import { keys, recorded } from './recorded.mjs';

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

/** Dispatches a real paste event (with clipboard data) on `selector`. */
async function paste(page, selector, text) {
  await page.evaluate(({ selector, text }) => {
    const target = document.querySelector(selector);
    const data = new DataTransfer();
    data.setData('text/plain', text);
    target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, { selector, text });
}

test('key: pasted with junk spacing → typo named → suggestion → Activate → activated', async () => {
  const page = await openView(browser, server.url, '?view=key&product=echo-notes', fixture());
  try {
    assert.match(await page.locator('h1').innerText(), /License key/);
    assert.match(await page.locator('.subtitle').innerText(), /Echo Notes · Echo Labs/);
    assert.match(await page.getByText(/No key is stored/).innerText(), /evaluation/);
    // The field is labelled and described for screen readers.
    const input = page.getByLabel('License key', { exact: true });
    assert.equal(await input.getAttribute('aria-describedby'), 'key-help key-feedback');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'key-input');

    const good = keys.entered;
    const typo = keys.mistyped.split(''); // `good` with group 3, character 2 typed as "U"
    const groups = typo.join('').match(/.{4}/g);
    const messy = `  \n${groups.slice(0, 3).join(' ').toLowerCase()}\r\n\t${groups.slice(3, 5).join('--')}\n ${groups.slice(5).join('  ')}  \n`;
    await paste(page, '#key-input', messy);

    const expectedValue = typo.join('').match(/.{4}/g).join('-');
    assert.equal(await input.inputValue(), expectedValue);
    const feedback = page.locator('#key-feedback');
    await page.waitForFunction(() => document.querySelector('#key-feedback').textContent.includes('can’t occur'));
    assert.equal(await feedback.innerText(), 'Group 3, character 2: “U” can’t occur in a license key.');
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    const badGroups = await page.locator('.key-strip .key-group').evaluateAll((els) =>
      els.map((e, i) => (e.classList.contains('bad') ? i : -1)).filter((i) => i >= 0));
    assert.deepEqual(badGroups, [2]);
    assert.equal(await page.locator('.key-strip .key-group').nth(2).locator('.slot').nth(1).getAttribute('class'), 'slot bad');
    assert.equal(await page.locator('#activate-key').isDisabled(), true);
    const checked = (await calls(page, 'check_key')).map((c) => c.args.text);
    assert.ok(checked.includes(typo.join('')), 'check_key got the normalized text');

    await screenshot(page, 'key-typo');
    const suggestion = page.getByRole('button', { name: `Use ${good}` });
    await suggestion.click();
    await page.waitForFunction(() => document.querySelector('#key-feedback').classList.contains('ok'));
    assert.equal(await input.inputValue(), good);
    assert.equal(await input.getAttribute('aria-invalid'), 'false');
    assert.equal(await page.locator('.suggestions').isVisible(), false);
    assert.equal(await page.locator('#activate-key').isEnabled(), true);

    await page.locator('#activate-key').click();
    await page.locator('.messages .badge[data-state="activated"]').waitFor();
    assert.deepEqual((await calls(page, 'set_key')).map((c) => c.args), [{ id: 'echo-notes', key: good }]);
    assert.match(await page.locator('.messages .message-ok').innerText(), /Activated until 25 Mar 2027/);
    assert.equal(await input.inputValue(), '', 'the key does not stay in the field');
    // The stored key is shown masked, in full only on request.
    const stored = page.locator('#stored-key');
    assert.equal(await stored.innerText(), `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-${good.slice(-4)}`);
    const showBtn = page.getByRole('button', { name: 'Show' });
    await showBtn.click();
    await page.waitForFunction((g) => document.querySelector('#stored-key').textContent === g, good);
    assert.equal(await page.getByRole('button', { name: 'Hide' }).getAttribute('aria-pressed'), 'true');
    await page.getByRole('button', { name: 'Hide' }).click();
    assert.match(await stored.innerText(), /^XXXX-/);
    assert.equal((await calls(page, 'reveal_key')).length, 1);
    await screenshot(page, 'key-activated');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('key: wrong length and a check-character typo are explained; typing keeps groups', async () => {
  const page = await openView(browser, server.url, '?view=key&product=acme-studio', fixture());
  try {
    const input = page.locator('#key-input');
    await input.pressSequentially('abcd efg');
    assert.equal(await input.inputValue(), 'ABCD-EFG');
    await page.waitForFunction(() => document.querySelector('#key-feedback').textContent !== '');
    assert.equal(await page.locator('#key-feedback').innerText(), '7 of 28 characters found: 21 missing.');

    // Two neighbouring, different characters of group 2 swapped: a classic typo the check catches.
    const good = keys.swap_fixed;
    await input.fill('');
    await paste(page, '#key-input', keys.swapped);
    await page.waitForFunction(() => document.querySelector('#key-feedback').textContent.includes('check out'));
    assert.match(await page.locator('#key-feedback').innerText(), /mistyped or two neighbouring ones are swapped/);
    const offered = await page.locator('.suggestion').allInnerTexts();
    assert.ok(offered.includes(good), `suggestions ${offered} include ${good}`);
    assert.equal(await page.locator('#activate-key').isDisabled(), true);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('key: paste anywhere in the window fills the field; remove key asks first, Escape cancels', async () => {
  const page = await openView(browser, server.url, '?view=key&product=acme-studio', fixture());
  try {
    const good = keys.pasted;
    await page.locator('h1').click();
    await paste(page, 'body', `Your key:\n${good.replace(/-/g, ' ')}`.split(':')[1]);
    await page.waitForFunction(() => document.querySelector('#key-feedback').classList.contains('ok'));
    assert.equal(await page.locator('#key-input').inputValue(), good);

    assert.equal(await page.locator('#stored-key').innerText(), `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-${keys.stored.slice(-4)}`);
    await page.getByRole('button', { name: 'Remove key…' }).click();
    const cancel = page.getByRole('button', { name: 'Cancel' });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
    await page.keyboard.press('Escape');
    assert.equal(await cancel.count(), 0);
    assert.equal((await calls(page, 'remove_key')).length, 0);
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Remove key…');

    await page.getByRole('button', { name: 'Remove key…' }).click();
    await page.getByRole('button', { name: 'Remove', exact: true }).click();
    await page.getByText(/No key is stored/).waitFor();
    assert.deepEqual((await calls(page, 'remove_key')).map((c) => c.args), [{ id: 'acme-studio' }]);
    // The product's status line after the removal, as Rust words it.
    assert.equal(await page.locator('.messages .message-ok').first().innerText(), `Key removed. ${recorded.status['after-removal'].line}`);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('key: a key the server ignores stays pending: said plainly, no green Activated, and it can be dropped', async () => {
  const other = keys.pasted;
  const page = await openView(browser, server.url, '?view=key&product=acme-studio', fixture({ ignoredKeys: [other] }));
  try {
    const masked = `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-${keys.stored.slice(-4)}`;
    assert.equal(await page.locator('#stored-key').innerText(), masked);
    assert.equal(await page.locator('#drop-pending-key').isVisible(), false, 'nothing pending yet');
    await paste(page, '#key-input', other);
    await page.waitForFunction(() => document.querySelector('#key-feedback').classList.contains('ok'));
    await page.locator('#activate-key').click();
    await page.locator('#enter-another').waitFor();
    const result = await page.locator('.messages').first().innerText();
    const note = recorded.status['after-pending-key'].pending_note;
    assert.match(note, /not accepted yet.*another product/);
    assert.ok(result.includes(note), `${result} says ${note}`);
    assert.equal(await page.locator('.messages .message-ok').count(), 0, 'no success message');
    assert.equal(await page.locator('.messages .badge[data-state="activated"]').count(), 0, 'no green Activated');
    // The working key is still the key; the new one is never shown.
    assert.equal(await page.locator('#stored-key').innerText(), masked);
    assert.equal(await page.locator('#pending-key-note').innerText(), note);
    assert.ok(!(await page.locator('body').innerText()).includes(other.slice(-4)));

    const drop = page.getByRole('button', { name: 'Drop the new key' });
    await drop.click();
    await page.locator('#drop-pending-key').waitFor({ state: 'hidden' });
    assert.deepEqual((await calls(page, 'drop_pending_key')).map((c) => c.args), [{ id: 'acme-studio' }]);
    assert.match(await page.locator('.messages .message-ok').first().innerText(), /The new key was dropped; the current key stays/);
    assert.equal(await page.locator('#stored-key').innerText(), masked);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('key: the all-zero key is refused, never sent', async () => {
  const page = await openView(browser, server.url, '?view=key&product=echo-notes', fixture());
  try {
    await paste(page, '#key-input', keys.all_zero);
    const feedback = page.locator('#key-feedback');
    await page.waitForFunction(() => document.querySelector('#key-feedback').classList.contains('error'));
    assert.match(await feedback.innerText(), /not a license key/);
    assert.equal(await page.getByLabel('License key', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#activate-key').isDisabled(), true);
    assert.deepEqual(await calls(page, 'set_key'), []);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});
