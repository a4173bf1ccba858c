// Words and dates for people. Pure functions: unit-tested in tests/unit/format.test.ts.
import type { Kind, Level, Outcome, Source, State, VerdictLevel } from './types';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** A local date, e.g. "12 Mar 2027" (the tray's words use the same form). */
export function formatDate(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
}

/** A local date and time, e.g. "12 Mar 2027, 14:05". */
export function formatDateTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${formatDate(unixSeconds)}, ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** An ISO 8601 string for a <time datetime> attribute. */
export function isoDateTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString();
}

export function daysLeftWords(days: number | null): string | null {
  if (days === null) return null;
  if (days < 0) return days === -1 ? 'ended 1 day ago' : `ended ${-days} days ago`;
  if (days === 0) return 'ends today';
  if (days === 1) return '1 day left';
  return `${days} days left`;
}

/** How long the clock moved back, e.g. "3 minutes". */
export function durationWords(seconds: number): string {
  const s = Math.abs(Math.round(seconds));
  const unit = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (s < 60) return unit(s, 'second');
  if (s < 3600) return unit(Math.round(s / 60), 'minute');
  if (s < 86400) return unit(Math.round(s / 3600), 'hour');
  return unit(Math.round(s / 86400), 'day');
}

export type Tone = 'ok' | 'info' | 'warning' | 'problem' | 'neutral';

export interface Badge {
  label: string;
  tone: Tone;
}

const BADGES: Record<State, Badge> = {
  unlicensed: { label: 'Not licensed', tone: 'neutral' },
  evaluation: { label: 'Evaluation', tone: 'info' },
  'evaluation-expired': { label: 'Evaluation ended', tone: 'problem' },
  activated: { label: 'Activated', tone: 'ok' },
  'renewal-due': { label: 'Renewal due', tone: 'warning' },
  expired: { label: 'Expired', tone: 'problem' },
  deactivated: { label: 'Deactivated', tone: 'neutral' },
  // The vendor's final release: the words the status line uses (issue 16).
  sunset: { label: 'Activated for good', tone: 'ok' },
};

/** The state badge; an unknown state (a newer back end) shows as is, neutral. */
export function stateBadge(state: string): Badge {
  return Object.prototype.hasOwnProperty.call(BADGES, state)
    ? BADGES[state as State]
    : { label: state, tone: 'neutral' };
}

const SOURCE_WORDS: Record<Source, string> = {
  override: 'set by hand',
  policy: 'machine policy',
  srv: 'DNS SRV',
  'dns-sd': 'DNS-SD',
  manifest: 'product’s default',
};

export function sourceWords(source: string): string {
  return Object.prototype.hasOwnProperty.call(SOURCE_WORDS, source)
    ? SOURCE_WORDS[source as Source]
    : source;
}

const OUTCOME_WORDS: Record<Outcome, string> = {
  activated: 'activated',
  'no-answer': 'no answer',
  'rejected-answer': 'answer refused',
  'not-sent': 'not sent',
};

export function outcomeWords(outcome: string): string {
  return Object.prototype.hasOwnProperty.call(OUTCOME_WORDS, outcome)
    ? OUTCOME_WORDS[outcome as Outcome]
    : outcome;
}

export function outcomeTone(outcome: string): Tone {
  return outcome === 'activated' ? 'ok' : outcome === 'not-sent' ? 'neutral' : 'warning';
}

const KIND_WORDS: Record<Kind, string> = {
  perpetual: 'Perpetual',
  term: 'Term',
  subscription: 'Subscription',
  evaluation: 'Evaluation',
};

export function kindWords(kind: string | null): string | null {
  if (kind === null) return null;
  return Object.prototype.hasOwnProperty.call(KIND_WORDS, kind) ? KIND_WORDS[kind as Kind] : kind;
}

export function complianceWords(inCompliance: boolean | null): string | null {
  if (inCompliance === null) return null;
  return inCompliance ? 'In compliance' : 'Out of compliance (more machines than seats)';
}

const LEVELS: Record<Level, { icon: string; label: string }> = {
  ok: { icon: '✓', label: 'OK' },
  info: { icon: 'i', label: 'Information' },
  warning: { icon: '!', label: 'Warning' },
  problem: { icon: '×', label: 'Problem' },
};

export function levelInfo(level: string): { icon: string; label: string } {
  return Object.prototype.hasOwnProperty.call(LEVELS, level)
    ? LEVELS[level as Level]
    : { icon: '?', label: level };
}

/**
 * The Products header from the verdicts Rust decided (lapwing-core's verdict.rs): it counts
 * them, it does not judge a product. The words are `Overall::summary`'s, e.g.
 * "3 products · 1 not usable · 1 needs attention", "2 products · all in order".
 */
export function verdictSummary(levels: VerdictLevel[]): string {
  const count = (level: VerdictLevel) => levels.filter((l) => l === level).length;
  const broken = count('broken');
  const attention = count('attention');
  const working = count('working');
  let text = `${levels.length} ${levels.length === 1 ? 'product' : 'products'}`;
  if (broken) text += ` · ${broken} not usable`;
  if (attention) text += ` · ${attention} ${attention === 1 ? 'needs' : 'need'} attention`;
  if (working) text += ` · ${working} activating`;
  if (!broken && !attention && !working) text += ' · all in order';
  return text;
}

/** The worst of the verdicts (the tray icon's), for styling the header. */
export function worstLevel(levels: VerdictLevel[]): VerdictLevel {
  const order: VerdictLevel[] = ['all-good', 'working', 'attention', 'broken'];
  return levels.reduce<VerdictLevel>((worst, l) => (order.indexOf(l) > order.indexOf(worst) ? l : worst), 'all-good');
}
