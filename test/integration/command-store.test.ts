import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openOutbox, type Outbox, type StoredCommand } from '../../gateway/outbox/sqlite-outbox.js';

let dir: string;
let outbox: Outbox | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'reefer-command-store-'));
});

afterEach(() => {
  outbox?.close();
  outbox = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const open = () => openOutbox({ path: join(dir, 'outbox.db'), sync: 'full' });

function command(commandId: string, fields: Partial<StoredCommand> = {}): StoredCommand {
  return { commandId, containerId: 'C01', state: 'stored', expiresMs: 10_000, receivedMs: 1000, value: Buffer.from(`{"commandId":"${commandId}"}`), ...fields };
}

const status = (text: string) => ({ containerId: 'C01', timeMs: 1, value: Buffer.from(text) });

describe('commands in the outbox database', () => {
  it('stores a command id once, with its status row in the same transaction, and keeps both across a reopen', () => {
    outbox = open();
    expect(outbox.storeCommand(command('a'), status('a stored'))).toBe(true);
    expect(outbox.storeCommand(command('a', { containerId: 'C02' }), status('a again'))).toBe(false);
    outbox.close();
    outbox = open();
    expect(outbox.pendingCommands('C01').map((c) => c.commandId)).toEqual(['a']);
    expect(outbox.pendingCommands('C02')).toEqual([]);
    expect(outbox.commandStatuses(10).map((s) => s.value.toString())).toEqual(['a stored']);
  });

  it('moves a command only from the state it is in, queuing one status row per move', () => {
    outbox = open();
    outbox.storeCommand(command('a'), status('stored'));
    expect(outbox.setCommandState('a', 'stored', 'applied', status('applied'))).toBe(true);
    // A late PUBACK finds the command applied already: no move, no status.
    expect(outbox.setCommandState('a', 'stored', 'delivered', status('delivered'))).toBe(false);
    expect(outbox.command('a')?.state).toBe('applied');
    expect(outbox.pendingCommandCount()).toBe(0);
    expect(outbox.commandStatuses(10).map((s) => s.value.toString())).toEqual(['stored', 'applied']);
  });

  it('lists undelivered commands past their expiry, and prunes finished ones past the retention only', () => {
    outbox = open();
    outbox.storeCommand(command('soon', { expiresMs: 2000 }), status('s'));
    outbox.storeCommand(command('later', { expiresMs: 9000 }), status('s'));
    outbox.storeCommand(command('sent', { expiresMs: 2000 }), status('s'));
    outbox.setCommandState('sent', 'stored', 'delivered', status('d'));
    expect(outbox.expiredCommands(5000).map((c) => c.commandId)).toEqual(['soon']);
    outbox.setCommandState('soon', 'stored', 'expired', status('e'));
    expect(outbox.pruneCommands(500)).toBe(0);
    expect(outbox.pruneCommands(2000)).toBe(1);
    expect(outbox.command('soon')).toBeNull();
    expect(outbox.command('later')?.state).toBe('stored');
  });

  it('never reuses a status row id, even after the table was emptied, so a progress marker cannot name a newer row', () => {
    outbox = open();
    outbox.storeCommand(command('a'), status('1'));
    outbox.storeCommand(command('b'), status('2'));
    const sent = outbox.commandStatuses(10);
    outbox.removeCommandStatuses([sent[0]!.id, sent[1]!.id]);
    outbox.close();
    outbox = open();
    outbox.storeCommand(command('c'), status('3'));
    const [next] = outbox.commandStatuses(10);
    expect(next!.id).toBeGreaterThan(sent[1]!.id);
  });
});
