import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeTelemetry, encodeTelemetry } from '../../schemas/avro.js';
import { openOutbox, type NewRow } from '../../gateway/outbox/sqlite-outbox.js';
import { encodeStoredReading, storedTelemetryBody } from '../../gateway/outbox/stored-reading.js';
import { outboxFiles } from '../harness/outbox-files.js';
import { sampleReading } from '../harness/reference-reading.js';

const files = outboxFiles('reefer-layout-');
const tempPath = files.path;
const track = files.track;

const T0 = Date.UTC(2026, 10, 1);

function row(containerId: string, measurementMs: number, temperature = 4.1): NewRow {
  const reading = sampleReading({ container_id: containerId, measurement_time: measurementMs, temperature });
  return { containerId, measurementMs, receivedMs: measurementMs + 25, lane: 'routine', encode: () => encodeStoredReading(reading, 'mqtt', measurementMs + 25) };
}

describe('the outbox layout', () => {
  it('holds a simulated fleet backlog in at most 80 bytes a reading on disk, dedup keys included', () => {
    const path = tempPath();
    const outbox = track(openOutbox({ path, sync: 'normal' }));
    // 2,000 reefers reading every minute for 10 minutes, with the simulator's two-decimal values.
    let n = 0;
    for (let minute = 0; minute < 10; minute += 1) {
      const batch: NewRow[] = [];
      for (let c = 0; c < 2000; c += 1) {
        n += 1;
        batch.push(row(`MSCU${String(1000000 + c)}`, T0 + minute * 60_000 + c * 7, Math.round((4 + ((n * 37) % 200) / 100) * 100) / 100));
      }
      outbox.append(batch, []);
    }
    outbox.checkpoint();
    const bytesPerReading = statSync(path).size / outbox.depth().count;
    expect(outbox.depth().count).toBe(20_000);
    expect(bytesPerReading).toBeLessThanOrEqual(80);
    // And each reads back as the record it was.
    const [first] = outbox.peek(1);
    const t = decodeTelemetry(storedTelemetryBody(first!, 'gw-1'));
    expect(t).toMatchObject({ container_id: 'MSCU1000000', measurement_time: T0, seq: 1, gateway_id: 'gw-1', received_time: T0 + 25 });
  });

  it('moves an outbox written with container ids in every row to numbered containers, keeping rows, values and dedup', () => {
    const path = tempPath();
    const legacy = new Database(path);
    legacy.exec(`
      CREATE TABLE outbox (seq INTEGER PRIMARY KEY, container_id TEXT NOT NULL, received_ms INTEGER NOT NULL,
        lane INTEGER NOT NULL, thinned INTEGER NOT NULL DEFAULT 0, value BLOB NOT NULL);
      CREATE TABLE seen (container_id TEXT NOT NULL, measurement_ms INTEGER NOT NULL, PRIMARY KEY (container_id, measurement_ms)) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
    `);
    const avroBodies = new Map<number, Buffer>();
    const insert = legacy.prepare('INSERT INTO outbox (seq, container_id, received_ms, lane, thinned, value) VALUES (?, ?, ?, ?, ?, ?)');
    const seen = legacy.prepare('INSERT INTO seen VALUES (?, ?)');
    for (let seq = 1; seq <= 6; seq += 1) {
      const containerId = seq % 2 === 0 ? 'C2' : 'C1';
      const body = encodeTelemetry({ ...sampleReading({ container_id: containerId, measurement_time: T0 + seq }), gateway_id: 'gw-old', seq, transport: 'serial', received_time: T0 + seq });
      avroBodies.set(seq, body);
      insert.run(seq, containerId, T0 + seq, seq === 6 ? 1 : 0, seq === 5 ? 1 : 0, body);
      seen.run(containerId, T0 + seq);
    }
    // Delivered already: only its dedup key is left.
    seen.run('C3', T0);
    legacy.prepare("INSERT INTO meta VALUES ('last_seq', 7)").run();
    legacy.close();

    const outbox = track(openOutbox({ path, sync: 'full' }));
    const rows = outbox.peek(100);
    expect(rows.map((r) => [r.seq, r.containerId, r.receivedMs, r.lane])).toEqual([
      [1, 'C1', T0 + 1, 'routine'],
      [2, 'C2', T0 + 2, 'routine'],
      [3, 'C1', T0 + 3, 'routine'],
      [4, 'C2', T0 + 4, 'routine'],
      [5, 'C1', T0 + 5, 'routine'],
      [6, 'C2', T0 + 6, 'alarm'],
    ]);
    // Old rows go to Kafka as the Avro bodies they were, with the gateway id they were made durable under.
    for (const r of rows) expect(storedTelemetryBody(r, 'gw-new').equals(avroBodies.get(r.seq)!)).toBe(true);
    // Resends of readings seen before the move are still recognised; new readings get new numbers.
    const result = outbox.append([row('C1', T0 + 1), row('C3', T0), row('C3', T0 + 1), row('C4', T0)], []);
    expect(result.seqs).toEqual([null, null, 8, 9]);
    expect(outbox.peek(2, { minSeq: 8 }).map((r) => r.containerId)).toEqual(['C3', 'C4']);
    // The routine row already thinned is not thinned again: the flag moved with it.
    const report = outbox.shed({ maxBytes: 0, maxAgeMs: 1e12, keepEvery: 2, nowMs: T0, protect: [] });
    expect(report.thinned).toBeGreaterThan(0);
    expect(outbox.ledger().every((e) => ['C1', 'C2', 'C3', 'C4'].includes(e.containerId))).toBe(true);
  });

  it('numbers no container for a write that was rolled back', () => {
    const outbox = track(openOutbox({ path: tempPath(), sync: 'full' }));
    const failing: NewRow = { ...row('C9', T0 + 1), encode: () => { throw new Error('disk said no'); } };
    expect(() => outbox.append([row('C8', T0), failing], [])).toThrow('disk said no');
    expect(outbox.depth().count).toBe(0);
    expect(outbox.append([row('C8', T0), row('C9', T0 + 1)], []).seqs).toEqual([1, 2]);
    expect(outbox.peek(10).map((r) => r.containerId)).toEqual(['C8', 'C9']);
  });

  it('refuses another gateway id while readings made durable under the first one wait', () => {
    const path = tempPath();
    const first = openOutbox({ path, sync: 'full' });
    first.claimGateway('gw-a');
    first.append([row('C1', T0)], []);
    first.close();

    const second = track(openOutbox({ path, sync: 'full' }));
    second.claimGateway('gw-a');
    expect(() => second.claimGateway('gw-b')).toThrow(/gatewayId: expected "gw-a" while .*outbox\.db holds 1 readings made durable under it, got "gw-b"/);
    second.remove([1]);
    second.claimGateway('gw-b');
    expect(() => second.claimGateway('gw-b')).not.toThrow();
  });
});
