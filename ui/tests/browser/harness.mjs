// Shared set-up for the browser tests: a static server for ui/dist with the app's CSP, Debian's
// Chromium through playwright-core (never a downloaded browser), and pages whose IPC is the
// fake in fake-backend.js, answering with what recorded.mjs holds.
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { recorded } from './recorded.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const UI_DIR = resolve(here, '..', '..');
export const DIST = join(UI_DIR, 'dist');
export const SHOTS = resolve(UI_DIR, '..', 'target', 'ui-screenshots');
export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'";
const FAKE = await readFile(join(here, 'fake-backend.js'), 'utf8');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/** Serves ui/dist on 127.0.0.1 and a free port, with the window's CSP on every answer. */
export async function serveDist() {
  if (!existsSync(join(DIST, 'index.html'))) throw new Error('ui/dist is missing: run `npm run build` first');
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, '') || 'index.html';
    const file = join(DIST, rel);
    if (!file.startsWith(DIST)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-security-policy': CSP,
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((ok) => server.close(ok)) };
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.LAPWING_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Opens `index.html${query}` with the fake IPC answering from `fixture`. Collects page errors,
 * CSP violations and console errors; `assertClean` checks there were none.
 */
export async function openView(browser, base, query, fixture = {}, options = {}) {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 720, height: 640 },
    colorScheme: options.colorScheme ?? 'light',
    timezoneId: 'UTC',
    locale: 'en-GB',
    deviceScaleFactor: 1,
  });
  if (options.clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  await page.addInitScript({
    content:
      `window.__LAPWING_FIXTURE__ = ${JSON.stringify(fixture)};\n` +
      `window.__LAPWING_RECORDED__ = ${JSON.stringify(recorded)};\n` +
      `window.__cspViolations = [];\n` +
      `document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));\n` +
      (options.extraInit ?? '') +
      FAKE,
  });
  // A fake clock, so what moves with time (the elapsed seconds of a wait) is tested by
  // moving the clock, never by sleeping.
  if (options.clock) await page.clock.install({ time: options.clock });
  await page.goto(`${base}index.html${query}`);
  await page.waitForSelector('html[data-ready="true"]', { timeout: 10_000 });
  page.problems = problems;
  page.closeAll = () => context.close();
  return page;
}

export async function calls(page, cmd) {
  const all = await page.evaluate(() => window.__lapwingCalls);
  return cmd ? all.filter((c) => c.cmd === cmd) : all;
}

export async function assertClean(page) {
  const csp = await page.evaluate(() => window.__cspViolations);
  const problems = [...page.problems, ...csp.map((v) => `CSP violation: ${v}`)];
  if (problems.length) throw new Error(problems.join('\n'));
}

export async function screenshot(page, name) {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}
