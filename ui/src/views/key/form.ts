// The key entry form's elements: the field, the group strip, the feedback line, the
// suggestions and the Activate button. No behaviour beyond submitting.
import { button, h } from '../../dom';

export interface KeyForm {
  el: HTMLFormElement;
  input: HTMLInputElement;
  strip: HTMLElement;
  feedback: HTMLElement;
  suggestions: HTMLElement;
  activate: HTMLButtonElement;
}

/** The form; `onActivate` runs on the button and on Enter while the button is enabled. */
export function keyForm(onActivate: () => void): KeyForm {
  const input = h('input', {
    id: 'key-input',
    class: 'key-input',
    type: 'text',
    autocomplete: 'off',
    autocapitalize: 'characters',
    spellcheck: 'false',
    inputmode: 'text',
    placeholder: 'XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX',
    'aria-describedby': 'key-help key-feedback',
    'aria-invalid': 'false',
  });
  const strip = h('div', { class: 'key-strip', 'aria-hidden': 'true' });
  const feedback = h('p', { id: 'key-feedback', class: 'feedback', 'aria-live': 'polite' });
  const suggestions = h('div', { class: 'suggestions', role: 'group', 'aria-label': 'Suggested keys', hidden: true });
  const activate = button('Activate', () => onActivate(), { class: 'primary', disabled: true, id: 'activate-key' });
  const el = h(
    'form',
    { class: 'key-form', novalidate: true },
    h('label', { for: 'key-input' }, 'License key'),
    input,
    h('p', { id: 'key-help', class: 'help' },
      '28 characters in 7 groups of 4. Paste it as it is: spaces, dashes and line breaks are ignored.'),
    strip,
    feedback,
    suggestions,
    h('div', { class: 'actions' }, activate),
  );
  el.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!activate.disabled) onActivate();
  });
  return { el, input, strip, feedback, suggestions, activate };
}
