// A fake Rust side for the browser tests, injected before the page's own scripts. It stands
// where Tauri's IPC stands for @tauri-apps/api v2 (window.__TAURI_INTERNALS__: invoke,
// transformCallback, and `plugin:event|listen` for events), so the UI under test is the real,
// built bundle. It answers per src-tauri/COMMANDS.md from window.__LAPWING_FIXTURE__ (what is
// installed and stored, the overrides and the machine policy) and from
// window.__LAPWING_RECORDED__ (what Rust answers: key and server checks, masked keys, status
// lines, the Server window's discovery view), and records every call in window.__lapwingCalls.
(function () {
  'use strict';
  const fixture = window.__LAPWING_FIXTURE__ || {};
  const clone = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));

  // ---- recorded answers -----------------------------------------------------------------
  // What the Rust code answers for the inputs the tests use, recorded by
  // src-tauri/tests/ui_recordings.rs into recorded/commands.json (the harness puts it in
  // window.__LAPWING_RECORDED__). Nothing here re-implements a Rust rule: an input without a
  // recording is a mistake in the test, said on the console (which fails assertClean).
  const recorded = window.__LAPWING_RECORDED__;
  function lookup(table, what, input) {
    const answers = recorded[table] || {};
    if (Object.prototype.hasOwnProperty.call(answers, input)) return clone(answers[input]);
    console.error(`fake backend: no recorded ${what} for ${JSON.stringify(input)}: ` +
      'add it to src-tauri/tests/ui_recordings.rs and run LAPWING_RECORD=1 cargo test -p lapwing --test ui_recordings');
    throw { kind: 'engine', message: `The test has no recorded ${what} for this input.` };
  }
  /** A command's recorded answer: its value, or the `{ kind, message }` it rejected with. */
  function replay(cmd, input) {
    const answer = lookup(cmd, `${cmd} answer`, input);
    if ('error' in answer) throw answer.error;
    return answer.ok;
  }
  /** The recorded status of a product in `state` (after-activation, after-removal). */
  const recordedStatus = (state) => lookup('status', 'status', state);

  // ---- state --------------------------------------------------------------------------
  const state = {
    products: clone(fixture.products) || [],
    keys: clone(fixture.keys) || {},
    overrides: clone(fixture.overrides) || { global: null, products: {} },
    policy: clone(fixture.policy) || { server: null, locked: false },
    checks: clone(fixture.checks) || [],
    report: fixture.report || '',
    about: clone(fixture.about),
    settings: clone(fixture.settings) || { autostart: false },
    fail: clone(fixture.fail) || {},
    trayHost: clone(fixture.trayHost) || { present: true, reason: null, message: null },
    // Per product, the answers `deactivate` gives, in order (the test's script of the server).
    deactivate: clone(fixture.deactivate) || {},
    closed: 0,
  };
  const calls = [];
  window.__lapwingCalls = calls;
  const held = [];

  function product(id) {
    const p = state.products.find((x) => x.id === id);
    if (!p) throw { kind: 'unknown-product', message: `No installed product has the id “${id}”.` };
    return p;
  }
  function replace(p) {
    state.products = state.products.map((x) => (x.id === p.id ? p : x));
    return clone(p);
  }
  const NOW = fixture.now || recorded.now;
  function activated(p, address) {
    const r = recordedStatus('after-activation');
    return Object.assign({}, p, {
      state: r.state, has_key: r.has_key, kind: r.kind, in_compliance: r.in_compliance,
      ends_at: r.ends_at, not_after: r.not_after, days_left: r.days_left,
      line: r.line, verdict: r.verdict,
      last_attempt: { at: NOW, outcome: 'activated', diagnosis: [], server: { address: address || 'lap.example.com:4711', source: 'srv' } },
    });
  }
  /**
   * The situation a Server window asks in, as the key its answer is recorded under
   * (`Situation` in ui_recordings.rs: the same fields in the same order). The overrides and
   * the policy are only looked up with, never reasoned about: discovery's answer is Rust's.
   */
  function situation(id, request) {
    return JSON.stringify(Object.assign({
      product: id,
      product_override: id === null ? null : state.overrides.products[id] ?? null,
      global_override: state.overrides.global ?? null,
      policy_server: state.policy.server ?? null,
      policy_locked: !!state.policy.locked,
    }, request));
  }

  const handlers = {
    status: () => clone(state.products),
    activate: ({ id }) => {
      const p = product(id);
      if (fixture.activateOutcome && fixture.activateOutcome[id]) return replace(Object.assign({}, p, fixture.activateOutcome[id]));
      return replace(activated(p));
    },
    activate_all: () => {
      const products = state.products.map((p) => replace(p.has_key || p.state === 'evaluation' ? activated(p) : p));
      // The batch's counts and sentence are Rust's (BatchResult), recorded for this outcome.
      const key = products.map((p) => `${p.id}:${p.last_attempt ? p.last_attempt.outcome : 'none'}`).join(',');
      return { products, result: lookup('activate_all', 'activate_all result', key) };
    },
    check_key: ({ text }) => replay('check_key', text),
    set_key: ({ id, key }) => {
      const p = product(id);
      const c = replay('check_key', key);
      // The windows only send keys that checked out: no refusal of set_key is recorded.
      if (!c.valid) lookup('set_key', 'set_key refusal', key);
      if ((fixture.ignoredKeys || []).includes(c.display) && state.keys[id]) {
        // A key the server drops without a word, entered over a working one: the engine
        // keeps it pending and the stored key (and its grant) stay.
        const r = recordedStatus('after-pending-key');
        return replace(Object.assign({}, p, { pending_key: r.pending_key, pending_note: r.pending_note }));
      }
      state.keys[id] = c.display;
      return replace(activated(p));
    },
    key_masked: ({ id }) => {
      product(id);
      const k = state.keys[id];
      return k ? lookup('key_masked', 'masked key', k) : null;
    },
    reveal_key: ({ id }) => (product(id), state.keys[id] || null),
    remove_key: ({ id }) => {
      const p = product(id);
      delete state.keys[id];
      const r = recordedStatus('after-removal');
      return replace(Object.assign({}, p, { has_key: r.has_key, state: r.state, line: r.line, verdict: r.verdict }));
    },
    deactivate: async ({ id }) => {
      const p = product(id);
      // The test scripts which case the server plays, in order: `case` names the recorded
      // answer (its words are Rust's), `status` the recorded status the product moves to.
      const script = (state.deactivate[id] || []).shift();
      if (!script) {
        console.error(`fake backend: no deactivate answer scripted for ${id}`);
        throw { kind: 'engine', message: 'The test has no deactivate answer for this product.' };
      }
      // Held: the answer waits until the test calls __lapwingFake.releaseHeld() (no sleeping).
      if (script.held) await new Promise((resolve) => held.push(resolve));
      if (script.error) throw script.error;
      const answer = lookup('deactivate', 'deactivate answer', script.case);
      let next = p;
      if (script.status) {
        const r = recordedStatus(script.status);
        next = Object.assign({}, p, {
          state: r.state, line: r.line, verdict: r.verdict, license_id: r.license_id,
          ends_at: r.ends_at, not_after: r.not_after, days_left: r.days_left,
          next_attempt_at: r.next_attempt_at, deactivated_at: r.deactivated_at,
          duplicate: r.duplicate, moved_from_previous_hardware: r.moved_from_previous_hardware,
          lifecycle_note: r.lifecycle_note,
        });
      }
      if (answer.key_removed) {
        delete state.keys[id];
        next = Object.assign({}, next, { has_key: false });
      }
      const status = replace(next);
      // As Rust does: the new status is published before the command answers.
      window.__lapwingFake.emit('status-changed', state.products);
      return Object.assign(answer, { status });
    },
    drop_pending_key: ({ id }) => replace(Object.assign({}, product(id), { pending_key: null, pending_note: null })),
    server_info: ({ product: id }) => replay('server_info', situation(id ?? null)),
    check_server: ({ text }) => replay('check_server', text),
    set_server: ({ product: id, server }) => {
      const info = replay('set_server', situation(id ?? null, { server: server ?? null }));
      // The overrides become what Rust says they are now.
      if (id) state.overrides.products[id] = info.product_override;
      state.overrides.global = info.global_override;
      return info;
    },
    doctor: () => clone(state.checks),
    doctor_report: () => state.report,
    about: () => clone(state.about),
    settings: () => clone(state.settings),
    set_autostart: ({ enabled }) => ((state.settings.autostart = !!enabled), clone(state.settings)),
    open_window: () => null,
    close_window: () => ((state.closed += 1), null),
    tray_host: () => clone(state.trayHost),
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
    // A command that never answers (an attempt the engine is still waiting on).
    if (fixture.hang && fixture.hang.includes(cmd)) return new Promise(() => {});
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
    state, recorded,
    emit(event, payload) {
      for (const l of listeners.filter((x) => x.event === event)) {
        const cb = callbacks.get(l.handler);
        if (cb) cb({ event, id: l.eventId, payload: clone(payload) });
      }
      if (event === 'status-changed') state.products = clone(payload);
    },
    listenerCount: (event) => listeners.filter((l) => l.event === event).length,
    heldCount: () => held.length,
    releaseHeld: () => held.splice(0).forEach((resolve) => resolve()),
  };
})();
