import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openOutbox, type Lane, type NewRow, type Outbox } from '../../gateway/outbox/sqlite-outbox.js';

const dirs: string[] = [];
const open: Outbox[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function row(containerId: string, measurementMs: number, lane: Lane, size: number): NewRow {
  return { containerId, measurementMs, receivedMs: 1000 + measurementMs, lane, encode: (seq) => Buffer.alloc(size, seq % 256) };
}

describe('outbox depth after deliveries', () => {
  it('counts readings, bytes and alarms removed by range exactly as a fresh count of the file does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reefer-outbox-accounting-'));
    dirs.push(dir);
    const path = join(dir, 'outbox.db');
    const outbox = openOutbox({ path, sync: 'full' });
    open.push(outbox);
    // Values of different sizes and both lanes, so a range's bytes and alarms are not a multiple of its count.
    const rows = Array.from({ length: 60 }, (_, i) => row(`C${i % 7}`, i, i % 5 === 0 ? 'alarm' : 'routine', 50 + ((i * 37) % 90)));
    outbox.append(rows, []);
    const before = outbox.depth();
    expect(before.count).toBe(60);
    expect(before.alarms).toBe(12);

    // Ranges that overlap nothing, part of the rows, and rows already gone.
    expect(outbox.removeRanges([[5, 17], [100, 120], [30, 44]])).toBe(28);
    expect(outbox.removeRanges([[10, 12], [40, 50]])).toBe(6);
    const after = outbox.depth();
    outbox.close();
    open.pop();

    const recounted = openOutbox({ path, sync: 'full' });
    open.push(recounted);
    const fresh = recounted.depth();
    expect(after).toEqual(fresh);
    expect(fresh.count).toBe(26);
    expect(fresh.bytes).toBeLessThan(before.bytes);
    expect(recounted.peek(100).map((r) => r.seq)).toEqual([1, 2, 3, 4, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60]);
  });
});
