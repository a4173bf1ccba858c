import type { ViewContext } from '../main';
import { ipc } from '../ipc';
import { type Act, button, busy, causeList, clear, h, Messages } from '../dom';
import {
  complianceWords,
  daysLeftWords,
  durationWords,
  formatDate,
  formatDateTime,
  isoDateTime,
  kindWords,
  outcomeTone,
  outcomeWords,
  sourceWords,
  stateBadge,
  verdictSummary,
  worstLevel,
} from '../format';
import { overrideFailure, silentOverride } from '../causes';
import type { ProductStatus } from '../types';
import {
  CLOSED,
  type Step,
  answered,
  canDeactivate,
  failed,
  keyWords as keyWordsFor,
  opened,
  running,
} from '../deactivate';
import { header, row } from './common';
import { type DeactivateHandlers, deactivateButton, deactivateDialog, focusFor } from './deactivate';

export function badge(state: string): HTMLElement {
  const b = stateBadge(state);
  return h('span', { class: `badge tone-${b.tone}`, 'data-state': state }, b.label);
}

function time(unix: number, text: string): HTMLElement {
  return h('time', { datetime: isoDateTime(unix) }, text);
}

function endsValue(p: ProductStatus): Node | null {
  const end = p.ends_at ?? p.not_after;
  const days = daysLeftWords(p.days_left);
  if (end === null && days === null) return null;
  const span = h('span');
  if (end !== null) span.appendChild(time(end, formatDate(end)));
  if (days !== null) span.appendChild(h('span', { class: 'muted' }, end !== null ? ` (${days})` : days));
  return span;
}

function serverValue(p: ProductStatus): Node | null {
  if (!p.server) return null;
  // An override that did not answer is said next to the server that did: the person chose
  // it, and must not read "product’s default" as if the choice had been taken.
  const failed = (p.last_attempt?.diagnosis ?? []).find((c) => silentOverride(c) !== null);
  const silent = failed ? silentOverride(failed) ?? undefined : undefined;
  return h(
    'span',
    {},
    h('code', {}, p.server.address),
    h('span', { class: 'muted' }, ` — ${sourceWords(p.server.source)}`),
    silent !== undefined
      ? h(
          'span',
          { class: 'tone-warning', 'data-override-silent': silent },
          ` (your override ${silent} ${failed ? overrideFailure(failed) : 'did not answer'})`,
        )
      : null,
  );
}

/** The windows a cause's button opens, for this product. */
function openFor(p: ProductStatus, messages: Messages): Act {
  return (action) => {
    ipc.openWindow(action, p.id).catch((e) => messages.error(e));
  };
}

function attemptBlock(p: ProductStatus, act: Act): Node | null {
  const a = p.last_attempt;
  if (!a) return null;
  const tone = outcomeTone(a.outcome);
  return h(
    'div',
    { class: 'attempt' },
    h(
      'span',
      {},
      time(a.at, formatDateTime(a.at)),
      ' — ',
      h('span', { class: `outcome tone-${tone}` }, outcomeWords(a.outcome)),
      a.server && a.server.address !== p.server?.address
        ? h('span', { class: 'muted' }, ` via ${a.server.address} (${sourceWords(a.server.source)})`)
        : null,
    ),
    a.diagnosis.length
      ? causeList(a.diagnosis, { 'aria-label': 'Likely causes' }, act)
      : null,
  );
}

/**
 * The flags a 1.1 server sets on a product (profile §9), as badges next to its state, in the
 * status's words ("looks cloned or restored from a snapshot", "moved to new hardware"); the
 * note under the line says what they mean.
 */
function flagBadges(p: ProductStatus): HTMLElement[] {
  const flags: HTMLElement[] = [];
  if (p.duplicate && p.state !== 'sunset') {
    flags.push(h('span', { class: 'badge tone-warning', 'data-flag': 'duplicate' }, 'Looks cloned or restored from a snapshot'));
  }
  if (p.moved_from_previous_hardware && p.state !== 'sunset') {
    flags.push(h('span', { class: 'badge tone-info', 'data-flag': 'moved' }, 'Moved to new hardware'));
  }
  return flags;
}

/** A product's deactivation dialog as its card draws it: where it stands and what it may do. */
export interface CardDeactivation {
  step: Step;
  on: DeactivateHandlers;
}

/** One product's card. Every outside string goes in through textContent. */
export function productCard(
  p: ProductStatus,
  onUpdate: (p: ProductStatus) => void,
  deactivation?: CardDeactivation,
): HTMLElement {
  const messages = new Messages(`${p.name} messages`);
  const titleId = `product-${p.id}-title`;
  const activate = button('Activate now', () => {
    void busy(activate, 'Activating…', async () => {
      messages.clear();
      try {
        const next = await ipc.activate(p.id);
        onUpdate(next);
      } catch (e) {
        messages.error(e);
      }
    });
  }, { 'data-focus': `${p.id}:activate` });
  const key = button('Enter or correct key…', () => {
    ipc.openWindow('key', p.id).catch((e) => messages.error(e));
  }, { 'data-focus': `${p.id}:key` });
  const server = button('Server…', () => {
    ipc.openWindow('server', p.id).catch((e) => messages.error(e));
  }, { 'data-focus': `${p.id}:server` });
  const step = deactivation?.step ?? CLOSED;
  // Offered while there is an activation here; a dialog already open stays until closed.
  const deactivate =
    deactivation && canDeactivate(p) ? deactivateButton(p.id, deactivation.on, step.phase !== 'closed') : null;
  if (deactivate && step.phase !== 'closed') deactivate.disabled = true;
  const dialog = deactivation ? deactivateDialog(p.id, p.name, step, deactivation.on) : null;

  const details = h(
    'dl',
    { class: 'facts' },
    row('Ends', endsValue(p)),
    row('Kind', kindWords(p.kind)),
    row('Compliance', complianceWords(p.in_compliance)),
    row('Features', p.features.length ? p.features.join(', ') : null),
    row('Notice', p.notice),
    row('Server', serverValue(p)),
    row('Last attempt', attemptBlock(p, openFor(p, messages))),
    row('Deactivated', p.deactivated_at ? time(p.deactivated_at, formatDateTime(p.deactivated_at)) : null),
    row('Final release', p.sunset_issued ? time(p.sunset_issued, formatDate(p.sunset_issued)) : null),
    row('Next attempt', p.next_attempt_at !== null ? time(p.next_attempt_at, formatDateTime(p.next_attempt_at)) : null),
    row('License key', p.has_key ? 'entered' : p.state === 'evaluation' ? 'none (evaluation)' : 'none'),
    row('New key', p.pending_key ? 'entered, not accepted yet' : null),
  );

  return h(
    'article',
    { class: `product state-${p.state}`, 'aria-labelledby': titleId, 'data-product': p.id },
    h(
      'div',
      { class: 'product-head' },
      h(
        'div',
        { class: 'product-title' },
        h('h2', { id: titleId }, p.name),
        h('p', { class: 'vendor muted' }, p.addon_of ? `${p.vendor} · add-on` : p.vendor),
      ),
      h('div', { class: 'badges' }, badge(p.state), flagBadges(p)),
    ),
    h('p', { class: 'line' }, p.line),
    p.clock_moved_back_by !== null
      ? h(
          'p',
          { class: 'message message-warning' },
          `This computer’s clock moved back by ${durationWords(p.clock_moved_back_by)}. Check the date and time settings.`,
        )
      : null,
    p.pending_key && p.pending_note
      ? h('p', { class: 'message message-warning pending-key-note' }, p.pending_note)
      : null,
    p.lifecycle_note
      ? h('p', { class: `message message-${p.duplicate ? 'warning' : 'info'} lifecycle-note` }, p.lifecycle_note)
      : null,
    details,
    h('div', { class: 'actions' }, activate, key, server, deactivate),
    dialog,
    messages.el,
  );
}

export async function productsView({ root }: ViewContext): Promise<void> {
  const messages = new Messages('Products messages');
  const list = h('div', { class: 'product-list', role: 'list', 'aria-label': 'Products' });
  const summary = h('p', { class: 'subtitle', id: 'summary' });
  let products: ProductStatus[] = [];
  // Each product's deactivation dialog, kept here so that a redraw leaves it as it was.
  const deactivations = new Map<string, Step>();
  // The control to focus after the next redraw, when a step moved focus on purpose.
  let wantFocus: string | undefined;
  // The last focused control, so a redraw (a disabled busy button loses focus) puts it back.
  let lastFocus: string | undefined;
  list.addEventListener('focusin', (ev) => {
    lastFocus = (ev.target as HTMLElement).dataset?.focus ?? lastFocus;
  });
  list.addEventListener('focusout', (ev) => {
    const to = ev.relatedTarget as Node | null;
    if (to && !list.contains(to)) lastFocus = undefined;
  });

  const activateAll = button('Activate all', () => {
    void busy(activateAll, 'Activating…', async () => {
      messages.clear();
      try {
        const batch = await ipc.activateAll();
        render(batch.products);
        // Counted in Rust from each attempt's outcome: not sent is not activated.
        if (batch.result.activated === batch.result.attempted) messages.ok(batch.result.message);
        else messages.info(batch.result.message);
      } catch (e) {
        messages.error(e);
      }
    });
  }, { class: 'primary' });

  const head = header('Products', null, activateAll);
  head.querySelector('.titles')?.appendChild(summary);
  const open = (view: 'settings' | 'diagnostics' | 'about') => () => {
    ipc.openWindow(view, null).catch((e) => messages.error(e));
  };
  const links = h(
    'nav',
    { class: 'app-links', 'aria-label': 'More' },
    button('Settings…', open('settings'), { id: 'open-settings', class: 'link-button' }),
    button('Diagnostics…', open('diagnostics'), { id: 'open-diagnostics', class: 'link-button' }),
    button('About Lapwing', open('about'), { id: 'open-about', class: 'link-button' }),
  );
  // No tray to come back to: this window is the app, and says so.
  const noTray = h('p', { class: 'message message-warning', id: 'no-tray', role: 'note', hidden: true });

  function render(next: ProductStatus[]): void {
    products = next;
    const active = document.activeElement as HTMLElement | null;
    const focusKey =
      active && active !== document.body && !list.contains(active) ? undefined : active?.dataset?.focus ?? lastFocus;
    clear(list);
    if (products.length === 0) {
      summary.textContent = '';
      list.appendChild(
        h(
          'div',
          { class: 'empty', role: 'listitem' },
          h('p', { class: 'empty-title' }, 'No licensed products are installed.'),
          h('p', { class: 'muted' }, 'When you install a product that uses Lapwing, it appears here and is activated automatically.'),
        ),
      );
      activateAll.hidden = true;
      return;
    }
    activateAll.hidden = false;
    summary.textContent = verdictSummary(products.map((p) => p.verdict.level));
    summary.dataset.verdict = worstLevel(products.map((p) => p.verdict.level));
    for (const p of products) {
      const card = productCard(
        p,
        (updated) => render(products.map((x) => (x.id === updated.id ? updated : x))),
        { step: deactivations.get(p.id) ?? CLOSED, on: deactivationHandlers(p.id) },
      );
      card.setAttribute('role', 'listitem');
      list.appendChild(card);
    }
    const target = wantFocus ?? focusKey;
    wantFocus = undefined;
    if (target) {
      const again = list.querySelector<HTMLElement>(`[data-focus="${CSS.escape(target)}"]`);
      again?.focus();
    }
  }

  /** Moves a product's dialog to `step` and redraws, focusing what the step calls for. */
  function step(id: string, next: Step): void {
    if (next.phase === 'closed') deactivations.delete(id);
    else deactivations.set(id, next);
    wantFocus = focusFor(id, next);
    render(products);
  }

  function deactivationHandlers(id: string): DeactivateHandlers {
    const current = () => deactivations.get(id) ?? CLOSED;
    return {
      open: () => step(id, opened()),
      setRemoveKey: (removeKey) => {
        const now = current();
        // Only the confirmation's box changes; no redraw, so the tick keeps its focus.
        if (now.phase === 'confirm') {
          deactivations.set(id, { ...now, removeKey });
          const words = list.querySelector(`#deactivate-${CSS.escape(id)} .key-words`);
          if (words) words.textContent = keyWordsFor(removeKey);
        }
      },
      run: (anyway) => {
        const now = current();
        if (now.phase === 'running') return;
        const started = running(now, anyway);
        step(id, started);
        ipc.deactivate(id, started.removeKey, anyway).then(
          (view) => {
            // The command published the new status; the answer carries it too.
            products = products.map((x) => (x.id === view.status.id ? view.status : x));
            step(id, answered(current(), view));
          },
          (e: unknown) => step(id, failed(current(), e instanceof Error ? e.message : String(e))),
        );
      },
      close: () => step(id, CLOSED),
    };
  }

  root.append(head, links, noTray, messages.el, list);
  try {
    render(await ipc.status());
  } catch (e) {
    messages.error(e);
  }
  try {
    const tray = await ipc.trayHost();
    noTray.textContent = tray.message ?? '';
    noTray.hidden = tray.present;
  } catch (e) {
    messages.error(e);
  }
  ipc.onStatusChanged((next) => render(next)).catch((e) => messages.error(e));
}
