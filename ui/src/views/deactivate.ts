// The "Deactivate on this computer…" dialog inside a product's card: drawn from the product's
// Step (deactivate.ts), which the Products window keeps, so a status change that redraws the
// card leaves the dialog as it was. Stable ids for the system tests:
//   #deactivate-open-ID (the card's button), #deactivate-ID (the dialog, data-phase),
//   #deactivate-remove-key-ID, #deactivate-confirm-ID, #deactivate-cancel-ID,
//   #deactivate-result-ID (data-outcome), #deactivate-anyway-ID, #deactivate-done-ID.
import { append, button, h } from '../dom';
import {
  ANYWAY_CONSEQUENCE,
  ANYWAY_LABEL,
  CONFIRM_TEXT,
  DEACTIVATE_LABEL,
  PROGRESS_TEXT,
  REMOVE_KEY_LABEL,
  type Step,
  extraNotice,
  keyWords,
  resultShape,
  sayConsequence,
} from '../deactivate';

/** What the dialog asks its window to do. */
export interface DeactivateHandlers {
  open(): void;
  /** The person ticked or unticked "also remove the key". */
  setRemoveKey(removeKey: boolean): void;
  /** Runs the command: `anyway` after the server stayed silent. */
  run(anyway: boolean): void;
  close(): void;
}

/** The card's button that opens the dialog. */
export function deactivateButton(id: string, h_: DeactivateHandlers, open: boolean): HTMLButtonElement {
  return button(DEACTIVATE_LABEL, () => h_.open(), {
    id: `deactivate-open-${id}`,
    'data-focus': `${id}:deactivate`,
    'data-action': 'deactivate',
    'aria-expanded': open ? 'true' : 'false',
    'aria-controls': `deactivate-${id}`,
  });
}

/** The dialog for `step`; null when closed. */
export function deactivateDialog(id: string, name: string, step: Step, on: DeactivateHandlers): HTMLElement | null {
  if (step.phase === 'closed') return null;
  const box = h('div', {
    class: 'confirm deactivate',
    id: `deactivate-${id}`,
    role: 'group',
    'aria-label': `Deactivate ${name} on this computer`,
    'data-phase': step.phase,
  });
  const focusKey = (what: string) => `${id}:deactivate-${what}`;
  const done = (label: string) =>
    button(label, () => on.close(), { id: `deactivate-done-${id}`, 'data-focus': focusKey('done') });

  if (step.phase === 'confirm') {
    const boxId = `deactivate-remove-key-${id}`;
    const tick = h('input', { type: 'checkbox', id: boxId, checked: step.removeKey });
    tick.addEventListener('change', () => on.setRemoveKey(tick.checked));
    box.append(
      h('p', {}, CONFIRM_TEXT),
      h('div', { class: 'check-row' }, tick, h('label', { for: boxId }, REMOVE_KEY_LABEL)),
      h('p', { class: 'muted key-words', 'aria-live': 'polite' }, keyWords(step.removeKey)),
      h(
        'div',
        { class: 'actions' },
        button('Deactivate', () => on.run(false), {
          class: 'danger',
          id: `deactivate-confirm-${id}`,
          'data-focus': focusKey('confirm'),
        }),
        button('Cancel', () => on.close(), { id: `deactivate-cancel-${id}`, 'data-focus': focusKey('cancel') }),
      ),
    );
  } else if (step.phase === 'running') {
    box.setAttribute('aria-busy', 'true');
    // Focus waits here while the command runs, not on the page's start.
    box.setAttribute('tabindex', '-1');
    box.dataset.focus = focusKey('progress');
    box.append(
      h(
        'div',
        { class: 'progress' },
        h('p', { class: 'progress-text', role: 'status' }, step.anyway ? 'Deactivating on this computer…' : PROGRESS_TEXT),
        h('progress', { 'aria-label': PROGRESS_TEXT }),
      ),
    );
  } else if (step.phase === 'result') {
    const shape = resultShape(step.view.outcome);
    const notice = extraNotice(step.view);
    const offerAnyway = shape.offerAnyway && !step.anyway;
    append(box, [
      h(
        'div',
        { id: `deactivate-result-${id}`, role: 'status', 'data-outcome': step.view.outcome },
        h('p', { class: `message message-${shape.tone}`, id: `deactivate-message-${id}` }, step.view.message),
        notice ? h('p', { class: 'notice' }, notice) : null,
      ),
      offerAnyway && sayConsequence(step.view.message)
        ? h('p', { class: 'anyway-consequence', id: `deactivate-consequence-${id}` }, ANYWAY_CONSEQUENCE)
        : null,
      h(
        'div',
        { class: 'actions' },
        offerAnyway
          ? button(ANYWAY_LABEL, () => on.run(true), {
              class: 'danger',
              id: `deactivate-anyway-${id}`,
              // The consequence is read with the button, wherever it is said.
              'aria-describedby': sayConsequence(step.view.message)
                ? `deactivate-consequence-${id}`
                : `deactivate-message-${id}`,
              'data-focus': focusKey('anyway'),
            })
          : null,
        done(offerAnyway ? 'Keep the activation' : 'Done'),
      ),
    ]);
  } else {
    box.append(
      h(
        'p',
        { class: 'message message-error', id: `deactivate-result-${id}`, role: 'alert', 'data-outcome': 'error' },
        h('span', { class: 'visually-hidden' }, 'Error: '),
        step.message,
      ),
      h(
        'div',
        { class: 'actions' },
        button('Try again', () => on.run(step.anyway), {
          id: `deactivate-retry-${id}`,
          'data-focus': focusKey('retry'),
        }),
        done('Close'),
      ),
    );
  }
  box.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && step.phase !== 'running') {
      ev.preventDefault();
      on.close();
    }
  });
  return box;
}

/** The control that should have focus once `step` is drawn. */
export function focusFor(id: string, step: Step): string {
  switch (step.phase) {
    case 'confirm':
      // A destructive question starts on its safe answer.
      return `${id}:deactivate-cancel`;
    case 'result':
      return `${id}:deactivate-done`;
    case 'failed':
      return `${id}:deactivate-retry`;
    case 'running':
      return `${id}:deactivate-progress`;
    default:
      return `${id}:deactivate`;
  }
}
