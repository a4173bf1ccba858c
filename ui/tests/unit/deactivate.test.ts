import { describe, expect, it } from 'vitest';
import {
  ANYWAY_CONSEQUENCE,
  CLOSED,
  CONFIRM_TEXT,
  answered,
  canDeactivate,
  extraNotice,
  failed,
  keyWords,
  opened,
  resultShape,
  running,
  sayConsequence,
} from '../../src/deactivate';
import { deactivateDialog, focusFor, type DeactivateHandlers } from '../../src/views/deactivate';
import type { DeactivateView, ProductStatus } from '../../src/types';

const base = {
  id: 'acme-studio',
  name: 'Acme Studio',
  license_id: '1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed',
  state: 'activated',
} as ProductStatus;

function view(outcome: DeactivateView['outcome'], message: string, notice: string | null = null): DeactivateView {
  return { outcome, message, notice, key_removed: false, status: base };
}

/** Handlers that record what the dialog asked for. */
function recorder(): DeactivateHandlers & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    open: () => asked.push('open'),
    setRemoveKey: (r) => asked.push(`remove-key:${r}`),
    run: (anyway) => asked.push(`run:${anyway}`),
    close: () => asked.push('close'),
  };
}

describe('canDeactivate', () => {
  it('is offered for a product holding a grant, in any state that has one', () => {
    for (const state of ['activated', 'renewal-due', 'expired', 'evaluation'] as const) {
      expect(canDeactivate({ ...base, state }), state).toBe(true);
    }
  });
  it('is not offered without a grant, once deactivated, or after the vendor’s final release', () => {
    expect(canDeactivate({ ...base, license_id: null })).toBe(false);
    for (const state of ['unlicensed', 'deactivated', 'sunset'] as const) {
      expect(canDeactivate({ ...base, state }), state).toBe(false);
    }
  });
});

describe('the confirmation', () => {
  it('says the seat is freed for another computer and what becomes of the key', () => {
    expect(CONFIRM_TEXT).toMatch(/free this computer’s seat/);
    expect(CONFIRM_TEXT).toMatch(/another computer/);
    expect(keyWords(false)).toMatch(/key stays stored here/);
    expect(keyWords(true)).toMatch(/key is removed/);
  });

  it('draws the question with the box unticked and starts on Cancel', () => {
    const on = recorder();
    const box = deactivateDialog('acme-studio', 'Acme Studio', opened(), on)!;
    expect(box.dataset.phase).toBe('confirm');
    expect(box.textContent).toContain(CONFIRM_TEXT);
    const tick = box.querySelector<HTMLInputElement>('#deactivate-remove-key-acme-studio')!;
    expect(tick.checked).toBe(false);
    tick.checked = true;
    tick.dispatchEvent(new Event('change'));
    box.querySelector<HTMLButtonElement>('#deactivate-confirm-acme-studio')!.click();
    box.querySelector<HTMLButtonElement>('#deactivate-cancel-acme-studio')!.click();
    expect(on.asked).toEqual(['remove-key:true', 'run:false', 'close']);
    expect(focusFor('acme-studio', opened())).toBe('acme-studio:deactivate-cancel');
  });

  it('closes on Escape, except while the command runs', () => {
    const on = recorder();
    const escape = () => new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true });
    deactivateDialog('a', 'A', opened(), on)!.dispatchEvent(escape());
    deactivateDialog('a', 'A', running(opened(), false), on)!.dispatchEvent(escape());
    expect(on.asked).toEqual(['close']);
  });

  it('draws nothing when closed', () => {
    expect(deactivateDialog('a', 'A', CLOSED, recorder())).toBeNull();
  });
});

describe('the result', () => {
  it('released: deactivated, said as success, nothing more offered', () => {
    expect(resultShape('released')).toEqual({ tone: 'ok', deactivated: true, offerAnyway: false });
    const box = deactivateDialog('a', 'A', answered(running(opened(), false), view('released', 'Deactivated on this computer.')), recorder())!;
    expect(box.querySelector('#deactivate-result-a')?.getAttribute('data-outcome')).toBe('released');
    expect(box.querySelector('.message-ok')?.textContent).toBe('Deactivated on this computer.');
    expect(box.querySelector('#deactivate-anyway-a')).toBeNull();
    expect(box.querySelector('#deactivate-done-a')?.textContent).toBe('Done');
  });

  it('kept: the activation stays, the notice is said once', () => {
    expect(resultShape('kept')).toEqual({ tone: 'info', deactivated: false, offerAnyway: false });
    const notice = 'The next transfer is possible on 3 Mar 2027.';
    const kept = view('kept', notice, notice);
    expect(extraNotice(kept)).toBeNull();
    const box = deactivateDialog('a', 'A', answered(running(opened(), false), kept), recorder())!;
    expect(box.textContent!.split(notice).length - 1).toBe(1);
    expect(box.querySelector('#deactivate-anyway-a')).toBeNull();
    // Rust words a kept activation's message from its Notice (capitalized, a full stop added).
    expect(extraNotice(view('kept', 'The limit is reached. The activation is kept.', 'the limit is reached'))).toBeNull();
    // Any other answer's Notice the message does not hold is shown under it.
    expect(extraNotice(view('released', 'Deactivated.', 'Thank you for using Acme.'))).toBe('Thank you for using Acme.');
  });

  it('unanswered: nothing changed, "Deactivate here anyway" with its consequence, once', () => {
    const on = recorder();
    const silent = view('unanswered', 'No license server answered. Nothing was changed.');
    const first = answered(running(opened(), false), silent);
    const box = deactivateDialog('a', 'A', first, on)!;
    expect(box.querySelector('.message-warning')?.textContent).toBe(silent.message);
    expect(box.textContent).toContain(ANYWAY_CONSEQUENCE);
    expect(box.querySelector('#deactivate-anyway-a')?.getAttribute('aria-describedby')).toBe('deactivate-consequence-a');
    box.querySelector<HTMLButtonElement>('#deactivate-anyway-a')!.click();
    expect(on.asked).toEqual(['run:true']);
    expect(box.querySelector('#deactivate-done-a')?.textContent).toBe('Keep the activation');
    // Asked anyway and still unanswered (an error of the engine's own): not offered again.
    const again = answered(running(first, true), silent);
    expect(deactivateDialog('a', 'A', again, recorder())!.querySelector('#deactivate-anyway-a')).toBeNull();
  });

  it('says the consequence once: not again when the answer’s sentence already says it', () => {
    const said = 'Nothing was changed: …; you can deactivate it here anyway (the seat stays taken on the server until its lease runs out).';
    expect(sayConsequence(said)).toBe(false);
    expect(sayConsequence('Nothing was changed.')).toBe(true);
    const box = deactivateDialog('a', 'A', answered(running(opened(), false), view('unanswered', said)), recorder())!;
    expect(box.textContent!.split('until its lease runs out').length - 1).toBe(1);
    expect(box.querySelector('#deactivate-anyway-a')?.getAttribute('aria-describedby')).toBe('deactivate-message-a');
  });

  it('keeps the tick and the anyway choice across the steps', () => {
    const ticked = { phase: 'confirm' as const, removeKey: true };
    const run = running(ticked, true);
    expect(run).toEqual({ phase: 'running', removeKey: true, anyway: true });
    expect(answered(run, view('deactivated-here', 'x'))).toMatchObject({ removeKey: true, anyway: true });
    expect(failed(run, 'no')).toEqual({ phase: 'failed', removeKey: true, anyway: true, message: 'no' });
  });

  it('an error is said plainly with Try again, which repeats the same request', () => {
    const on = recorder();
    const box = deactivateDialog('a', 'A', failed(running(opened(), true), 'The keyring is locked.'), on)!;
    expect(box.querySelector('[role="alert"]')?.textContent).toBe('Error: The keyring is locked.');
    box.querySelector<HTMLButtonElement>('#deactivate-retry-a')!.click();
    expect(on.asked).toEqual(['run:true']);
  });

  it('an outcome word from a newer back end is shown as information, offering nothing', () => {
    expect(resultShape('postponed')).toEqual({ tone: 'info', deactivated: false, offerAnyway: false });
    expect(resultShape('__proto__')).toEqual({ tone: 'info', deactivated: false, offerAnyway: false });
  });
});
