// A fake Rust side for the browser tests, injected before the page's own scripts. It stands
// where Tauri's IPC stands for @tauri-apps/api v2 (window.__TAURI_INTERNALS__: invoke,
// transformCallback, and `plugin:event|listen` for events), so the UI under test is the real,
// built bundle. It answers per src-tauri/COMMANDS.md from window.__LAPWING_FIXTURE__ and
// records every call in window.__lapwingCalls.
//
// check_key follows profile §4 (Crockford base32 + ISO/IEC 7064 MOD 1271-36), mirroring
// lap-proto's license_key.rs, so that suggestions and error positions are realistic.
(function () {
  'use strict';
  const fixture = window.__LAPWING_FIXTURE__ || {};
  const clone = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));

  // ---- license keys (profile §4) --------------------------------------------------------
  const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  const ISO = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const M = 1271;
  const WEIGHTS = new Array(28).fill(1);
  for (let i = 26; i >= 0; i--) WEIGHTS[i] = (WEIGHTS[i + 1] * 36) % M;

  function normalize(text) {
    let out = '';
    for (const c of text) {
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '-') continue;
      let u = c >= 'a' && c <= 'z' ? c.toUpperCase() : c;
      if (u === 'O') u = '0';
      if (u === 'I' || u === 'L') u = '1';
      out += u;
    }
    return out;
  }
  const display = (chars) => chars.join('').replace(/(.{4})(?=.)/g, '$1-');
  function sum(chars) {
    let s = 0;
    chars.forEach((c, i) => { s = (s + Math.max(0, ISO.indexOf(c)) * WEIGHTS[i]) % M; });
    return s;
  }
  function parse(chars) {
    if (chars.length === 0) return { code: 'empty', message: 'no license key was entered', position: null, found: 0 };
    if (chars.length !== 28) {
      return { code: 'length', message: `expected 28 characters in a license key (not counting dashes and spaces), found ${chars.length}`, position: null, found: chars.length };
    }
    for (let i = 0; i < 28; i++) {
      const ok = i < 26 ? CROCKFORD.includes(chars[i]) : ISO.includes(chars[i]);
      if (!ok) {
        return { code: 'character', message: `the character '${chars[i]}' (character ${i + 1} of the key, not counting dashes and spaces) can't occur in a license key`, position: i + 1, found: null };
      }
    }
    if (CROCKFORD.indexOf(chars[25]) & 3) return { code: 'padding', message: 'the key is not valid: a character in its last group is mistyped', position: null, found: null };
    const pair = ISO.indexOf(chars[26]) * 36 + ISO.indexOf(chars[27]);
    if (pair >= M || sum(chars) !== 1) return { code: 'check', message: 'the check characters do not match: a character is mistyped or two are swapped', position: null, found: null };
    return null;
  }
  function suggestions(chars) {
    if (chars.length !== 28) return [];
    const found = [];
    const keep = (c) => { const d = display(c); if (!parse(c) && !found.includes(d)) found.push(d); };
    for (let i = 0; i < 28; i++) {
      const original = chars[i];
      for (const r of CROCKFORD) {
        if (r === original) continue;
        chars[i] = r; keep(chars); chars[i] = original;
      }
      if (i + 1 < 28 && chars[i + 1] !== original) {
        [chars[i], chars[i + 1]] = [chars[i + 1], chars[i]]; keep(chars); [chars[i], chars[i + 1]] = [chars[i + 1], chars[i]];
      }
    }
    return found.slice(0, 8);
  }
  function checkKey(text) {
    const n = normalize(text);
    const chars = Array.from(n);
    const error = parse(chars);
    if (!error) {
      return { valid: true, normalized: n, display: display(chars), evaluation: chars.slice(0, 26).every((c) => c === '0'), error: null, suggestions: [] };
    }
    return { valid: false, normalized: n, display: null, evaluation: false, error, suggestions: error.code === 'empty' || error.code === 'length' ? [] : suggestions(chars.slice()) };
  }
  /** A valid key from a seed (deterministic), avoiding I L O U in the check characters. */
  function makeKey(seed) {
    let x = seed >>> 0 || 1;
    for (;;) {
      const chars = [];
      for (let i = 0; i < 26; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        let v = (x >>> 8) % 32;
        if (i === 25) v &= ~3;
        chars.push(CROCKFORD[v]);
      }
      const s = sum(chars);
      const pair = (1 - s + M) % M;
      const c = [ISO[Math.floor(pair / 36)], ISO[pair % 36]];
      if (c.some((ch) => 'ILOU'.includes(ch))) continue;
      const all = chars.concat(c);
      if (!parse(all)) return display(all);
    }
  }

  // ---- server addresses ---------------------------------------------------------------
  function checkServer(text) {
    const t = String(text).trim();
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*):(\d{1,5})$/.exec(t);
    if (!m) return 'Expected HOST:PORT, for example lap.example.com:4711.';
    const port = Number(m[5]);
    if (port < 1 || port > 65535) return `The port ${m[5]} is out of range (1 to 65535).`;
    return null;
  }

  // ---- state --------------------------------------------------------------------------
  const state = {
    products: clone(fixture.products) || [],
    keys: clone(fixture.keys) || {},
    overrides: clone(fixture.overrides) || { global: null, products: {} },
    policy: clone(fixture.policy) || { server: null, locked: false },
    candidates: clone(fixture.candidates) || [],
    skipped: clone(fixture.skipped) || [],
    checks: clone(fixture.checks) || [],
    report: fixture.report || '',
    about: clone(fixture.about),
    settings: clone(fixture.settings) || { autostart: false },
    fail: clone(fixture.fail) || {},
  };
  const calls = [];
  window.__lapwingCalls = calls;

  function product(id) {
    const p = state.products.find((x) => x.id === id);
    if (!p) throw { kind: 'unknown-product', message: `No installed product has the id “${id}”.` };
    return p;
  }
  function replace(p) {
    state.products = state.products.map((x) => (x.id === p.id ? p : x));
    return clone(p);
  }
  const NOW = fixture.now || 1795000000;
  function activated(p, address) {
    return Object.assign({}, p, {
      state: 'activated', has_key: true, kind: p.kind || 'term', in_compliance: true,
      ends_at: NOW + 120 * 86400, not_after: NOW + 120 * 86400, days_left: 120,
      line: fixture.activatedLine || 'Activated until 25 Mar 2027',
      last_attempt: { at: NOW, outcome: 'activated', diagnosis: [], server: { address: address || 'lap.example.com:4711', source: 'srv' } },
    });
  }
  function serverInfo(productId) {
    const po = productId ? state.overrides.products[productId] || null : null;
    const candidates = state.policy.locked && state.policy.server
      ? [{ address: state.policy.server, host: state.policy.server.replace(/:\d+$/, ''), source: 'policy', detail: 'locked by /etc/lapwing/policy.toml' }]
      : [].concat(
        po ? [{ address: po, host: po.replace(/:\d+$/, ''), source: 'override', detail: 'this product' }] : [],
        !po && state.overrides.global ? [{ address: state.overrides.global, host: state.overrides.global.replace(/:\d+$/, ''), source: 'override', detail: 'every product' }] : [],
        state.candidates,
      );
    return {
      product: productId, product_override: po, global_override: state.overrides.global,
      policy_server: state.policy.server, policy_locked: !!state.policy.locked,
      candidates: clone(candidates), skipped: clone(state.skipped),
    };
  }

  const handlers = {
    status: () => clone(state.products),
    activate: ({ id }) => {
      const p = product(id);
      if (fixture.activateOutcome && fixture.activateOutcome[id]) return replace(Object.assign({}, p, fixture.activateOutcome[id]));
      return replace(activated(p));
    },
    activate_all: () => state.products.map((p) => replace(p.has_key || p.state === 'evaluation' ? activated(p) : p)),
    check_key: ({ text }) => checkKey(text),
    set_key: ({ id, key }) => {
      const p = product(id);
      const c = checkKey(key);
      if (!c.valid) throw { kind: 'bad-key', message: 'This key is not valid.' };
      state.keys[id] = c.display;
      return replace(activated(p));
    },
    key_masked: ({ id }) => {
      product(id);
      const k = state.keys[id];
      return k ? 'XXXX-'.repeat(6) + k.slice(-4) : null;
    },
    reveal_key: ({ id }) => (product(id), state.keys[id] || null),
    remove_key: ({ id }) => {
      const p = product(id);
      delete state.keys[id];
      return replace(Object.assign({}, p, { has_key: false, state: 'unlicensed', line: 'Not licensed' }));
    },
    server_info: ({ product: id }) => serverInfo(id),
    check_server: ({ text }) => {
      const problem = checkServer(text);
      if (problem) throw { kind: 'bad-server', message: problem };
      return null;
    },
    set_server: ({ product: id, server }) => {
      if (state.policy.locked) throw { kind: 'policy-locked', message: 'The machine policy locks the server.' };
      if (server !== null) {
        const problem = checkServer(server);
        if (problem) throw { kind: 'bad-server', message: problem };
      }
      if (id) state.overrides.products[id] = server;
      else state.overrides.global = server;
      return serverInfo(id);
    },
    doctor: () => clone(state.checks),
    doctor_report: () => state.report,
    about: () => clone(state.about),
    settings: () => clone(state.settings),
    set_autostart: ({ enabled }) => ((state.settings.autostart = !!enabled), clone(state.settings)),
    open_window: () => null,
  };

  // ---- Tauri's IPC surface ------------------------------------------------------------
  const callbacks = new Map();
  const listeners = [];
  let nextId = 1;
  function transformCallback(cb, once) {
    const id = nextId++;
    callbacks.set(id, (data) => { if (once) callbacks.delete(id); return cb && cb(data); });
    return id;
  }
  async function invoke(cmd, args) {
    args = args || {};
    if (cmd === 'plugin:event|listen') {
      const eventId = nextId++;
      listeners.push({ event: args.event, handler: args.handler, eventId });
      return eventId;
    }
    if (cmd === 'plugin:event|unlisten') {
      const i = listeners.findIndex((l) => l.eventId === args.eventId);
      if (i >= 0) listeners.splice(i, 1);
      return null;
    }
    calls.push({ cmd, args: clone(args) });
    await new Promise((r) => setTimeout(r, fixture.latencyMs === undefined ? 5 : fixture.latencyMs));
    if (state.fail[cmd]) throw clone(state.fail[cmd]);
    const h = handlers[cmd];
    if (!h) throw `command ${cmd} not found`;
    return h(args);
  }
  window.__TAURI_INTERNALS__ = Object.assign(window.__TAURI_INTERNALS__ || {}, {
    invoke, transformCallback,
    unregisterCallback: (id) => callbacks.delete(id),
    callbacks,
    metadata: { currentWindow: { label: 'test' }, currentWebview: { windowLabel: 'test', label: 'test' } },
  });
  window.__TAURI_EVENT_PLUGIN_INTERNALS__ = { unregisterListener: () => {} };
  window.__lapwingFake = {
    state, checkKey, makeKey, normalize,
    emit(event, payload) {
      for (const l of listeners.filter((x) => x.event === event)) {
        const cb = callbacks.get(l.handler);
        if (cb) cb({ event, id: l.eventId, payload: clone(payload) });
      }
      if (event === 'status-changed') state.products = clone(payload);
    },
    listenerCount: (event) => listeners.filter((l) => l.event === event).length,
  };
})();
