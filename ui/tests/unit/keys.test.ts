import { describe, expect, it } from 'vitest';
import {
  caretForCount,
  describeKeyError,
  differences,
  formatKeyField,
  groupKey,
  keyGroups,
  lengthWords,
  locate,
  normalizeKeyInput,
} from '../../src/keys';

const KEY = 'NFGNG488PD8PK5WRK9JD1NMFA4JJ';
const GROUPED = 'NFGN-G488-PD8P-K5WR-K9JD-1NMF-A4JJ';

describe('normalizeKeyInput', () => {
  it('drops spaces, tabs, line breaks and dashes, upper-cases ASCII', () => {
    expect(normalizeKeyInput('  nfgn g488\r\n\tpd8p--k5wr\nk9jd 1nmf\u00a0a4jj \n')).toBe(KEY);
  });
  it('drops typographic dashes and zero-width spaces from pasted documents', () => {
    expect(normalizeKeyInput('NFGN\u2013G488\u2014PD8P\u2212K5WR\u200bK9JD\u2011 1NMF-A4JJ')).toBe(KEY);
  });
  it('keeps other characters so Rust reports them at the right position', () => {
    expect(normalizeKeyInput('ab#c_d')).toBe('AB#C_D');
  });
  it('does not Unicode-upper-case look-alikes (the length must not change)', () => {
    expect(normalizeKeyInput('ßıſ')).toBe('ßıſ');
  });
  it('leaves O, I and L as typed (Rust reads them as 0 and 1)', () => {
    expect(normalizeKeyInput('oil')).toBe('OIL');
  });
});

describe('grouping', () => {
  it('groups by 4 with dashes', () => {
    expect(groupKey(KEY)).toBe(GROUPED);
    expect(groupKey('ABCDE')).toBe('ABCD-E');
    expect(groupKey('')).toBe('');
  });
  it('keeps grouping characters past 28 so the excess stays visible', () => {
    expect(groupKey(`${KEY}XY`)).toBe(`${GROUPED}-XY`);
    expect(keyGroups(`${KEY}XY`)).toHaveLength(8);
  });
  it('always gives at least 7 groups for the strip', () => {
    expect(keyGroups('ABCDE')).toEqual(['ABCD', 'E', '', '', '', '', '']);
  });
});

describe('formatKeyField keeps the caret after the same character', () => {
  it('typing at the end', () => {
    expect(formatKeyField('ABCDE', 5)).toEqual({ value: 'ABCD-E', caret: 6 });
  });
  it('typing in the middle of a group', () => {
    // "ABCD-EFGH" with X typed after "AB": caret was 3 in "ABXCD-EFGH"
    expect(formatKeyField('ABXCD-EFGH', 3)).toEqual({ value: 'ABXC-DEFG-H', caret: 3 });
  });
  it('deleting a dash does not move the caret backwards past a character', () => {
    expect(formatKeyField('ABCDEFGH', 4)).toEqual({ value: 'ABCD-EFGH', caret: 4 });
  });
  it('pasting a messy key', () => {
    const raw = 'nfgn g488\npd8p k5wr k9jd 1nmf a4jj';
    expect(formatKeyField(raw, raw.length)).toEqual({ value: GROUPED, caret: GROUPED.length });
  });
  it('caretForCount skips dashes', () => {
    expect(caretForCount('ABCD-EFGH', 0)).toBe(0);
    expect(caretForCount('ABCD-EFGH', 4)).toBe(4);
    expect(caretForCount('ABCD-EFGH', 5)).toBe(6);
    expect(caretForCount('ABCD-EFGH', 99)).toBe(9);
  });
});

describe('positions and messages', () => {
  it('locates a 1-based position in the groups', () => {
    expect(locate(1)).toMatchObject({ group: 0, index: 0, words: 'group 1, character 1' });
    expect(locate(10)).toMatchObject({ group: 2, index: 1, words: 'group 3, character 2' });
    expect(locate(28)).toMatchObject({ group: 6, index: 3, words: 'group 7, character 4' });
  });
  it('says how many characters were found against 28', () => {
    expect(lengthWords(27)).toBe('27 of 28 characters found: 1 missing.');
    expect(lengthWords(30)).toBe('30 characters found, a key has 28: 2 too many.');
  });
  it('names the group and character of a bad character', () => {
    const typed = 'NFGNG488PU8PK5WRK9JD1NMFA4JJ';
    const p = describeKeyError({ code: 'character', message: 'x', position: 10, found: null }, typed, []);
    expect(p).toEqual({ text: 'Group 3, character 2: “U” can’t occur in a license key.', marks: [9] });
  });
  it('length errors mark nothing and count', () => {
    expect(describeKeyError({ code: 'length', message: 'x', position: null, found: 7 }, 'ABCDEFG', [])).toEqual({
      text: '7 of 28 characters found: 21 missing.',
      marks: [],
    });
  });
  it('padding errors point at character 26 (group 7, character 2)', () => {
    const p = describeKeyError({ code: 'padding', message: 'x', position: null, found: null }, KEY, []);
    expect(p.marks).toEqual([25]);
    expect(p.text).toMatch(/^Group 7, character 2 is mistyped/);
  });
  it('a check error with one suggestion marks the differing characters and names the group', () => {
    const swapped = 'NFGNG488PD8PK5WRK9JD1NFMA4JJ';
    const p = describeKeyError({ code: 'check', message: 'x', position: null, found: null }, swapped, [GROUPED]);
    expect(p.marks).toEqual([22, 23]);
    expect(p.text).toMatch(/The likely typo is in group 6\.$/);
  });
  it('a check error with several suggestions does not guess a group', () => {
    const p = describeKeyError({ code: 'check', message: 'x', position: null, found: null }, KEY, [GROUPED, GROUPED.replace('A4', 'B4')]);
    expect(p.marks).toEqual([]);
    expect(p.text).not.toMatch(/group/);
  });
  it('an unknown code falls back to the message as a sentence', () => {
    expect(describeKeyError({ code: 'new', message: 'something odd', position: null, found: null }, KEY, []).text).toBe(
      'Something odd.',
    );
  });
  it('differences compares normalized forms', () => {
    expect(differences('ABCD-EFGH', 'abcd efgx')).toEqual([7]);
    expect(differences('ABC', 'ABCD')).toEqual([3]);
  });
});
