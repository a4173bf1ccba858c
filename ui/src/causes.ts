// How a window shows one of the engine's causes. The engine's sentence (`message`) is written
// for every reader, a terminal included, so a few carry a command to type (“`lapctl key set`”).
// In a window the same advice is a button that opens the right window: for those codes the
// window says the gist in its own words and offers the button. Decided on the stable `code`
// only; every other cause shows its `message` as it is.
import type { Cause } from './types';

/** A window a cause's advice opens: the product's key window or its server window. */
export type CauseAction = 'key' | 'server';

export interface ShownCause {
  text: string;
  action: CauseAction | null;
}

/** The button's label for an action. */
export const ACTION_LABELS: Record<CauseAction, string> = {
  key: 'Enter the key…',
  server: 'Set the server',
};

const WINDOW_WORDS: Record<string, ShownCause> = {
  'no-license-key': { text: 'No license key is stored.', action: 'key' },
  'server-key-changed': {
    text: 'This product’s server key changed since the license key was entered: enter the key again to confirm it.',
    action: 'key',
  },
  'no-server-found': { text: 'No server found.', action: 'server' },
  'clock-may-be-off': {
    text: 'This computer’s clock may be off: the server ignores requests more than 30 s away from its time.',
    action: null,
  },
};

/** What an override that failed did, in a window's words. */
const OVERRIDE_FAILED: Record<string, string> = {
  'override-silent': 'did not answer',
  'override-not-found': 'could not be found',
};

/** The address an override cause names (`override-silent`, `override-not-found` carry it
 * as `address`), or null for any other cause. */
export function silentOverride(cause: Cause): string | null {
  if (!Object.prototype.hasOwnProperty.call(OVERRIDE_FAILED, cause.code)) return null;
  const address = (cause as Cause & { address?: unknown }).address;
  return typeof address === 'string' ? address : '';
}

/** "did not answer" or "could not be found", for an override cause. */
export function overrideFailure(cause: Cause): string {
  return OVERRIDE_FAILED[cause.code] ?? 'did not answer';
}

/** The words and the button for `cause` in a window. */
export function causeForWindow(cause: Cause): ShownCause {
  const own = WINDOW_WORDS[cause.code];
  if (own) return own;
  const override = silentOverride(cause);
  if (override !== null) {
    return {
      text: `The server override ${override} ${overrideFailure(cause)}: correct it, or clear it to use the product’s servers.`,
      action: 'server',
    };
  }
  if (cause.code === 'server-refused' || cause.code === 'no-route') {
    return { text: cause.message, action: 'server' };
  }
  const action: CauseAction | null =
    cause.code === 'evaluation-ended' || cause.code === 'key-may-be-refused' ? 'key' : null;
  return { text: cause.message, action };
}
