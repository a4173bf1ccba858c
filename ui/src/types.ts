// The JSON shapes of src-tauri/COMMANDS.md. Keep in step with that file.

export type State =
  | 'unlicensed'
  | 'evaluation'
  | 'evaluation-expired'
  | 'activated'
  | 'renewal-due'
  | 'expired'
  /** Deactivated on this computer (the seat released, or given up here): nothing is renewed. */
  | 'deactivated'
  /** The vendor's final release (a sunset grant): activated for good, nothing to renew. */
  | 'sunset';

export type Source = 'override' | 'policy' | 'srv' | 'dns-sd' | 'manifest';

export type Kind = 'perpetual' | 'term' | 'subscription' | 'evaluation';

export type Outcome = 'activated' | 'no-answer' | 'rejected-answer' | 'not-sent';

export interface ServerRef {
  address: string;
  source: Source;
}

/**
 * One likely cause of a failed attempt: `code` is stable (decide on it), `message` is the
 * sentence to show. Causes with data carry more fields, named by their code.
 */
export interface Cause {
  code: string;
  message: string;
}

export interface Attempt {
  at: number;
  outcome: Outcome;
  diagnosis: Cause[];
  server: ServerRef | null;
}

export interface ProductStatus {
  id: string;
  name: string;
  vendor: string;
  sku: string;
  addon_of: string | null;
  state: State;
  not_after: number | null;
  ends_at: number | null;
  days_left: number | null;
  license_id: string | null;
  kind: Kind | null;
  in_compliance: boolean | null;
  features: string[];
  notice: string | null;
  has_key: boolean;
  server: ServerRef | null;
  last_attempt: Attempt | null;
  next_attempt_at: number | null;
  clock_moved_back_by: number | null;
  verdict: ProductVerdict;
  /** A new key not accepted yet (never the key itself); the fields above are the key in effect's. */
  pending_key: PendingKey | null;
  line: string;
  /** What became of the pending key, worded by Rust (`ProductStatus::pending_key_note`). */
  pending_note: string | null;
  /**
   * The last accepted answer said Duplicate: this installation looks cloned or restored from
   * a snapshot (profile §9). Absent from a back end older than profile 1.1, as are the next.
   */
  duplicate?: boolean;
  /** The server moved this computer's seat from its previous hardware (profile §9). */
  moved_from_previous_hardware?: boolean;
  /** When the product was deactivated on this computer (state `deactivated`). */
  deactivated_at?: number | null;
  /** When the vendor issued the final release the product runs on (state `sunset`). */
  sunset_issued?: number | null;
  /** What the lifecycle adds to the line (looks cloned or restored, and what to do; moved), worded by Rust. */
  lifecycle_note?: string | null;
  /** The customer's own server the machine policy provisioned the product for, by name. */
  through?: string | null;
  /** "Through NAME (set up by your administrator)", worded by Rust; absent for the vendor's servers. */
  through_note?: string | null;
}

/** What `deactivate` did (COMMANDS.md): the engine's outcome word. */
export type DeactivateOutcome = 'released' | 'kept' | 'unanswered' | 'deactivated-here';

/** The answer of the `deactivate` command. */
export interface DeactivateView {
  outcome: DeactivateOutcome;
  /** The sentence to show, worded by Rust for the outcome. */
  message: string;
  /** The server's Notice, when it sent one (a kept activation says why with it). */
  notice: string | null;
  /** Whether the stored license key was removed too. */
  key_removed: boolean;
  /** The product as it now stands. */
  status: ProductStatus;
}

export interface PendingKey {
  since: number;
  last_try: Attempt | null;
}

/** The one verdict on a product, decided in Rust (lapwing-core's verdict.rs): shown, never recomputed. */
export type VerdictLevel = 'all-good' | 'working' | 'attention' | 'broken';

export interface ProductVerdict {
  level: VerdictLevel;
  reason: string;
  message: string;
}

/** What "Activate all" did, counted from each attempt's outcome. */
export interface BatchResult {
  products: ProductStatus[];
  result: {
    attempted: number;
    activated: number;
    not_sent: number;
    failed: number;
    not_sent_why: string[];
    message: string;
  };
}

export type KeyErrorCode = 'empty' | 'length' | 'character' | 'padding' | 'check' | 'all-zero';

export interface KeyCheck {
  valid: boolean;
  normalized: string;
  display: string | null;
  error: null | {
    code: KeyErrorCode;
    message: string;
    position: number | null;
    found: number | null;
  };
  suggestions: string[];
}

export interface Candidate {
  address: string;
  host: string;
  source: Source;
  detail: string;
}

export interface Skipped {
  source: Source;
  subject: string;
  reason: string;
}

export interface ServerInfo {
  product: string | null;
  product_override: string | null;
  global_override: string | null;
  policy_server: string | null;
  policy_locked: boolean;
  /** The customer's own server the machine policy provisioned the product for, by name. */
  through?: string | null;
  candidates: Candidate[];
  skipped: Skipped[];
}

export type Level = 'ok' | 'info' | 'warning' | 'problem';

export interface Check {
  subject: string;
  level: Level;
  message: string;
}

export interface About {
  version: string;
  data_dir: string;
  state_file: string;
  policy_file: string;
  products_dirs: string[];
  log: string;
  licenses: { name: string; version: string; license: string }[];
}

export interface Settings {
  autostart: boolean;
}

/** Whether the tray icon can be seen; when not, why, and the sentence to show. */
export interface TrayHost {
  present: boolean;
  reason: 'no-session-bus' | 'no-watcher' | 'no-host-registered' | null;
  message: string | null;
}

export type ErrorKind =
  | 'unknown-product'
  | 'bad-key'
  | 'bad-server'
  | 'policy-locked'
  | 'keyring'
  | 'invalid-input'
  | 'engine';

export type ViewName = 'products' | 'key' | 'server' | 'diagnostics' | 'about' | 'settings';
