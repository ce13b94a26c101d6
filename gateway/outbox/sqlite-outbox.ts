/**
 * The outbox: the only file that imports better-sqlite3. Readings wait here, durable, from the
 * moment a device is acknowledged until Kafka has acknowledged them. Rejected input waits in the
 * dead-letter table beside them.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `full`: the WAL is fsynced at every commit, so a committed reading survives a power cut.
 * `normal`: it is fsynced only at checkpoints, so a committed reading survives a crash of the
 * process but the last commits may be lost on a power cut; faster on slow SD cards.
 */
export type SyncPolicy = 'full' | 'normal';

export interface OutboxOptions {
  path: string;
  sync: SyncPolicy;
}

export interface NewRow {
  containerId: string;
  receivedMs: number;
  /** Builds the stored value once the reading's sequence number is known. */
  encode(seq: number): Buffer;
}

export interface OutboxRow {
  seq: number;
  containerId: string;
  receivedMs: number;
  value: Buffer;
}

export interface DeadLetterRow {
  receivedMs: number;
  transport: string;
  source: string;
  reason: string;
  detail: string;
  payload: Buffer;
}

export interface OutboxDepth {
  count: number;
  bytes: number;
  /** Receive time of the oldest waiting reading, or null when empty. */
  oldestReceivedMs: number | null;
}

export interface Outbox {
  /** Commits the rows and dead letters in one transaction; returns the sequence numbers assigned. */
  append(rows: readonly NewRow[], deadLetters: readonly DeadLetterRow[]): number[];
  /** The oldest waiting rows, in sequence order. */
  peek(limit: number): OutboxRow[];
  /** Deletes rows Kafka has acknowledged. */
  remove(seqs: readonly number[]): void;
  depth(): OutboxDepth;
  deadLetters(limit: number): (DeadLetterRow & { id: number })[];
  deadLetterCount(): number;
  close(): void;
}

export function openOutbox(options: OutboxOptions): Outbox {
  mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
  db.exec(`
    CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY,
      container_id TEXT NOT NULL,
      received_ms INTEGER NOT NULL,
      value BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS dead_letter (
      id INTEGER PRIMARY KEY,
      received_ms INTEGER NOT NULL,
      transport TEXT NOT NULL,
      source TEXT NOT NULL,
      reason TEXT NOT NULL,
      detail TEXT NOT NULL,
      payload BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  `);

  const readLastSeq = db.prepare<[], { last: number | null }>(
    `SELECT max(coalesce((SELECT value FROM meta WHERE key = 'last_seq'), 0), coalesce((SELECT max(seq) FROM outbox), 0)) AS last`,
  );
  // Sequence numbers are never reused, even after their rows are deleted: (gateway, seq) names a
  // reading downstream for good.
  let lastSeq = readLastSeq.get()?.last ?? 0;

  const insertRow = db.prepare('INSERT INTO outbox (seq, container_id, received_ms, value) VALUES (?, ?, ?, ?)');
  const insertDead = db.prepare(
    'INSERT INTO dead_letter (received_ms, transport, source, reason, detail, payload) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const saveSeq = db.prepare(`INSERT INTO meta (key, value) VALUES ('last_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`);
  const selectRows = db.prepare<[number], { seq: number; container_id: string; received_ms: number; value: Buffer }>(
    'SELECT seq, container_id, received_ms, value FROM outbox ORDER BY seq LIMIT ?',
  );
  const deleteRow = db.prepare('DELETE FROM outbox WHERE seq = ?');
  const selectDepth = db.prepare<[], { count: number; bytes: number | null; oldest: number | null }>(
    'SELECT count(*) AS count, sum(length(value)) AS bytes, min(received_ms) AS oldest FROM outbox',
  );
  const selectDead = db.prepare<[number], DeadLetterRow & { id: number }>(
    'SELECT id, received_ms AS receivedMs, transport, source, reason, detail, payload FROM dead_letter ORDER BY id LIMIT ?',
  );
  const countDead = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dead_letter');

  const appendTx = db.transaction((rows: readonly NewRow[], deadLetters: readonly DeadLetterRow[]) => {
    const seqs: number[] = [];
    let seq = lastSeq;
    for (const row of rows) {
      seq += 1;
      insertRow.run(seq, row.containerId, row.receivedMs, row.encode(seq));
      seqs.push(seq);
    }
    for (const d of deadLetters) insertDead.run(d.receivedMs, d.transport, d.source, d.reason, d.detail, d.payload);
    if (rows.length > 0) saveSeq.run(seq);
    return seqs;
  });
  const removeTx = db.transaction((seqs: readonly number[]) => {
    for (const seq of seqs) deleteRow.run(seq);
  });

  let closed = false;
  return {
    append(rows, deadLetters) {
      const seqs = appendTx(rows, deadLetters);
      // Only advance once the transaction committed; a failed commit reuses nothing it did not write.
      if (seqs.length > 0) lastSeq = seqs[seqs.length - 1]!;
      return seqs;
    },
    peek(limit) {
      return selectRows.all(limit).map((r) => ({ seq: r.seq, containerId: r.container_id, receivedMs: r.received_ms, value: r.value }));
    },
    remove(seqs) {
      if (seqs.length > 0) removeTx(seqs);
    },
    depth() {
      const d = selectDepth.get();
      return { count: d?.count ?? 0, bytes: d?.bytes ?? 0, oldestReceivedMs: d?.oldest ?? null };
    },
    deadLetters(limit) {
      return selectDead.all(limit);
    },
    deadLetterCount() {
      return countDead.get()?.n ?? 0;
    },
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
