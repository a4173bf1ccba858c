// The one door to Rust. Every view calls these functions and nothing else; tests swap the
// backend with `setBackend` (unit) or mock `window.__TAURI_INTERNALS__` (browser).
import { invoke as tauriInvoke } from '@tauri-apps/api/core';
import { listen as tauriListen } from '@tauri-apps/api/event';
import type {
  About,
  BatchResult,
  Check,
  DeactivateView,
  ErrorKind,
  KeyCheck,
  ProductStatus,
  ServerInfo,
  Settings,
  TrayHost,
  ViewName,
} from './types';

export interface Backend {
  invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  listen<T>(event: string, handler: (payload: T) => void): Promise<() => void>;
}

const tauriBackend: Backend = {
  invoke: (cmd, args) => tauriInvoke(cmd, args),
  listen: (event, handler) => tauriListen(event, (e) => handler(e.payload as never)),
};

let backend: Backend = tauriBackend;

export function setBackend(b: Backend): void {
  backend = b;
}

/** A rejected command, as COMMANDS.md describes it: `{ kind, message }`. */
export class IpcError extends Error {
  constructor(
    readonly kind: ErrorKind | 'ipc',
    message: string,
  ) {
    super(message);
    this.name = 'IpcError';
  }
}

/** Turns whatever a rejected invoke gives into an IpcError with a sentence for a person. */
export function toIpcError(e: unknown): IpcError {
  if (e instanceof IpcError) return e;
  if (e && typeof e === 'object' && 'message' in e) {
    const o = e as { kind?: unknown; message?: unknown };
    const kind = typeof o.kind === 'string' ? (o.kind as ErrorKind) : 'ipc';
    return new IpcError(kind, String(o.message));
  }
  if (typeof e === 'string' && e) return new IpcError('ipc', e);
  return new IpcError('ipc', 'Lapwing did not answer. Try again; if it persists, restart Lapwing.');
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await backend.invoke<T>(cmd, args);
  } catch (e) {
    throw toIpcError(e);
  }
}

export const STATUS_CHANGED = 'status-changed';
/** The stored data changed from outside the window: read again what the status lacks. */
export const STORED_CHANGED = 'stored-changed';

export const ipc = {
  status: () => call<ProductStatus[]>('status'),
  activate: (id: string) => call<ProductStatus>('activate', { id }),
  activateAll: () => call<BatchResult>('activate_all'),
  checkKey: (text: string) => call<KeyCheck>('check_key', { text }),
  setKey: (id: string, key: string) => call<ProductStatus>('set_key', { id, key }),
  keyMasked: (id: string) => call<string | null>('key_masked', { id }),
  revealKey: (id: string) => call<string | null>('reveal_key', { id }),
  removeKey: (id: string) => call<ProductStatus>('remove_key', { id }),
  dropPendingKey: (id: string) => call<ProductStatus>('drop_pending_key', { id }),
  deactivate: (id: string, removeKey: boolean, anyway: boolean) =>
    call<DeactivateView>('deactivate', { id, remove_key: removeKey, anyway }),
  serverInfo: (product: string | null) => call<ServerInfo>('server_info', { product }),
  checkServer: (text: string) => call<null>('check_server', { text }),
  setServer: (product: string | null, server: string | null) =>
    call<ServerInfo>('set_server', { product, server }),
  doctor: (product: string | null) => call<Check[]>('doctor', { product }),
  doctorReport: (product: string | null) => call<string>('doctor_report', { product }),
  about: () => call<About>('about'),
  settings: () => call<Settings>('settings'),
  setAutostart: (enabled: boolean) => call<Settings>('set_autostart', { enabled }),
  openWindow: (view: ViewName, product: string | null) =>
    call<null>('open_window', { view, product }),
  closeWindow: () => call<null>('close_window'),
  trayHost: () => call<TrayHost>('tray_host'),
  onStatusChanged: (handler: (products: ProductStatus[]) => void) =>
    backend.listen<ProductStatus[]>(STATUS_CHANGED, handler),
  onStoredChanged: (handler: () => void) =>
    backend.listen<null>(STORED_CHANGED, () => handler()),
};
