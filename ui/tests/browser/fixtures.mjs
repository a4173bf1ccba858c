// Data for the browser tests, in the shapes of src-tauri/COMMANDS.md. Times are UTC (the
// pages run with timezoneId UTC): "now" is 25 Nov 2026, 12:00. Each product's `line` is the
// one Rust words for it (recorded.mjs).
import { recorded } from './recorded.mjs';

export const NOW = recorded.now; // 2026-11-25T12:00:00Z
const DAY = 86400;
export const MAR_12_2027 = 1804852800; // 2027-03-12T12:00:00Z

/** The status line Rust words for the product (recorded for the same state and dates). */
const lineOf = (id) => recorded.status[id].line;
/** The verdict Rust gives the product (recorded with its line): the UI shows it, never decides it. */
const verdictOf = (id) => recorded.status[id].verdict;

const base = {
  sku: '6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11',
  addon_of: null,
  not_after: null,
  ends_at: null,
  days_left: null,
  license_id: null,
  kind: null,
  in_compliance: null,
  features: [],
  notice: null,
  has_key: false,
  server: null,
  last_attempt: null,
  next_attempt_at: null,
  clock_moved_back_by: null,
  pending_key: null,
  pending_note: null,
};

export const products = [
  {
    ...base,
    id: 'acme-studio', name: 'Acme Studio', vendor: 'Acme Software Ltd.', state: 'activated',
    not_after: MAR_12_2027, ends_at: MAR_12_2027, days_left: 107,
    license_id: '1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed', kind: 'term', in_compliance: true,
    features: ['pro', 'export'], notice: 'Licensed to Example Ltd.', has_key: true,
    server: { address: 'lap.example.com:4711', source: 'srv' },
    last_attempt: { at: NOW - 3600, outcome: 'activated', diagnosis: [], server: { address: 'lap.example.com:4711', source: 'srv' } },
    next_attempt_at: NOW + 7 * DAY,
    line: lineOf('acme-studio'),
    verdict: verdictOf('acme-studio'),
  },
  {
    ...base,
    id: 'acme-export', name: 'Acme Export', vendor: 'Acme Software Ltd.', state: 'evaluation',
    sku: '0d3f4b43-4c39-4a43-9a3e-5f7a1c0e9b12', addon_of: 'acme-studio',
    ends_at: NOW + 23 * DAY, not_after: NOW + 23 * DAY, days_left: 23, kind: 'evaluation', in_compliance: true,
    features: ['basic'], server: { address: 'lap.acme.example:4711', source: 'manifest' },
    last_attempt: { at: NOW - 7 * DAY, outcome: 'activated', diagnosis: [], server: { address: 'lap.acme.example:4711', source: 'manifest' } },
    line: lineOf('acme-export'),
    verdict: verdictOf('acme-export'),
  },
  {
    ...base,
    id: 'borealis-draw', name: 'Borealis Draw', vendor: 'Borealis AB', state: 'evaluation-expired',
    ends_at: NOW - 23 * DAY, not_after: NOW - 23 * DAY, days_left: -23, kind: 'evaluation',
    server: { address: 'lap.borealis.example:4711', source: 'dns-sd' },
    line: lineOf('borealis-draw'),
    verdict: verdictOf('borealis-draw'),
  },
  {
    ...base,
    id: 'cartograph-pro', name: 'Cartograph Pro', vendor: 'Cartograph GmbH', state: 'renewal-due',
    ends_at: NOW + 6 * DAY, not_after: NOW + 6 * DAY, days_left: 6, kind: 'subscription', in_compliance: false,
    features: ['maps', 'print'], has_key: true,
    server: { address: '192.0.2.10:4711', source: 'policy' },
    last_attempt: {
      at: NOW - 900, outcome: 'no-answer',
      diagnosis: [
        { code: 'clock-may-be-off', message: 'The clock may be off: servers allow 30 seconds.' },
        { code: 'key-may-be-refused', message: 'The key may not be known to this server.' },
        { code: 'unreachable', message: 'The server may be unreachable from this network (UDP 4711).', tried: [{ address: '192.0.2.10:4711', source: 'policy' }] },
      ],
      server: { address: '192.0.2.10:4711', source: 'policy' },
    },
    next_attempt_at: NOW + 900,
    line: lineOf('cartograph-pro'),
    verdict: verdictOf('cartograph-pro'),
  },
  {
    ...base,
    id: 'delta-mixer', name: 'Delta Mixer', vendor: 'Delta Audio', state: 'expired',
    ends_at: NOW - 3 * DAY, not_after: NOW - 3 * DAY, days_left: -3, kind: 'term', in_compliance: true, has_key: true,
    server: { address: 'lap.corp.example:4711', source: 'override' },
    last_attempt: { at: NOW - 3600, outcome: 'rejected-answer', diagnosis: [{ code: 'datagrams-rejected', message: 'The answer did not verify with the vendor’s server key.', count: 1, address: 'lap.corp.example:4711', last_error: 'authentication failed (Ed25519 signature)' }], server: { address: 'lap.corp.example:4711', source: 'override' } },
    clock_moved_back_by: 180,
    line: lineOf('delta-mixer'),
    verdict: verdictOf('delta-mixer'),
  },
  {
    ...base,
    id: 'echo-notes', name: 'Echo Notes', vendor: 'Echo Labs', state: 'unlicensed',
    last_attempt: { at: NOW - 60, outcome: 'not-sent', diagnosis: recorded.status['echo-notes'].last_attempt.diagnosis, server: null },
    line: lineOf('echo-notes'),
    verdict: verdictOf('echo-notes'),
  },
];

// The lines were recorded for these states and dates: a product changed here without changing
// (and re-recording) its case in the recorder would show a line that is not its own.
for (const p of products) {
  const r = recorded.status[p.id];
  const facts = (s) => [s.state, s.not_after, s.ends_at, s.kind, s.in_compliance, s.has_key, s.last_attempt?.outcome ?? null];
  if (JSON.stringify(facts(p)) !== JSON.stringify(facts(r))) {
    throw new Error(`fixtures.mjs and recorded/commands.json disagree on ${p.id}: ${JSON.stringify(facts(p))} vs ${JSON.stringify(facts(r))}`);
  }
}

export const checks = [
  { subject: 'Manifests', level: 'ok', message: '6 products installed, none refused.' },
  { subject: 'Keyring', level: 'ok', message: 'Secret Service (gnome-keyring) is unlocked.' },
  { subject: 'Policy', level: 'info', message: 'No machine policy (/etc/lapwing/policy.toml).' },
  { subject: 'Clock', level: 'warning', message: 'The clock moved back by 3 minutes on 25 Nov 2026.' },
  { subject: 'Servers', level: 'problem', message: 'Echo Notes: no server found.' },
];

export const report = [
  'Lapwing 0.1.0 diagnostics, 2026-11-25 12:00 UTC',
  'ok       Manifests  6 products installed, none refused.',
  'warning  Clock      The clock moved back by 3 minutes.',
  'problem  Servers    Echo Notes: no server found.',
].join('\n');

export const about = {
  version: '0.1.0',
  data_dir: '/home/ada/.local/share/lapwing',
  state_file: '/home/ada/.local/share/lapwing/state.json',
  policy_file: '/etc/lapwing/policy.toml',
  products_dirs: ['/usr/share/lap/products.d', '/home/ada/.local/share/lap/products.d'],
  log: '/home/ada/.local/state/lapwing/lapwing.log',
  licenses: [
    { name: 'tauri', version: '2.9.0', license: 'Apache-2.0 OR MIT' },
    { name: 'x25519-dalek', version: '2.0.1', license: 'BSD-3-Clause' },
    { name: '@tauri-apps/api', version: '2.12.5', license: 'Apache-2.0 OR MIT' },
  ],
};

export function fixture(extra = {}) {
  return {
    now: NOW,
    products,
    checks,
    report,
    about,
    settings: { autostart: true },
    keys: { 'acme-studio': recorded.keys.stored },
    ...extra,
  };
}
