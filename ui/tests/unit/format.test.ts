import { describe, expect, it } from 'vitest';
import {
  complianceWords,
  daysLeftWords,
  durationWords,
  formatDate,
  formatDateTime,
  kindWords,
  levelInfo,
  outcomeWords,
  sourceWords,
  stateBadge,
} from '../../src/format';

const local = (y: number, m: number, d: number, h = 12, min = 0) => new Date(y, m - 1, d, h, min).getTime() / 1000;

describe('dates (local time)', () => {
  it('formats a day as "12 Mar 2027"', () => {
    expect(formatDate(local(2027, 3, 12))).toBe('12 Mar 2027');
    expect(formatDate(local(2026, 12, 1, 0, 0))).toBe('1 Dec 2026');
  });
  it('adds a 24-hour time', () => {
    expect(formatDateTime(local(2026, 11, 25, 9, 5))).toBe('25 Nov 2026, 09:05');
    expect(formatDateTime(local(2026, 11, 25, 23, 59))).toBe('25 Nov 2026, 23:59');
  });
});

describe('words', () => {
  it('days left', () => {
    expect(daysLeftWords(null)).toBeNull();
    expect(daysLeftWords(0)).toBe('ends today');
    expect(daysLeftWords(1)).toBe('1 day left');
    expect(daysLeftWords(107)).toBe('107 days left');
    expect(daysLeftWords(-1)).toBe('ended 1 day ago');
    expect(daysLeftWords(-23)).toBe('ended 23 days ago');
  });
  it('durations', () => {
    expect(durationWords(1)).toBe('1 second');
    expect(durationWords(45)).toBe('45 seconds');
    expect(durationWords(180)).toBe('3 minutes');
    expect(durationWords(7200)).toBe('2 hours');
    expect(durationWords(86400 * 3)).toBe('3 days');
  });
  it('server sources', () => {
    expect(sourceWords('override')).toBe('set by hand');
    expect(sourceWords('policy')).toBe('machine policy');
    expect(sourceWords('srv')).toBe('DNS SRV');
    expect(sourceWords('dns-sd')).toBe('DNS-SD');
    expect(sourceWords('manifest')).toBe('product’s default');
    expect(sourceWords('carrier-pigeon')).toBe('carrier-pigeon');
    expect(sourceWords('toString')).toBe('toString');
  });
  it('outcomes, kinds, compliance, levels', () => {
    expect(outcomeWords('no-answer')).toBe('no answer');
    expect(outcomeWords('rejected-answer')).toBe('answer refused');
    expect(outcomeWords('not-sent')).toBe('not sent');
    expect(outcomeWords('activated')).toBe('activated');
    expect(kindWords(null)).toBeNull();
    expect(kindWords('subscription')).toBe('Subscription');
    expect(complianceWords(null)).toBeNull();
    expect(complianceWords(true)).toBe('In compliance');
    expect(complianceWords(false)).toMatch(/^Out of compliance/);
    expect(levelInfo('problem')).toEqual({ icon: '×', label: 'Problem' });
    expect(levelInfo('ok').label).toBe('OK');
  });
});

describe('state badges', () => {
  it('maps every state to a label and a tone', () => {
    expect(stateBadge('unlicensed')).toEqual({ label: 'Not licensed', tone: 'neutral' });
    expect(stateBadge('evaluation')).toEqual({ label: 'Evaluation', tone: 'info' });
    expect(stateBadge('evaluation-expired')).toEqual({ label: 'Evaluation ended', tone: 'problem' });
    expect(stateBadge('activated')).toEqual({ label: 'Activated', tone: 'ok' });
    expect(stateBadge('renewal-due')).toEqual({ label: 'Renewal due', tone: 'warning' });
    expect(stateBadge('expired')).toEqual({ label: 'Expired', tone: 'problem' });
    expect(stateBadge('deactivated')).toEqual({ label: 'Deactivated', tone: 'neutral' });
    expect(stateBadge('sunset')).toEqual({ label: 'Activated for good', tone: 'ok' });
  });
  it('shows an unknown state as is', () => {
    expect(stateBadge('suspended')).toEqual({ label: 'suspended', tone: 'neutral' });
    expect(stateBadge('__proto__')).toEqual({ label: '__proto__', tone: 'neutral' });
  });
});
