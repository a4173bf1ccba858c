import { describe, expect, it } from 'vitest';
import { causeList, Messages } from '../../src/dom';

describe('causeList', () => {
  it('shows each cause by its message and keeps its code', () => {
    const list = causeList([
      { code: 'evaluation-may-not-be-offered', message: 'the server may offer no evaluation' },
      { code: 'unreachable', message: 'the server may be unreachable' },
    ]);
    const items = [...list.querySelectorAll('li')];
    expect(items.map((li) => li.textContent)).toEqual([
      'the server may offer no evaluation',
      'the server may be unreachable',
    ]);
    expect(items.map((li) => li.dataset.code)).toEqual(['evaluation-may-not-be-offered', 'unreachable']);
  });
  it('offers a button where the sentence advises a command, and only when the window can act', () => {
    const cause = { code: 'no-license-key', message: 'no license key: enter one with `lapctl key set` or from the tray' };
    const acted: string[] = [];
    const list = causeList([cause], {}, (action) => acted.push(action));
    expect(list.textContent).toBe('No license key is stored. Enter the key…');
    (list.querySelector('button') as HTMLButtonElement).click();
    expect(acted).toEqual(['key']);
    const plain = causeList([cause]);
    expect(plain.querySelector('button')).toBeNull();
    expect(plain.textContent).toBe('No license key is stored.');
  });
  it('sets messages as text, never as markup', () => {
    const list = causeList([{ code: 'recorded', message: '<b>not bold</b>' }]);
    expect(list.querySelector('b')).toBeNull();
    expect(list.textContent).toBe('<b>not bold</b>');
  });
  it('takes plain lines too, without a code', () => {
    const messages = new Messages();
    messages.info('2 of 3 products activated.', ['Acme: Activated']);
    const li = messages.el.querySelector('.diagnosis li') as HTMLElement;
    expect(li.textContent).toBe('Acme: Activated');
    expect(li.dataset.code).toBeUndefined();
  });
});
