import { describe, expect, it } from 'vitest';
import { verdictSummary, worstLevel } from '../../src/format';
import type { VerdictLevel } from '../../src/types';

// The Products header shows the verdicts Rust gave (lapwing-core's verdict.rs), counted: the
// same words as `Overall::summary`, asserted for the same cases in src-tauri/tests/one_verdict.rs.
describe('the Products header shows the verdict it is given', () => {
  it('one product of each verdict', () => {
    const cases: [VerdictLevel, string][] = [
      ['all-good', '1 product · all in order'],
      ['working', '1 product · 1 activating'],
      ['attention', '1 product · 1 needs attention'],
      ['broken', '1 product · 1 not usable'],
    ];
    for (const [level, words] of cases) {
      expect(verdictSummary([level])).toBe(words);
      expect(worstLevel([level])).toBe(level);
    }
  });

  it('counts each verdict, never "all in order" beside one that is not', () => {
    const twelve: VerdictLevel[] = [
      'all-good', 'working', 'attention', 'attention', 'all-good', 'attention',
      'broken', 'broken', 'attention', 'attention', 'broken', 'broken',
    ];
    expect(verdictSummary(twelve)).toBe('12 products · 4 not usable · 5 need attention · 1 activating');
    expect(worstLevel(twelve)).toBe('broken');
    expect(verdictSummary(['all-good', 'all-good'])).toBe('2 products · all in order');
    expect(verdictSummary(['all-good', 'attention'])).not.toContain('all in order');
    expect(worstLevel([])).toBe('all-good');
  });
});
