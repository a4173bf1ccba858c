// What the Rust code answers for the inputs the browser tests use (key and server checks,
// masked keys, status lines, the Server window's discovery view), recorded by
// src-tauri/tests/ui_recordings.rs. That test fails
// when the file no longer matches the code; re-record with
// `LAPWING_RECORD=1 cargo test -p lapwing --test ui_recordings`.
import { readFileSync } from 'node:fs';

export const recorded = JSON.parse(readFileSync(new URL('./recorded/commands.json', import.meta.url), 'utf8'));

/** The keys the tests type, paste and store, by their job (see `Keys` in the recorder). */
export const keys = recorded.keys;
