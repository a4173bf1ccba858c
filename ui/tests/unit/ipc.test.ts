import { describe, expect, it } from 'vitest';
import { ipc, IpcError, setBackend, toIpcError } from '../../src/ipc';

describe('ipc', () => {
  it('passes the argument names of COMMANDS.md', async () => {
    const seen: [string, unknown][] = [];
    setBackend({
      invoke: async <T>(cmd: string, args?: Record<string, unknown>) => {
        seen.push([cmd, args]);
        return null as T;
      },
      listen: async () => () => {},
    });
    await ipc.activate('a');
    await ipc.checkKey('K');
    await ipc.setKey('a', 'K');
    await ipc.serverInfo(null);
    await ipc.setServer('a', null);
    await ipc.doctorReport(null);
    await ipc.setAutostart(true);
    await ipc.openWindow('key', 'a');
    await ipc.activateAll();
    expect(seen).toEqual([
      ['activate', { id: 'a' }],
      ['check_key', { text: 'K' }],
      ['set_key', { id: 'a', key: 'K' }],
      ['server_info', { product: null }],
      ['set_server', { product: 'a', server: null }],
      ['doctor_report', { product: null }],
      ['set_autostart', { enabled: true }],
      ['open_window', { view: 'key', product: 'a' }],
      ['activate_all', undefined],
    ]);
  });

  it('turns rejections into IpcError with a sentence', async () => {
    setBackend({
      invoke: async () => {
        throw { kind: 'bad-server', message: 'Expected HOST:PORT.' };
      },
      listen: async () => () => {},
    });
    await expect(ipc.checkServer('x')).rejects.toMatchObject({ kind: 'bad-server', message: 'Expected HOST:PORT.' });
    expect(toIpcError('command status not found')).toMatchObject({ kind: 'ipc', message: 'command status not found' });
    expect(toIpcError(undefined).message).toMatch(/did not answer/);
    expect(toIpcError(new IpcError('keyring', 'Locked.'))).toBeInstanceOf(IpcError);
  });
});
