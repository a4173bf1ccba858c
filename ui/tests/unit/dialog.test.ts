import { describe, expect, it } from 'vitest';
import { closeOnEscape, elapsedWords, withProgress } from '../../src/dialog';

describe('elapsedWords', () => {
  it('says seconds, then minutes and seconds', () => {
    expect(elapsedWords(0)).toBe('0 s');
    expect(elapsedWords(59_999)).toBe('59 s');
    expect(elapsedWords(65_000)).toBe('1 min 5 s');
    expect(elapsedWords(-5)).toBe('0 s');
  });
});

describe('closeOnEscape', () => {
  it('closes on Escape unless something inside took the key', () => {
    let closed = 0;
    closeOnEscape(() => (closed += 1));
    const inner = document.createElement('div');
    document.body.appendChild(inner);
    inner.addEventListener('keydown', (ev) => {
      if ((ev as KeyboardEvent).key === 'Escape' && inner.dataset.takes) ev.preventDefault();
    });
    inner.dataset.takes = 'yes';
    inner.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }));
    expect(closed).toBe(0);
    delete inner.dataset.takes;
    inner.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }));
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    expect(closed).toBe(1);
  });
});

describe('withProgress', () => {
  it('gives the answer, or the failure, and takes the progress away', async () => {
    const host = document.createElement('div');
    const done = withProgress(host, 'Trying…', Promise.resolve(7));
    expect(host.querySelector('.progress-text')?.textContent).toBe('Trying…');
    expect(await done).toEqual({ kind: 'done', value: 7 });
    expect(host.hidden).toBe(true);
    expect(host.childElementCount).toBe(0);
    const failed = await withProgress(host, 'Trying…', Promise.reject(new Error('no')));
    expect(failed.kind).toBe('failed');
  });
  it('stops waiting on Cancel; a late answer changes nothing', async () => {
    const host = document.createElement('div');
    let answer: (v: number) => void = () => {};
    const task = new Promise<number>((resolve) => (answer = resolve));
    const waited = withProgress(host, 'Trying…', task);
    (host.querySelector('#cancel-wait') as HTMLButtonElement).click();
    expect(await waited).toEqual({ kind: 'cancelled' });
    answer(1);
    await task;
    expect(host.childElementCount).toBe(0);
  });
});
