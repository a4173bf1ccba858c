// "Deactivate on this computer…" in the Products window, through the built bundle on the fake
// IPC: released, kept with the server's Notice, unanswered then "Deactivate here anyway", an
// error said plainly, and a dialog that survives the status redraws around it.
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

const ID = 'acme-studio';
// The words Rust gives each outcome: lapwing-core's `Deactivation::sentence` made a sentence
// by src-tauri/src/deactivate.rs (its unit tests check the same words).
const RELEASED = 'Acme Studio was deactivated on this computer: its seat is free for another computer.';
const RELEASED_KEY_GONE = `${RELEASED} The license key was removed from this computer.`;
const LIMIT = 'the next transfer of this license is possible on 3 Mar 2027';
const KEPT = `Acme Studio stays activated: ${LIMIT}.`;
const LEASE = "the seat stays taken on the server until its lease runs out (the vendor's setting, by default 90 days past the license's end or 180 days)";
const SILENT = `Nothing was changed: no server answered the release of Acme Studio (no answer from the server); you can deactivate it here anyway (${LEASE}).`;
const HERE = `Acme Studio was deactivated on this computer; ${LEASE}.`;
const DEACTIVATED = {
  state: 'deactivated', license_id: null, ends_at: null, not_after: null, days_left: null,
  next_attempt_at: null, deactivated_at: 1795608000, line: 'Deactivated on this computer',
  verdict: { level: 'all-good', reason: 'deactivated', message: 'deactivated on this computer' },
};

const dialog = (page) => page.locator(`#deactivate-${ID}`);
const openButton = (page) => page.locator(`#deactivate-open-${ID}`);
const badge = (page) => page.locator(`article[data-product="${ID}"] .badge[data-state]`);

test('deactivate: offered only where there is an activation to give up', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture());
  try {
    assert.equal(await page.locator('[data-action="deactivate"]').count(), 1);
    assert.equal((await openButton(page).innerText()).trim(), 'Deactivate on this computer…');
    assert.equal(await page.locator('article[data-product="echo-notes"] [data-action="deactivate"]').count(), 0);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('deactivate: released, with the key removed; progress while it runs; Done closes', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture({
    deactivate: { [ID]: [{ held: true, outcome: 'released', message: RELEASED_KEY_GONE, key_removed: true, status: { ...DEACTIVATED, has_key: false } }] },
  }));
  try {
    await openButton(page).click();
    assert.equal(await dialog(page).getAttribute('data-phase'), 'confirm');
    const text = await dialog(page).innerText();
    assert.match(text, /free this computer’s seat/);
    assert.match(text, /key stays stored here/);
    // The safe answer has the focus.
    assert.equal(await page.evaluate(() => document.activeElement?.id), `deactivate-cancel-${ID}`);
    await page.locator(`#deactivate-remove-key-${ID}`).check();
    assert.match(await dialog(page).innerText(), /key is removed from this computer/);
    await page.locator(`#deactivate-confirm-${ID}`).click();

    await page.waitForFunction(() => window.__lapwingFake.heldCount() === 1);
    assert.equal(await dialog(page).getAttribute('data-phase'), 'running');
    assert.match(await dialog(page).innerText(), /Asking the license server to free the seat…/);
    assert.equal(await openButton(page).isDisabled(), true);
    await page.evaluate(() => window.__lapwingFake.releaseHeld());

    const result = page.locator(`#deactivate-result-${ID}`);
    await result.waitFor();
    assert.equal(await result.getAttribute('data-outcome'), 'released');
    assert.equal((await result.innerText()).trim(), RELEASED_KEY_GONE);
    assert.deepEqual((await calls(page, 'deactivate')).map((c) => c.args), [{ id: ID, remove_key: true, anyway: false }]);
    // The card is the new status: deactivated, nothing left to deactivate.
    assert.equal(await badge(page).getAttribute('data-state'), 'deactivated');
    assert.equal((await badge(page).innerText()).trim(), 'Deactivated');
    assert.equal(await openButton(page).count(), 0);
    assert.equal(await page.locator(`#deactivate-anyway-${ID}`).count(), 0);
    assert.equal(await page.evaluate(() => document.activeElement?.id), `deactivate-done-${ID}`);
    await screenshot(page, 'products-deactivated');
    await page.locator(`#deactivate-done-${ID}`).click();
    assert.equal(await dialog(page).count(), 0);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('deactivate: kept with the server’s Notice; the activation and the key stay', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture({
    deactivate: { [ID]: [{ outcome: 'kept', message: KEPT, notice: LIMIT }] },
  }));
  try {
    await openButton(page).click();
    await page.locator(`#deactivate-confirm-${ID}`).click();
    const result = page.locator(`#deactivate-result-${ID}`);
    await result.waitFor();
    assert.equal(await result.getAttribute('data-outcome'), 'kept');
    // The notice is said once, in the message.
    assert.equal((await result.innerText()).trim(), KEPT);
    assert.deepEqual((await calls(page, 'deactivate')).map((c) => c.args), [{ id: ID, remove_key: false, anyway: false }]);
    assert.equal(await badge(page).getAttribute('data-state'), 'activated');
    assert.equal(await page.locator(`#deactivate-anyway-${ID}`).count(), 0);
    // Escape closes the dialog; the button is there again.
    await page.keyboard.press('Escape');
    assert.equal(await dialog(page).count(), 0);
    assert.equal(await openButton(page).isEnabled(), true);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('deactivate: unanswered changes nothing, then "Deactivate here anyway" with its consequence', async () => {
  const page = await openView(browser, server.url, '?view=products', fixture({
    deactivate: { [ID]: [
      { outcome: 'unanswered', message: SILENT },
      { outcome: 'deactivated-here', message: HERE, status: DEACTIVATED },
    ] },
  }));
  try {
    await openButton(page).click();
    await page.locator(`#deactivate-confirm-${ID}`).click();
    const result = page.locator(`#deactivate-result-${ID}`);
    await result.waitFor();
    assert.equal(await result.getAttribute('data-outcome'), 'unanswered');
    assert.equal((await result.innerText()).trim(), SILENT);
    assert.equal(await badge(page).getAttribute('data-state'), 'activated');
    assert.match(await dialog(page).innerText(), /The seat stays taken on the server until its lease runs out\./);
    assert.equal((await page.locator(`#deactivate-done-${ID}`).innerText()).trim(), 'Keep the activation');
    // A status redraw (the engine renewing something else) leaves the dialog as it was.
    await page.evaluate(() => window.__lapwingFake.emit('status-changed', window.__lapwingFake.state.products));
    assert.equal(await page.locator(`#deactivate-anyway-${ID}`).count(), 1);
    await screenshot(page, 'products-deactivate-unanswered');

    await page.locator(`#deactivate-anyway-${ID}`).click();
    await page.locator(`#deactivate-result-${ID}[data-outcome="deactivated-here"]`).waitFor();
    assert.equal((await result.innerText()).trim(), HERE);
    assert.deepEqual((await calls(page, 'deactivate')).map((c) => c.args), [
      { id: ID, remove_key: false, anyway: false },
      { id: ID, remove_key: false, anyway: true },
    ]);
    assert.equal(await badge(page).getAttribute('data-state'), 'deactivated');
    assert.equal(await page.locator(`#deactivate-anyway-${ID}`).count(), 0);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('deactivate: an error is said plainly in the dialog, and Try again asks again', async () => {
  const keyring = { kind: 'keyring', message: 'The keyring is locked: unlock it and try again.' };
  const page = await openView(browser, server.url, '?view=products', fixture({
    deactivate: { [ID]: [{ error: keyring }, { outcome: 'released', message: RELEASED, status: DEACTIVATED }] },
  }));
  try {
    await openButton(page).click();
    await page.locator(`#deactivate-confirm-${ID}`).click();
    const result = page.locator(`#deactivate-result-${ID}[data-outcome="error"]`);
    await result.waitFor();
    assert.equal((await result.textContent()).trim(), `Error: ${keyring.message}`);
    assert.equal(await badge(page).getAttribute('data-state'), 'activated');
    await page.locator(`#deactivate-retry-${ID}`).click();
    await page.locator(`#deactivate-result-${ID}[data-outcome="released"]`).waitFor();
    assert.equal((await calls(page, 'deactivate')).length, 2);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});

test('deactivate: Duplicate and moved flags and a sunset product are shown from the status', async () => {
  const base = fixture();
  const studio = base.products.find((p) => p.id === ID);
  const note = 'This installation looks cloned or restored from a snapshot (the server saw a later one): a cloned virtual machine needs its own SMBIOS UUID and machine id (/etc/machine-id); then deactivate the clone and activate it again';
  Object.assign(studio, { duplicate: true, moved_from_previous_hardware: true, lifecycle_note: note });
  base.products.push({
    ...studio, id: 'final-cut', name: 'Final Cut', state: 'sunset', duplicate: false, moved_from_previous_hardware: false,
    lifecycle_note: null, sunset_issued: 1795608000, line: "Activated for good (the vendor's final release)",
  });
  const page = await openView(browser, server.url, '?view=products', base);
  try {
    const flags = page.locator(`article[data-product="${ID}"] [data-flag]`);
    assert.deepEqual(await flags.evaluateAll((els) => els.map((e) => [e.dataset.flag, e.textContent])), [
      ['duplicate', 'Looks cloned'],
      ['moved', 'Moved to new hardware'],
    ]);
    assert.equal(await page.locator(`article[data-product="${ID}"] .lifecycle-note`).innerText(), note);
    const sunset = page.locator('article[data-product="final-cut"]');
    assert.match(await sunset.innerText(), /Final release\s+25 Nov 2026/);
    assert.equal((await sunset.locator('.badge[data-state]').innerText()).trim(), 'Activated for good');
    assert.equal(await sunset.locator('[data-action="deactivate"]').count(), 0);
    assert.equal(await sunset.locator('[data-flag]').count(), 0);
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});
