// "Deactivate on this computer…" as plain data: when it is offered, what the confirmation
// says, and what each answer of the `deactivate` command shows. Pure functions and a small
// state machine, unit-tested in tests/unit/deactivate.test.ts; views/deactivate.ts draws it.
//
// The outcome's sentence is Rust's (`DeactivateView.message`): this module only decides the
// tone and which buttons follow, and says the consequences the person is asked to accept.
import type { DeactivateOutcome, DeactivateView, ProductStatus } from './types';

/** States in which there is no activation on this computer to give up. */
const NOTHING_TO_DEACTIVATE: readonly string[] = ['unlicensed', 'deactivated', 'sunset'];

/**
 * Whether the product offers "Deactivate on this computer…": it holds a grant (a LicenseId)
 * and is not unlicensed, already deactivated, or released for good by its vendor (a sunset
 * grant holds no seat to free).
 */
export function canDeactivate(p: ProductStatus): boolean {
  return p.license_id !== null && !NOTHING_TO_DEACTIVATE.includes(p.state);
}

/** The button that opens the confirmation. */
export const DEACTIVATE_LABEL = 'Deactivate on this computer…';

/** What the confirmation says happens. */
export const CONFIRM_TEXT =
  'Deactivate on this computer? Lapwing asks the license server to free this computer’s seat, ' +
  'so that the license can be activated on another computer. The product stops working here ' +
  'until it is activated again.';

/** The checkbox's label, and what follows from it (said under the box as it is ticked). */
export const REMOVE_KEY_LABEL = 'Also remove the license key from this computer';
export function keyWords(removeKey: boolean): string {
  return removeKey
    ? 'The license key is removed from this computer: keep a copy to activate elsewhere.'
    : 'The license key stays stored here, so the product can be activated again later.';
}

/** The honest consequence of giving up here without the server's word. */
export const ANYWAY_CONSEQUENCE = 'The seat stays taken on the server until its lease runs out.';

/**
 * Whether the consequence must be said next to "Deactivate here anyway": always, unless the
 * answer's own sentence already says it (Rust's does today), so it is not read twice.
 */
export function sayConsequence(message: string): boolean {
  return !message.toLowerCase().includes('until its lease runs out');
}
export const ANYWAY_LABEL = 'Deactivate here anyway';

/** Shown while the command runs. */
export const PROGRESS_TEXT = 'Asking the license server to free the seat…';

export type Tone = 'ok' | 'info' | 'warning';

/** How a result is shown: its tone, and whether "Deactivate here anyway" is offered. */
export interface ResultShape {
  tone: Tone;
  /** True when the product is no longer activated on this computer. */
  deactivated: boolean;
  offerAnyway: boolean;
}

const SHAPES: Record<DeactivateOutcome, ResultShape> = {
  released: { tone: 'ok', deactivated: true, offerAnyway: false },
  // The server kept the seat (a transfer limit, a 1.0 server): the activation stays.
  kept: { tone: 'info', deactivated: false, offerAnyway: false },
  // Silence changes nothing; the person may still give up the activation here.
  unanswered: { tone: 'warning', deactivated: false, offerAnyway: true },
  'deactivated-here': { tone: 'info', deactivated: true, offerAnyway: false },
};

/** The shape of an answer; an outcome word a newer back end adds shows as information. */
export function resultShape(outcome: string): ResultShape {
  return Object.prototype.hasOwnProperty.call(SHAPES, outcome)
    ? SHAPES[outcome as DeactivateOutcome]
    : { tone: 'info', deactivated: false, offerAnyway: false };
}

/**
 * The server's Notice when the message does not already say it: a kept activation's message
 * is worded from its Notice (Rust), so it is never said twice.
 */
export function extraNotice(view: DeactivateView): string | null {
  const notice = view.notice?.trim();
  if (!notice || view.outcome === 'kept' || view.message.includes(notice)) return null;
  return notice;
}

/**
 * Where one product's deactivation stands. Kept by the Products window per product, outside
 * the card: a status change redraws the card, never the person's dialog.
 */
export type Step =
  | { phase: 'closed' }
  | { phase: 'confirm'; removeKey: boolean }
  | { phase: 'running'; removeKey: boolean; anyway: boolean }
  | { phase: 'result'; removeKey: boolean; view: DeactivateView; anyway: boolean }
  | { phase: 'failed'; removeKey: boolean; anyway: boolean; message: string };

export const CLOSED: Step = { phase: 'closed' };

/** The step after the person opens the dialog: unticked, whatever was chosen before. */
export function opened(): Step {
  return { phase: 'confirm', removeKey: false };
}

/** The step while the command runs. */
export type Running = Extract<Step, { phase: 'running' }>;

/** The step that runs the command: the first try, or "anyway" after silence. */
export function running(step: Step, anyway: boolean): Running {
  const removeKey = step.phase === 'closed' ? false : step.removeKey;
  return { phase: 'running', removeKey, anyway };
}

export function answered(step: Step, view: DeactivateView): Step {
  const removeKey = step.phase === 'closed' ? false : step.removeKey;
  const anyway = step.phase === 'running' ? step.anyway : false;
  return { phase: 'result', removeKey, view, anyway };
}

export function failed(step: Step, message: string): Step {
  const removeKey = step.phase === 'closed' ? false : step.removeKey;
  const anyway = step.phase === 'running' ? step.anyway : false;
  return { phase: 'failed', removeKey, anyway, message };
}
