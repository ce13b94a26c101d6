import { describe, expect, it } from 'vitest';
import { createCommitQueue } from '../../gateway/outbox/commit-queue.js';
import { openOutbox, type Lane, type NewRow, type Outbox } from '../../gateway/outbox/sqlite-outbox.js';
import { outboxFiles } from '../harness/outbox-files.js';

const files = outboxFiles('reefer-outbox-');

function tempOutbox(): { outbox: Outbox; path: string } {
  const path = files.path();
  return { outbox: files.track(openOutbox({ path, sync: 'full' })), path };
}

function row(containerId: string, measurementMs: number, lane: Lane = 'routine', receivedMs = 1000, size = 100): NewRow {
  return { containerId, measurementMs, receivedMs, lane, encode: (seq) => Buffer.alloc(size, seq % 256) };
}

describe('SQLite outbox', () => {
  it('assigns increasing sequence numbers that are never reused, even after rows are deleted and the file reopened', () => {
    const { outbox, path } = tempOutbox();
    const { seqs } = outbox.append([row('C1', 1), row('C1', 2)], []);
    expect(seqs).toEqual([1, 2]);
    outbox.remove([1, 2]);
    outbox.close();
    const reopened = openOutbox({ path, sync: 'full' });
    files.track(reopened);
    expect(reopened.append([row('C1', 3)], []).seqs).toEqual([3]);
    expect(reopened.peek(10).map((r) => r.seq)).toEqual([3]);
  });

  it('stores a reading resent with the same container id and measurement time once', () => {
    const { outbox } = tempOutbox();
    expect(outbox.append([row('C1', 1), row('C1', 1), row('C2', 1)], []).seqs).toEqual([1, null, 2]);
    expect(outbox.append([row('C1', 1)], []).seqs).toEqual([null]);
    outbox.remove([1]);
    // Delivered and deleted, still recognised within the dedup window.
    expect(outbox.append([row('C1', 1)], []).seqs).toEqual([null]);
    expect(outbox.pruneSeen(2)).toBe(2);
    expect(outbox.append([row('C1', 1)], []).seqs).toEqual([3]);
  });

  it('peeks within sequence bounds and removes committed ranges', () => {
    const { outbox } = tempOutbox();
    outbox.append(Array.from({ length: 10 }, (_, i) => row('C1', i)), []);
    expect(outbox.peek(3, { minSeq: 5 }).map((r) => r.seq)).toEqual([5, 6, 7]);
    expect(outbox.peek(3, { maxSeq: 2 }).map((r) => r.seq)).toEqual([1, 2]);
    expect(outbox.removeRanges([[1, 3], [8, 20]])).toBe(6);
    expect(outbox.peek(100).map((r) => r.seq)).toEqual([4, 5, 6, 7]);
    expect(outbox.depth().count).toBe(4);
  });

  it('keeps a stable epoch per database file', () => {
    const { outbox, path } = tempOutbox();
    const epoch = outbox.epoch();
    outbox.close();
    const reopened = openOutbox({ path, sync: 'normal' });
    files.track(reopened);
    expect(reopened.epoch()).toBe(epoch);
    const other = tempOutbox().outbox;
    expect(other.epoch()).not.toBe(epoch);
  });

  it('over its byte cap thins routine readings per container, then drops routine, and keeps alarms; the ledger counts each', () => {
    const { outbox } = tempOutbox();
    const rows: NewRow[] = [];
    for (let i = 0; i < 100; i++) {
      rows.push(row('C1', i, 'routine'));
      rows.push(row('C2', i, 'routine'));
      if (i % 10 === 0) rows.push(row('C3', i, 'alarm'));
    }
    outbox.append(rows, []);
    const before = outbox.depth();
    expect(before).toMatchObject({ count: 210, alarms: 10 });
    const perRow = before.bytes / before.count;

    // Room for about 80 rows: thinning halves the 200 routine rows to 100, then the oldest are dropped.
    const report = outbox.shed({ maxBytes: Math.floor(perRow * 80), maxAgeMs: 1e12, keepEvery: 2, nowMs: 2000, protect: [] });
    expect(report.thinned).toBe(100);
    expect(report.droppedAlarm).toBe(0);
    expect(report.droppedRoutine).toBe(30);
    const after = outbox.depth();
    expect(after.alarms).toBe(10);
    expect(after.count).toBe(80);
    const left = outbox.peek(1000);
    expect(left.filter((r) => r.lane === 'alarm')).toHaveLength(10);
    // The routine readings left are the newest, every second one of each container.
    const c1 = left.filter((r) => r.containerId === 'C1').map((r) => r.seq);
    expect(c1.length).toBe(35);

    const ledger = outbox.ledger();
    const total = (reason: string) => ledger.filter((e) => e.reason === reason).reduce((n, e) => n + e.count, 0);
    expect(total('thinned')).toBe(report.thinned);
    expect(total('shed-routine')).toBe(report.droppedRoutine);
    expect(total('shed-alarm')).toBe(0);
    expect(ledger.filter((e) => e.reason === 'thinned').map((e) => e.containerId).sort()).toEqual(['C1', 'C2']);
  });

  it('drops alarms only once no routine reading is left, oldest first', () => {
    const { outbox } = tempOutbox();
    outbox.append([row('C1', 1, 'alarm'), row('C1', 2, 'routine'), row('C1', 3, 'alarm'), row('C1', 4, 'alarm')], []);
    const perRow = outbox.depth().bytes / 4;
    const report = outbox.shed({ maxBytes: Math.floor(perRow * 2), maxAgeMs: 1e12, keepEvery: 2, nowMs: 2000, protect: [] });
    expect(report).toEqual({ expired: 0, thinned: 0, droppedRoutine: 1, droppedAlarm: 1 });
    expect(outbox.peek(10).map((r) => r.seq)).toEqual([3, 4]);
  });

  it('never sheds rows the uplink is sending', () => {
    const { outbox } = tempOutbox();
    outbox.append(Array.from({ length: 10 }, (_, i) => row('C1', i)), []);
    const perRow = outbox.depth().bytes / 10;
    outbox.shed({ maxBytes: Math.floor(perRow * 2), maxAgeMs: 1e12, keepEvery: 2, nowMs: 2000, protect: [[1, 5]] });
    expect(outbox.peek(10).map((r) => r.seq).slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
  });

  it('expires readings older than the age cap and counts them', () => {
    const { outbox } = tempOutbox();
    outbox.append([row('C1', 1, 'alarm', 1000), row('C1', 2, 'routine', 5000)], []);
    const report = outbox.shed({ maxBytes: 1e9, maxAgeMs: 3000, keepEvery: 2, nowMs: 6000, protect: [] });
    expect(report.expired).toBe(1);
    expect(outbox.peek(10).map((r) => r.seq)).toEqual([2]);
    expect(outbox.ledger()).toEqual([{ containerId: 'C1', reason: 'expired', count: 1 }]);
  });

  it('keeps dead letters and ledger counts committed with readings', () => {
    const { outbox } = tempOutbox();
    outbox.append(
      [row('C1', 1)],
      [{ receivedMs: 1, transport: 'mqtt', source: 'reefer/C9/telemetry', containerId: 'C9', reason: 'wrong-type', detail: 'temperature "x"', payload: Buffer.from('x') }],
      [{ containerId: 'C9', reason: 'wrong-type', count: 1 }],
    );
    expect(outbox.deadLetterCount()).toBe(1);
    expect(outbox.deadLetters(1)[0]).toMatchObject({ reason: 'wrong-type', containerId: 'C9' });
    expect(outbox.ledger()).toEqual([{ containerId: 'C9', reason: 'wrong-type', count: 1 }]);
  });
});

describe('group commit', () => {
  it('commits readings arriving together in one transaction and settles each with its sequence number', async () => {
    const { outbox } = tempOutbox();
    const queue = createCommitQueue({ flushIntervalMs: 5, maxBatch: 1000 }, { outbox });
    const commits: number[] = [];
    queue.onCommit((n) => commits.push(n));
    const seqs = await Promise.all(Array.from({ length: 50 }, (_, i) => queue.addReading(row('C1', i))));
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(commits).toEqual([50]);
    queue.close();
  });

  it('fails every entry of a batch whose commit failed, so no device is acknowledged for it', async () => {
    const { outbox } = tempOutbox();
    const queue = createCommitQueue({ flushIntervalMs: 1, maxBatch: 10 }, { outbox });
    const bad: NewRow = { ...row('C1', 1), encode: () => { throw new Error('boom'); } };
    const results = await Promise.allSettled([queue.addReading(row('C1', 0)), queue.addReading(bad)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(outbox.depth().count).toBe(0);
    queue.close();
  });
});
