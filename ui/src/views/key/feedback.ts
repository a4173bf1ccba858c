// What the form shows for a check of the key: the feedback sentence, the groups with the
// mistyped characters marked, and the suggested keys, each a button that uses it.
import { clear, h } from '../../dom';
import { describeKeyError, differences, GROUP_CHARS, keyGroups } from '../../keys';
import type { KeyCheck } from '../../types';
import type { KeyForm } from './form';

/** Shows `check` of the `normalized` text (`null`: nothing to say yet); `pick` uses a suggestion. */
export function showCheck(form: KeyForm, check: KeyCheck | null, normalized: string, pick: (key: string) => void): void {
  const { input, feedback, activate } = form;
  if (!check || normalized === '') {
    input.setAttribute('aria-invalid', 'false');
    feedback.textContent = '';
    feedback.className = 'feedback';
    renderSuggestions(form.suggestions, [], '', pick);
    renderStrip(form.strip, normalized, []);
    activate.disabled = true;
    return;
  }
  if (check.valid) {
    input.setAttribute('aria-invalid', 'false');
    feedback.className = 'feedback ok';
    feedback.textContent = 'The key is well formed. Activate to send it to the license server.';
    renderSuggestions(form.suggestions, [], '', pick);
    renderStrip(form.strip, check.normalized, []);
    activate.disabled = false;
    return;
  }
  const error = check.error ?? { code: 'check', message: 'The key is not valid', position: null, found: null };
  const problem = describeKeyError(error, check.normalized, check.suggestions);
  input.setAttribute('aria-invalid', 'true');
  feedback.className = 'feedback error';
  feedback.textContent = problem.text;
  renderSuggestions(form.suggestions, check.suggestions, check.normalized, pick);
  renderStrip(form.strip, check.normalized, problem.marks);
  activate.disabled = true;
}

/** The key's groups of 4, blanks as dots, the characters at `marks` (0-based) and their groups marked. */
export function renderStrip(strip: HTMLElement, normalized: string, marks: number[]): void {
  clear(strip);
  const markSet = new Set(marks);
  keyGroups(normalized).forEach((g, gi) => {
    const cell = h('span', { class: 'key-group' });
    const chars = Array.from(g);
    if (chars.length < GROUP_CHARS && gi < 7) cell.classList.add('partial');
    if (gi >= 7) cell.classList.add('extra');
    for (let ci = 0; ci < GROUP_CHARS; ci++) {
      const ch = chars[ci];
      const span = h('span', { class: ch === undefined ? 'slot blank' : 'slot' }, ch ?? '·');
      if (markSet.has(gi * GROUP_CHARS + ci)) {
        span.classList.add('bad');
        cell.classList.add('bad');
      }
      cell.appendChild(span);
    }
    strip.appendChild(cell);
  });
}

/** One button per suggested key, with the characters that differ from `typed` highlighted. */
function renderSuggestions(box: HTMLElement, list: string[], typed: string, pick: (key: string) => void): void {
  clear(box);
  box.hidden = list.length === 0;
  if (!list.length) return;
  box.appendChild(h('span', { class: 'muted' }, list.length === 1 ? 'Did you mean' : 'Did you mean one of'));
  for (const s of list) {
    const diff = new Set(differences(typed, s));
    const b = h('button', { type: 'button', class: 'suggestion', 'aria-label': `Use ${s}` });
    let i = 0;
    for (const ch of s) {
      if (ch === '-') {
        b.appendChild(document.createTextNode('-'));
        continue;
      }
      b.appendChild(diff.has(i) ? h('mark', {}, ch) : document.createTextNode(ch));
      i++;
    }
    b.addEventListener('click', () => pick(s));
    box.appendChild(b);
  }
}
