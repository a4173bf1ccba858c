// "Deactivate on this computer…" in the Products window, through the built bundle on the fake
// IPC: released, kept with the server's Notice, unanswered then "Deactivate here anyway", an
// error said plainly, and a dialog that survives the status redraws around it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openView, calls, assertClean, screenshot } from './harness.mjs';
import { fixture } from './fixtures.mjs';
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

const ID = 'acme-studio';
// What Rust answers, recorded by src-tauri/tests/ui_recordings.rs: each outcome's sentence
// (lapwing-core's `Deactivation::sentence`, made the window's by src-tauri/src/deactivate.rs)
// and the statuses a product moves to.
const said = (c) => recorded.deactivate[c].message;
const RELEASED_KEY_GONE = said('released-key-removed');
const KEPT = said('kept-notice');
const SILENT = said('unanswered');
const HERE = said('deactivated-here');

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
    deactivate: { [ID]: [{ held: true, case: 'released-key-removed', status: 'after-deactivation' }] },
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
    deactivate: { [ID]: [{ case: 'kept-notice' }] },
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
      { case: 'unanswered' },
      { case: 'deactivated-here', status: 'after-deactivation' },
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
    // The consequence is said once (the answer's sentence says it) and read with the button.
    assert.equal((await dialog(page).innerText()).split('until its lease runs out').length - 1, 1);
    assert.match(SILENT, /the seat stays taken on the server until its lease runs out/);
    assert.equal(await page.locator(`#deactivate-anyway-${ID}`).getAttribute('aria-describedby'), `deactivate-message-${ID}`);
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
    deactivate: { [ID]: [{ error: keyring }, { case: 'released', status: 'after-deactivation' }] },
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
  const cloned = recorded.status["after-duplicate"];
  const note = cloned.lifecycle_note;
  Object.assign(studio, {
    duplicate: cloned.duplicate, moved_from_previous_hardware: cloned.moved_from_previous_hardware,
    lifecycle_note: note, line: cloned.line, verdict: cloned.verdict,
  });
  const final = recorded.status["after-sunset"];
  base.products.push({
    ...studio, id: 'final-cut', name: 'Final Cut', state: final.state, duplicate: false,
    moved_from_previous_hardware: false, lifecycle_note: null, sunset_issued: final.sunset_issued,
    line: final.line, verdict: final.verdict, license_id: final.license_id,
    kind: final.kind, ends_at: final.ends_at, not_after: final.not_after, days_left: final.days_left,
    next_attempt_at: final.next_attempt_at, in_compliance: final.in_compliance,
  });
  const page = await openView(browser, server.url, '?view=products', base);
  try {
    const flags = page.locator(`article[data-product="${ID}"] [data-flag]`);
    assert.deepEqual(await flags.evaluateAll((els) => els.map((e) => [e.dataset.flag, e.textContent])), [
      ['duplicate', 'Looks cloned or restored from a snapshot'],
      ['moved', 'Moved to new hardware'],
    ]);
    assert.equal(await page.locator(`article[data-product="${ID}"] .lifecycle-note`).innerText(), note);
    const sunset = page.locator('article[data-product="final-cut"]');
    assert.match(await sunset.innerText(), /Final release\s+25 Nov 2026/);
    assert.equal((await sunset.locator('.badge[data-state]').innerText()).trim(), 'Activated for good');
    assert.equal(await sunset.locator('[data-action="deactivate"]').count(), 0);
    assert.equal(await sunset.locator('[data-flag]').count(), 0);
    await screenshot(page, 'products-duplicate-sunset');
    await assertClean(page);
  } finally {
    await page.closeAll();
  }
});
