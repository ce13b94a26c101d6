import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openOutbox, type DeadLetterRow } from '../../gateway/outbox/sqlite-outbox.js';
import { outboxFiles } from '../harness/outbox-files.js';

const files = outboxFiles('reefer-dead-ids-');
const tempPath = files.path;

function deadLetter(n: number): DeadLetterRow {
  return { receivedMs: n, transport: 'mqtt', source: 'reefer/C1/telemetry', containerId: 'C1', reason: 'malformed-json', detail: `bad ${n}`, payload: Buffer.from(`x${n}`) };
}

describe('dead-letter ids in the outbox', () => {
  // The uplink's progress marker names committed dead letters by id range, and a recovery deletes that
  // range: an id handed out again would make it delete a dead letter never sent.
  it('are never handed out again once the table was emptied, even across a reopen', () => {
    const path = tempPath();
    const outbox = openOutbox({ path, sync: 'full' });
    outbox.append([], [deadLetter(1), deadLetter(2)]);
    const first = outbox.deadLetters(10).map((d) => d.id);
    outbox.removeDeadLetters([first[0]!, first[first.length - 1]!]);
    expect(outbox.deadLetterCount()).toBe(0);
    outbox.close();
    const reopened = openOutbox({ path, sync: 'full' });
    files.track(reopened);
    reopened.append([], [deadLetter(3)]);
    const [next] = reopened.deadLetters(10);
    expect(next!.id).toBeGreaterThan(Math.max(...first));
    // A recovery applying the old marker's range leaves the new dead letter alone.
    reopened.removeDeadLetters([first[0]!, first[first.length - 1]!]);
    expect(reopened.deadLetterCount()).toBe(1);
  });

  it('migrates an outbox whose dead-letter table predates never-reused ids, keeping its dead letters', () => {
    const path = tempPath();
    const legacy = new Database(path);
    legacy.exec(`CREATE TABLE dead_letter (
      id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, transport TEXT NOT NULL, source TEXT NOT NULL,
      container_id TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL, payload BLOB NOT NULL)`);
    legacy.prepare('INSERT INTO dead_letter VALUES (7, 1, ?, ?, ?, ?, ?, ?)').run('mqtt', 'reefer/C1/telemetry', 'C1', 'malformed-json', 'kept', Buffer.from('k'));
    legacy.close();
    const outbox = openOutbox({ path, sync: 'full', maxDeadLetters: 5 });
    files.track(outbox);
    expect(outbox.deadLetters(10).map((d) => [d.id, d.detail])).toEqual([[7, 'kept']]);
    outbox.removeDeadLetters([7, 7]);
    outbox.append([], [deadLetter(1)]);
    const [fresh] = outbox.deadLetters(10);
    expect(fresh!.id).toBeGreaterThan(7);
    // The cap counts dead letters, whatever their ids: the first four after a jump are all kept.
    outbox.append([], [deadLetter(2), deadLetter(3), deadLetter(4)]);
    expect(outbox.deadLetterCount()).toBe(4);
  });
});
