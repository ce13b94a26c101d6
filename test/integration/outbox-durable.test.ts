import { unlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createCommitQueue } from '../../gateway/outbox/commit-queue.js';
import { openOutbox, type DeadLetterRow, type NewRow, type Outbox } from '../../gateway/outbox/sqlite-outbox.js';
import { outboxFiles } from '../harness/outbox-files.js';

const files = outboxFiles('reefer-durable-');

function row(containerId: string, measurementMs: number): NewRow {
  return { containerId, measurementMs, receivedMs: measurementMs, lane: 'routine', encode: (seq) => Buffer.from([1, seq % 256]) };
}

function deadLetter(n: number): DeadLetterRow {
  return { receivedMs: n, transport: 'mqtt', source: 'reefer/C1/telemetry', containerId: 'C1', reason: 'malformed-json', detail: `bad ${n}`, payload: Buffer.from('x') };
}

describe('commits that sync later', () => {
  it('hand their rows and dead letters to the uplink only once they are on disk', async () => {
    const outbox = files.track(openOutbox({ path: files.path(), sync: 'full' }));
    outbox.append([row('C1', 1), row('C2', 1)], [deadLetter(1)], [], { syncLater: true });
    expect(outbox.peek(10)).toEqual([]);
    expect(outbox.deadLetters(10)).toEqual([]);
    expect(outbox.depth().count).toBe(2);
    await outbox.durable();
    expect(outbox.peek(10).map((r) => r.seq)).toEqual([1, 2]);
    expect(outbox.deadLetters(10).map((d) => d.detail)).toEqual(['bad 1']);

    // A commit that syncs itself puts every earlier one on disk with it.
    outbox.append([row('C1', 2)], [deadLetter(2)], [], { syncLater: true });
    outbox.append([row('C1', 3)], []);
    expect(outbox.peek(10).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(outbox.deadLetters(10).map((d) => d.detail)).toEqual(['bad 1', 'bad 2']);
  });

  it('report a sync that cannot be made as a rejection, keeping the rows from the uplink', async () => {
    const path = files.path();
    const outbox = files.track(openOutbox({ path, sync: 'full' }));
    outbox.append([row('C1', 1)], [], [], { syncLater: true });
    // The log file can no longer be opened for its sync.
    unlinkSync(`${path}-wal`);
    await expect(outbox.durable()).rejects.toThrow(/ENOENT/);
    await expect(outbox.durable()).rejects.toThrow(/ENOENT/);
    expect(outbox.peek(10)).toEqual([]);
  });

  it('are on disk at once when the outbox syncs only at checkpoints', () => {
    const outbox = files.track(openOutbox({ path: files.path(), sync: 'normal' }));
    outbox.append([row('C1', 1)], [deadLetter(1)], [], { syncLater: true });
    expect(outbox.peek(10).map((r) => r.seq)).toEqual([1]);
    expect(outbox.deadLetters(10)).toHaveLength(1);
  });

  it('remove what a Kafka transaction delivered, rows, dead letters and command statuses together', async () => {
    const path = files.path();
    const outbox = openOutbox({ path, sync: 'full' });
    outbox.append([row('C1', 1), row('C1', 2), row('C1', 3)], [deadLetter(1), deadLetter(2)]);
    outbox.storeCommand(
      { commandId: 'k1', containerId: 'C1', state: 'stored', expiresMs: 10, receivedMs: 1, value: Buffer.from('{}') },
      { containerId: 'C1', timeMs: 1, value: Buffer.from('stored') },
    );
    const [status] = outbox.commandStatuses(10);
    const [firstDead] = outbox.deadLetters(10);
    expect(outbox.removeDelivered({ ranges: [[1, 2]], deadLetters: [firstDead!.id, firstDead!.id], commandStatuses: [status!.id, status!.id] })).toBe(2);
    await outbox.durable();
    outbox.close();
    const reopened = files.track(openOutbox({ path, sync: 'full' }));
    expect(reopened.peek(10).map((r) => r.seq)).toEqual([3]);
    expect(reopened.deadLetters(10).map((d) => d.detail)).toEqual(['bad 2']);
    expect(reopened.commandStatuses(10)).toEqual([]);
    expect(reopened.depth().count).toBe(1);
  });

  it('survive a reopen, every row handed out again', async () => {
    const path = files.path();
    const outbox = openOutbox({ path, sync: 'full' });
    outbox.append([row('C1', 1)], [], [], { syncLater: true });
    await outbox.durable();
    outbox.close();
    const reopened = files.track(openOutbox({ path, sync: 'full' }));
    expect(reopened.peek(10).map((r) => r.seq)).toEqual([1]);
  });
});

describe('group commit', () => {
  /** The real outbox, with each durable() held until the test lets it go. */
  function heldOutbox(outbox: Outbox): { outbox: Outbox; release(index: number): void; held(): number } {
    const gates: (() => void)[] = [];
    const held: Outbox = Object.create(outbox) as Outbox;
    held.durable = () =>
      new Promise<void>((resolve, reject) => {
        gates.push(() => outbox.durable().then(resolve, reject));
      });
    return { outbox: held, release: (index) => gates[index]!(), held: () => gates.length };
  }

  it('acknowledges a reading once its commit is on disk, and batches in the order they were committed', async () => {
    const real = files.track(openOutbox({ path: files.path(), sync: 'full' }));
    const { outbox, release, held } = heldOutbox(real);
    const queue = createCommitQueue({ flushIntervalMs: 1000, maxBatch: 1000 }, { outbox });
    const committed: number[] = [];
    queue.onCommit((n) => committed.push(n));
    const acks: string[] = [];
    const first = queue.addReading(row('C1', 1)).then((seq) => acks.push(`first ${seq}`));
    queue.flush();
    const second = queue.addReading(row('C2', 1)).then((seq) => acks.push(`second ${seq}`));
    queue.flush();
    expect(held()).toBe(2);
    // Both committed, neither on disk yet: nothing acknowledged, nothing for the uplink.
    await new Promise((r) => setTimeout(r, 20));
    expect(acks).toEqual([]);
    expect(real.peek(10)).toEqual([]);
    // The second batch reaches the disk first; it still waits for the first.
    release(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(acks).toEqual([]);
    release(0);
    await Promise.all([first, second]);
    expect(acks).toEqual(['first 1', 'second 2']);
    expect(committed).toEqual([1, 1]);
    expect(real.peek(10).map((r) => r.seq)).toEqual([1, 2]);
  });

  it('fails the readings of a batch the disk refused, and acknowledges the next', async () => {
    const real = files.track(openOutbox({ path: files.path(), sync: 'full' }));
    let refuse = true;
    const outbox: Outbox = Object.create(real) as Outbox;
    outbox.durable = () => (refuse ? Promise.reject(new Error('EIO: i/o error, fdatasync')) : real.durable());
    const queue = createCommitQueue({ flushIntervalMs: 1000, maxBatch: 1000 }, { outbox });
    const failed = queue.addReading(row('C1', 1));
    queue.flush();
    await expect(failed).rejects.toThrow('EIO');
    refuse = false;
    const next = queue.addReading(row('C1', 2));
    queue.flush();
    await expect(next).resolves.toBe(2);
  });
});
