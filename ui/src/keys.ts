// The license key field's pure logic (profile §4: 28 characters in 7 groups of 4).
// The authoritative check is Rust's `check_key`; this only tidies what was typed or pasted
// and maps the check's 1-based `position` onto the groups shown.

export const KEY_CHARS = 28;
export const GROUP_CHARS = 4;
export const GROUPS = KEY_CHARS / GROUP_CHARS; // 7

/**
 * Characters that only separate: whitespace (any, so pasted line breaks, tabs and no-break
 * spaces vanish), ASCII and typographic dashes, zero-width spaces. Rust drops ASCII whitespace
 * and `-`; everything else here is dropped before the text is sent to `check_key`, so the
 * positions it reports are positions in `normalizeKeyInput`'s result.
 */
const SEPARATOR = /[\s\u200B-\u200D\uFEFF\-\u2010-\u2015\u2212]/;
const SEPARATORS = new RegExp(SEPARATOR.source, 'g');

/** Drops separators and upper-cases ASCII letters (only ASCII, as Rust does). */
export function normalizeKeyInput(text: string): string {
  return text.replace(SEPARATORS, '').replace(/[a-z]/g, (c) => c.toUpperCase());
}

/** Groups of 4 joined by `-`; a longer input keeps grouping, so the excess stays visible. */
export function groupKey(normalized: string): string {
  const chars = Array.from(normalized);
  const groups: string[] = [];
  for (let i = 0; i < chars.length; i += GROUP_CHARS) {
    groups.push(chars.slice(i, i + GROUP_CHARS).join(''));
  }
  return groups.join('-');
}

/** The groups as an array (for the group strip), always at least 7 entries. */
export function keyGroups(normalized: string): string[] {
  const chars = Array.from(normalized);
  const count = Math.max(GROUPS, Math.ceil(chars.length / GROUP_CHARS));
  const out: string[] = [];
  for (let g = 0; g < count; g++) out.push(chars.slice(g * GROUP_CHARS, (g + 1) * GROUP_CHARS).join(''));
  return out;
}

export interface Formatted {
  value: string;
  caret: number;
}

/**
 * Reformats a field's raw value into groups and keeps the caret after the same significant
 * character it followed before (so typing or deleting mid-key does not jump to the end).
 */
export function formatKeyField(raw: string, caret: number): Formatted {
  const before = normalizeKeyInput(raw.slice(0, Math.max(0, Math.min(caret, raw.length))));
  const count = Array.from(before).length;
  const value = groupKey(normalizeKeyInput(raw));
  return { value, caret: caretForCount(value, count) };
}

/** The offset in a grouped value just after `count` significant characters. */
export function caretForCount(grouped: string, count: number): number {
  if (count <= 0) return 0;
  let seen = 0;
  let i = 0;
  for (const ch of grouped) {
    i += ch.length;
    if (ch !== '-') {
      seen++;
      if (seen === count) return i;
    }
  }
  return grouped.length;
}

export interface KeyLocation {
  /** 0-based group index. */
  group: number;
  /** 0-based character index within the group. */
  index: number;
  /** 1-based, for people. */
  words: string;
}

/** Where a 1-based position of the normalized key is: "group 3, character 2". */
export function locate(position: number): KeyLocation {
  const p = Math.max(1, Math.floor(position)) - 1;
  const group = Math.floor(p / GROUP_CHARS);
  const index = p % GROUP_CHARS;
  return { group, index, words: `group ${group + 1}, character ${index + 1}` };
}

/** How many characters were found against the 28 expected. */
export function lengthWords(found: number): string {
  if (found < KEY_CHARS) {
    const missing = KEY_CHARS - found;
    return `${found} of ${KEY_CHARS} characters found: ${missing} missing.`;
  }
  const extra = found - KEY_CHARS;
  return `${found} characters found, a key has ${KEY_CHARS}: ${extra} too many.`;
}

/** 0-based indices where two normalized keys differ (a suggestion against what was typed). */
export function differences(typed: string, suggestion: string): number[] {
  const a = Array.from(normalizeKeyInput(typed));
  const b = Array.from(normalizeKeyInput(suggestion));
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

export type KeyErrorLike = {
  code: string;
  message: string;
  position: number | null;
  found: number | null;
};

export interface KeyProblem {
  /** The sentence shown under the field. */
  text: string;
  /** 0-based character indices to highlight in the group strip. */
  marks: number[];
}

/**
 * What to tell a person about a failed check, and which characters to mark. `normalized` is
 * the check's own normalized text; `suggestions` its one-typo-away keys.
 */
export function describeKeyError(
  error: KeyErrorLike,
  normalized: string,
  suggestions: string[],
): KeyProblem {
  const chars = Array.from(normalized);
  switch (error.code) {
    case 'empty':
      return { text: `Enter the ${KEY_CHARS}-character key.`, marks: [] };
    case 'length':
      return { text: lengthWords(error.found ?? chars.length), marks: [] };
    case 'character': {
      if (error.position === null) return { text: sentence(error.message), marks: [] };
      const at = locate(error.position);
      const ch = chars[error.position - 1] ?? '';
      return {
        text: `${capital(at.words)}: “${ch}” can’t occur in a license key.`,
        marks: [error.position - 1],
      };
    }
    case 'padding': {
      const position = error.position ?? 26;
      const at = locate(position);
      return {
        text: `${capital(at.words)} is mistyped: no key has that character there.`,
        marks: [position - 1],
      };
    }
    case 'check': {
      const base = 'The key doesn’t check out: a character is mistyped or two neighbouring ones are swapped.';
      if (suggestions.length === 1) {
        const diff = differences(normalized, suggestions[0] ?? '');
        const groups = [...new Set(diff.map((i) => Math.floor(i / GROUP_CHARS) + 1))];
        const where = groups.length === 1 ? ` The likely typo is in group ${groups[0]}.` : '';
        return { text: base + where, marks: diff };
      }
      if (error.position !== null) return { text: base, marks: [error.position - 1] };
      return { text: base, marks: [] };
    }
    default:
      return { text: sentence(error.message), marks: error.position ? [error.position - 1] : [] };
  }
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function sentence(s: string): string {
  const t = capital(s.trim());
  return /[.!?]$/.test(t) ? t : `${t}.`;
}
