/**
 * The outbox: the only file that imports better-sqlite3. Readings wait here, durable, from the
 * moment a device is acknowledged until Kafka has acknowledged them. Beside them: rejected input
 * (dead letters), the readings already seen (so a resent reading is not stored twice), and the loss
 * ledger (every reading dropped, expired or rejected, per container and reason), and the schema ids
 * a registry handed out.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { closeSync, fdatasync, fstatSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SchemaIdCache } from '../../cloud-bridge/schema-id-cache.js';

/**
 * `full`: the WAL is fsynced at every commit, so a committed reading survives a power cut.
 * `normal`: it is fsynced only at checkpoints, so a committed reading survives a crash of the
 * process but the last commits may be lost on a power cut; faster on slow SD cards.
 */
export type SyncPolicy = 'full' | 'normal';

/** Alarms (door, power, temperature excursion, maintenance) are shed last; routine readings first. */
export type Lane = 'routine' | 'alarm';

export interface OutboxOptions {
  path: string;
  sync: SyncPolicy;
  /** Dead letters kept at most; the oldest are forgotten first (they are evidence, not readings). */
  maxDeadLetters?: number;
}

export interface NewRow {
  containerId: string;
  measurementMs: number;
  receivedMs: number;
  lane: Lane;
  /** Builds the stored value once the reading's sequence number is known. */
  encode(seq: number): Buffer;
}

export interface OutboxRow {
  seq: number;
  containerId: string;
  receivedMs: number;
  lane: Lane;
  value: Buffer;
}

export interface DeadLetterRow {
  receivedMs: number;
  transport: string;
  source: string;
  /** The container the input claimed to come from, when known. */
  containerId: string | null;
  reason: string;
  detail: string;
  payload: Buffer;
}

export interface LedgerEntry {
  containerId: string;
  reason: string;
  count: number;
}

export interface OutboxDepth {
  count: number;
  /** Approximate bytes the waiting readings occupy (values plus per-row overhead). */
  bytes: number;
  alarms: number;
  /** Receive time of the oldest waiting reading, or null when empty. */
  oldestReceivedMs: number | null;
}

/** A closed range of sequence numbers, both ends included. */
export type SeqRange = readonly [from: number, to: number];

/** What one Kafka transaction carried from the outbox. */
export interface Delivered {
  ranges: readonly SeqRange[];
  deadLetters?: SeqRange;
  commandStatuses?: SeqRange;
}

export interface ShedPolicy {
  maxBytes: number;
  maxAgeMs: number;
  /** Thinning keeps one routine reading in this many per container. */
  keepEvery: number;
  nowMs: number;
  /** Rows being sent right now: never shed, or they would be both delivered and counted lost. */
  protect: readonly SeqRange[];
}

export interface ShedReport {
  expired: number;
  thinned: number;
  droppedRoutine: number;
  droppedAlarm: number;
}

export interface AppendResult {
  /** The sequence number of each row, or null where the reading was already stored (a resend). */
  seqs: (number | null)[];
}

export interface Outbox {
  /**
   * Commits rows, dead letters and ledger counts in one transaction, on disk when it returns (as far as
   * the sync policy goes). With `syncLater`, the commit does not wait for the disk: the rows are on disk,
   * and handed to the uplink (peek, deadLetters), only once `durable()` has resolved.
   */
  append(rows: readonly NewRow[], deadLetters: readonly DeadLetterRow[], ledger?: readonly LedgerEntry[], options?: { syncLater?: boolean }): AppendResult;
  /**
   * Resolves once everything appended so far is on disk: an fdatasync of the write-ahead log on libuv's
   * thread pool, so the event loop goes on meanwhile; at once with sync `normal` or nothing pending.
   */
  durable(): Promise<void>;
  /** Waiting rows in sequence order, from `minSeq` up to `maxSeq` (both included). */
  peek(limit: number, bounds?: { minSeq?: number; maxSeq?: number }): OutboxRow[];
  /** Deletes rows Kafka has acknowledged. */
  remove(seqs: readonly number[]): void;
  /** Deletes every row in the ranges (those Kafka committed before a restart). */
  removeRanges(ranges: readonly SeqRange[]): number;
  /**
   * Deletes what one Kafka transaction committed, in one transaction that syncs later: `durable()` must
   * have resolved before the next transaction's marker is committed, or a power cut could bring back
   * rows that marker no longer names. Returns the rows removed.
   */
  removeDelivered(delivered: Delivered): number;
  /** Expires, thins and drops rows per the policy, counting each in the ledger, in one transaction. */
  shed(policy: ShedPolicy): ShedReport;
  /** Forgets readings seen before this time (the window in which a resend is recognised). */
  pruneSeen(beforeMeasurementMs: number): number;
  depth(): OutboxDepth;
  /** Identifies this database: sequence numbers are only meaningful together with it. */
  epoch(): string;
  /**
   * Binds the outbox to the gateway id its readings are sent under (stored readings do not repeat it).
   * Throws while readings made durable under another gateway id are still waiting.
   */
  claimGateway(gatewayId: string): void;
  lastSeq(): number;
  ledger(): LedgerEntry[];
  /** The oldest waiting dead letters, in id order. */
  deadLetters(limit: number): (DeadLetterRow & { id: number })[];
  /** Deletes dead letters Kafka has acknowledged. */
  removeDeadLetters(range: SeqRange): void;
  deadLetterCount(): number;
  /** Schema ids learned from a registry, kept here so framing goes on while the registry is unreachable. */
  schemaIds(): SchemaIdCache;
  /** Frees pages left by deleted rows and truncates the write-ahead log. */
  checkpoint(): void;
  close(): void;
  /**
   * Stores a command for a device unless one with its id is known (a redelivery), together with its
   * first status row, in one transaction. True when it was stored.
   */
  storeCommand(command: StoredCommand, status: CommandStatusRow): boolean;
  /** Commands not yet in a final state (stored or delivered), oldest first; of one container when given. */
  pendingCommands(containerId?: string): StoredCommand[];
  pendingCommandCount(): number;
  /** Commands still `stored` (never delivered) whose expiry is at or before `nowMs`. */
  expiredCommands(nowMs: number): StoredCommand[];
  command(commandId: string): StoredCommand | null;
  /** Moves a command from state `from` to `to` and queues its status row, in one transaction; false when it was not in `from`. */
  setCommandState(commandId: string, from: string, to: string, status: CommandStatusRow): boolean;
  /** The oldest status rows waiting for Kafka, in id order. */
  commandStatuses(limit: number): (CommandStatusRow & { id: number })[];
  /** Deletes status rows Kafka has acknowledged. */
  removeCommandStatuses(range: SeqRange): void;
  /** Forgets commands in a final state received before this time (the window in which a repeat is recognised). */
  pruneCommands(beforeReceivedMs: number): number;
}

/** A command waiting at the gateway for its device; `value` is the command as the device receives it. */
export interface StoredCommand {
  commandId: string;
  containerId: string;
  /** stored, delivered, applied, rejected or expired. */
  state: string;
  expiresMs: number;
  receivedMs: number;
  value: Buffer;
}

/** A change of a command's state, waiting to be sent to Kafka. */
export interface CommandStatusRow {
  containerId: string;
  timeMs: number;
  value: Buffer;
}

/**
 * Bytes counted per row beside its value: key, columns, b-tree overhead and its dedup key, as measured
 * (72 bytes on disk for a 34-byte stored reading, docs/performance.md).
 */
const ROW_OVERHEAD_BYTES = 38;
/** Rows looked at per shedding step; bounded so one step never holds the database for long. */
const SHED_CHUNK_ROWS = 5000;

const LANE_CODE: Record<Lane, number> = { routine: 0, alarm: 1 };
const LANE_NAME: readonly Lane[] = ['routine', 'alarm'];

/** An outbox row as SQLite returns it in raw mode (an array, one object fewer per reading): seq, container, received_ms, lane, value. */
type RawRow = [number, number, number, number, Buffer];

/**
 * AUTOINCREMENT for the same reason as command_status: the uplink's marker names committed dead
 * letters by id range and recovery deletes that range, so an id must never be handed out twice.
 */
const DEAD_LETTER_COLUMNS = `
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  received_ms INTEGER NOT NULL,
  transport TEXT NOT NULL,
  source TEXT NOT NULL,
  container_id TEXT,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  payload BLOB NOT NULL`;

/**
 * Outboxes written before dead-letter ids were AUTOINCREMENT could hand out an id again once the table
 * was emptied, and a recovery applying the last marker's dead-letter range would then delete unsent
 * ones. The table is rebuilt with AUTOINCREMENT, its sequence starting past any id the old table can
 * have used (ids are counts of dead letters, far below the clock's milliseconds).
 */
function migrateDeadLetterIds(db: Database.Database): void {
  const table = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'dead_letter'").get();
  if (!table || /AUTOINCREMENT/i.test(table.sql)) return;
  db.transaction(() => {
    db.exec(`
      ALTER TABLE dead_letter RENAME TO dead_letter_before_autoincrement;
      CREATE TABLE dead_letter (${DEAD_LETTER_COLUMNS});
      INSERT INTO dead_letter SELECT * FROM dead_letter_before_autoincrement;
      DROP TABLE dead_letter_before_autoincrement;
    `);
    const floor = Math.max(Date.now(), db.prepare<[], { m: number | null }>('SELECT max(id) AS m FROM dead_letter').get()?.m ?? 0);
    db.prepare("DELETE FROM sqlite_sequence WHERE name = 'dead_letter'").run();
    db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('dead_letter', ?)").run(floor);
  })();
}

/*
 * Readings refer to their container by a small number, listed once in `container`: a container id
 * spelled out in every row and in its dedup key cost about twenty bytes a reading. The dedup key leads
 * with the measurement time so that new keys land at the end of the b-tree, as the rows do.
 */
const CONTAINER_COLUMNS = `
  no INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE`;
const OUTBOX_COLUMNS = `
  seq INTEGER PRIMARY KEY,
  container INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  lane INTEGER NOT NULL,
  thinned INTEGER NOT NULL DEFAULT 0,
  value BLOB NOT NULL`;
const SEEN_COLUMNS = `
  measurement_ms INTEGER NOT NULL,
  container INTEGER NOT NULL,
  PRIMARY KEY (measurement_ms, container)`;

/**
 * Outboxes written before containers were numbered name the container in each row of `outbox` and
 * `seen`. Their rows move to the numbered tables as they are (their values stay Avro bodies, which
 * the uplink still sends as they are).
 */
function migrateContainerNumbers(db: Database.Database): void {
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('outbox')").all();
  if (!columns.some((c) => c.name === 'container_id')) return;
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS container (${CONTAINER_COLUMNS});
      INSERT OR IGNORE INTO container (id) SELECT container_id FROM outbox UNION SELECT container_id FROM seen;
      ALTER TABLE outbox RENAME TO outbox_before_container_numbers;
      ALTER TABLE seen RENAME TO seen_before_container_numbers;
      CREATE TABLE outbox (${OUTBOX_COLUMNS});
      CREATE TABLE seen (${SEEN_COLUMNS}) WITHOUT ROWID;
      INSERT INTO outbox (seq, container, received_ms, lane, thinned, value)
        SELECT o.seq, c.no, o.received_ms, o.lane, o.thinned, o.value FROM outbox_before_container_numbers o JOIN container c ON c.id = o.container_id;
      INSERT INTO seen (measurement_ms, container)
        SELECT s.measurement_ms, c.no FROM seen_before_container_numbers s JOIN container c ON c.id = s.container_id;
      DROP TABLE outbox_before_container_numbers;
      DROP TABLE seen_before_container_numbers;
    `);
  })();
}

/** Container ids by number and numbers by id, as stored; a number is never reused. */
interface ContainerNumbers {
  ids: string[];
  numbers: Map<string, number>;
}

function loadContainers(db: Database.Database): ContainerNumbers {
  const out: ContainerNumbers = { ids: [], numbers: new Map() };
  for (const { no, id } of db.prepare<[], { no: number; id: string }>('SELECT no, id FROM container').iterate()) {
    out.ids[no] = id;
    out.numbers.set(id, no);
  }
  return out;
}

/**
 * fdatasync of the write-ahead log on libuv's thread pool. A commit made with synchronous = NORMAL
 * is in the log (the page cache) when it returns; syncing the log file afterwards makes it as durable
 * as synchronous = FULL would have, without holding the event loop for the fsync (milliseconds on an
 * SD card, during which no device would be read or acknowledged). The log's directory entry is synced
 * once too, as SQLite does when it creates the file in FULL mode.
 */
function createWalSync(walPath: string): { sync(): Promise<void>; close(): void } {
  let fd: number | undefined;
  let syncing = 0;
  let closing = false;
  function release(): void {
    if (closing && syncing === 0 && fd !== undefined) {
      closeSync(fd);
      fd = undefined;
    }
  }
  function walFile(): number {
    if (fd !== undefined && fstatSync(fd).nlink > 0) return fd;
    if (fd !== undefined) closeSync(fd);
    fd = openSync(walPath, 'r');
    const dir = openSync(dirname(walPath), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    return fd;
  }
  return {
    sync() {
      if (closing) return Promise.reject(new Error('outbox is closed'));
      const file = walFile();
      syncing += 1;
      return new Promise((resolve, reject) =>
        fdatasync(file, (err) => {
          syncing -= 1;
          release();
          if (err) reject(err);
          else resolve();
        }),
      );
    },
    /** Closes the log file once the syncs under way are done. */
    close() {
      closing = true;
      release();
    },
  };
}

export function openOutbox(options: OutboxOptions): Outbox {
  mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
  const walSync = options.sync === 'full' ? createWalSync(`${options.path}-wal`) : undefined;
  migrateContainerNumbers(db);
  db.exec(`
    CREATE TABLE IF NOT EXISTS container (${CONTAINER_COLUMNS});
    CREATE TABLE IF NOT EXISTS outbox (${OUTBOX_COLUMNS});
    CREATE TABLE IF NOT EXISTS seen (${SEEN_COLUMNS}) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS ledger (
      container_id TEXT NOT NULL,
      reason TEXT NOT NULL,
      count INTEGER NOT NULL,
      PRIMARY KEY (container_id, reason)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS dead_letter (${DEAD_LETTER_COLUMNS});
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS command (
      command_id TEXT PRIMARY KEY,
      container_id TEXT NOT NULL,
      state TEXT NOT NULL,
      expires_ms INTEGER NOT NULL,
      received_ms INTEGER NOT NULL,
      value BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS command_open ON command (container_id, received_ms) WHERE state IN ('stored', 'delivered');
    CREATE INDEX IF NOT EXISTS command_expiry ON command (expires_ms) WHERE state = 'stored';
    -- AUTOINCREMENT: an id is never reused, even once the table was emptied, because the uplink's
    -- progress marker names committed rows by id range and recovery deletes that range.
    CREATE TABLE IF NOT EXISTS command_status (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      container_id TEXT NOT NULL,
      time_ms INTEGER NOT NULL,
      value BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS schema_id (
      registry_url TEXT NOT NULL,
      subject TEXT NOT NULL,
      fingerprint TEXT NOT NULL,
      id INTEGER NOT NULL,
      PRIMARY KEY (registry_url, subject, fingerprint)
    ) WITHOUT ROWID;
  `);

  migrateDeadLetterIds(db);
  let containers = loadContainers(db);

  const getMeta = db.prepare<[string], { value: unknown }>('SELECT value FROM meta WHERE key = ?');
  const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  let epoch = getMeta.get('epoch')?.value as string | undefined;
  if (epoch === undefined) {
    epoch = randomUUID();
    setMeta.run('epoch', epoch);
  }
  const maxSeq = db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM outbox').get()?.m ?? 0;
  // Sequence numbers are never reused, even after their rows are deleted: (gateway, seq) names a
  // reading downstream for good.
  let lastSeq = Math.max(Number(getMeta.get('last_seq')?.value ?? 0), maxSeq);
  // What is on disk may be sent: everything found at open, then what durable() has seen synced.
  let durableSeq = lastSeq;
  let appendedSeq = lastSeq;
  let durableDeadLetterId = db.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM dead_letter').get()?.id ?? 0;
  let appendedDeadLetterId = durableDeadLetterId;
  /** A commit made without SQLite's fsync since the last durable() started. */
  let syncPending = false;
  let lastSync: Promise<void> = Promise.resolve();
  const syncNormal = db.prepare('PRAGMA synchronous = NORMAL');
  const syncFull = db.prepare('PRAGMA synchronous = FULL');

  const insertRow = db.prepare('INSERT INTO outbox (seq, container, received_ms, lane, value) VALUES (?, ?, ?, ?, ?)');
  const insertSeen = db.prepare('INSERT OR IGNORE INTO seen (measurement_ms, container) VALUES (?, ?)');
  const insertDead = db.prepare(
    'INSERT INTO dead_letter (received_ms, transport, source, container_id, reason, detail, payload) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const bumpLedger = db.prepare(
    'INSERT INTO ledger (container_id, reason, count) VALUES (?, ?, ?) ON CONFLICT(container_id, reason) DO UPDATE SET count = count + excluded.count',
  );
  const selectRows = db
    .prepare<[number, number, number], RawRow>('SELECT seq, container, received_ms, lane, value FROM outbox WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?')
    .raw(true);
  const deleteRow = db.prepare<[number], { size: number; lane: number }>(
    `DELETE FROM outbox WHERE seq = ? RETURNING length(value) + ${ROW_OVERHEAD_BYTES} AS size, lane`,
  );
  // What a range holds, summed in SQL: one row back per range instead of one per deleted reading.
  const measureRange = db.prepare<[number, number], { n: number; size: number | null; alarms: number | null }>(
    `SELECT count(*) AS n, sum(length(value)) + count(*) * ${ROW_OVERHEAD_BYTES} AS size, sum(lane) AS alarms FROM outbox WHERE seq >= ? AND seq <= ?`,
  );
  const deleteRange = db.prepare<[number, number]>('DELETE FROM outbox WHERE seq >= ? AND seq <= ?');
  const selectTotals = db.prepare<[], { count: number; bytes: number | null; alarms: number | null }>(
    `SELECT count(*) AS count, sum(length(value)) + count(*) * ${ROW_OVERHEAD_BYTES} AS bytes, sum(lane) AS alarms FROM outbox`,
  );
  const selectOldest = db.prepare<[], { received_ms: number }>('SELECT received_ms FROM outbox ORDER BY seq LIMIT 1');
  const selectExpired = db.prepare<[number, number], ShedCandidate>(
    `SELECT seq, container, lane, length(value) + ${ROW_OVERHEAD_BYTES} AS size FROM outbox WHERE received_ms < ? ORDER BY seq LIMIT ?`,
  );
  const selectUnthinned = db.prepare<[number], ShedCandidate>(
    `SELECT seq, container, lane, length(value) + ${ROW_OVERHEAD_BYTES} AS size FROM outbox WHERE lane = 0 AND thinned = 0 ORDER BY seq LIMIT ?`,
  );
  const selectOldestInLane = db.prepare<[number, number], ShedCandidate>(
    `SELECT seq, container, lane, length(value) + ${ROW_OVERHEAD_BYTES} AS size FROM outbox WHERE lane = ? ORDER BY seq LIMIT ?`,
  );
  const markThinned = db.prepare('UPDATE outbox SET thinned = 1 WHERE seq = ?');
  const deleteShed = db.prepare('DELETE FROM outbox WHERE seq = ?');
  const pruneSeenStmt = db.prepare('DELETE FROM seen WHERE measurement_ms < ?');
  const selectLedger = db.prepare<[], { containerId: string; reason: string; count: number }>(
    'SELECT container_id AS containerId, reason, count FROM ledger ORDER BY container_id, reason',
  );
  const selectDead = db.prepare<[number, number], DeadLetterRow & { id: number }>(
    'SELECT id, received_ms AS receivedMs, transport, source, container_id AS containerId, reason, detail, payload FROM dead_letter WHERE id <= ? ORDER BY id LIMIT ?',
  );
  const countDead = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dead_letter');
  const deleteDeadRange = db.prepare('DELETE FROM dead_letter WHERE id >= ? AND id <= ?');
  // By count, not by id arithmetic: ids may jump (see migrateDeadLetterIds).
  const trimDead = db.prepare('DELETE FROM dead_letter WHERE id IN (SELECT id FROM dead_letter ORDER BY id DESC LIMIT -1 OFFSET ?)');
  const maxDeadLetters = options.maxDeadLetters ?? 10_000;
  const selectSchemaId = db.prepare<[string, string, string], { id: number }>(
    'SELECT id FROM schema_id WHERE registry_url = ? AND subject = ? AND fingerprint = ?',
  );
  const upsertSchemaId = db.prepare(
    'INSERT INTO schema_id (registry_url, subject, fingerprint, id) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET id = excluded.id',
  );
  const schemaIds: SchemaIdCache = {
    get: (key) => selectSchemaId.get(key.registryUrl, key.subject, key.fingerprint)?.id,
    put(key, id) {
      if (selectSchemaId.get(key.registryUrl, key.subject, key.fingerprint)?.id === id) return;
      upsertSchemaId.run(key.registryUrl, key.subject, key.fingerprint, id);
      // With synchronous = NORMAL a commit reaches the disk only at a checkpoint; the port promises
      // an id that survives a power cut, and a gateway learns only a handful in its life.
      if (options.sync === 'normal') db.pragma('wal_checkpoint(PASSIVE)');
    },
  };

  const commandColumns = 'command_id AS commandId, container_id AS containerId, state, expires_ms AS expiresMs, received_ms AS receivedMs, value';
  const insertCommand = db.prepare(
    'INSERT OR IGNORE INTO command (command_id, container_id, state, expires_ms, received_ms, value) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insertCommandStatus = db.prepare('INSERT INTO command_status (container_id, time_ms, value) VALUES (?, ?, ?)');
  const selectOpenCommands = db.prepare<[], StoredCommand>(
    `SELECT ${commandColumns} FROM command WHERE state IN ('stored', 'delivered') ORDER BY received_ms, rowid`,
  );
  const selectOpenCommandsOf = db.prepare<[string], StoredCommand>(
    `SELECT ${commandColumns} FROM command WHERE container_id = ? AND state IN ('stored', 'delivered') ORDER BY received_ms, rowid`,
  );
  const selectExpiredCommands = db.prepare<[number], StoredCommand>(
    `SELECT ${commandColumns} FROM command WHERE state = 'stored' AND expires_ms <= ? ORDER BY expires_ms`,
  );
  const countOpenCommands = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM command WHERE state IN ('stored', 'delivered')");
  const selectCommand = db.prepare<[string], StoredCommand>(`SELECT ${commandColumns} FROM command WHERE command_id = ?`);
  const updateCommandState = db.prepare('UPDATE command SET state = ? WHERE command_id = ? AND state = ?');
  const selectCommandStatuses = db.prepare<[number], CommandStatusRow & { id: number }>(
    'SELECT id, container_id AS containerId, time_ms AS timeMs, value FROM command_status ORDER BY id LIMIT ?',
  );
  const deleteCommandStatusRange = db.prepare('DELETE FROM command_status WHERE id >= ? AND id <= ?');
  const pruneCommandsStmt = db.prepare("DELETE FROM command WHERE received_ms < ? AND state NOT IN ('stored', 'delivered')");
  const storeCommandTx = db.transaction((command: StoredCommand, status: CommandStatusRow): boolean => {
    const stored = insertCommand.run(command.commandId, command.containerId, command.state, command.expiresMs, command.receivedMs, command.value).changes > 0;
    if (stored) insertCommandStatus.run(status.containerId, status.timeMs, status.value);
    return stored;
  });
  const setCommandStateTx = db.transaction((commandId: string, from: string, to: string, status: CommandStatusRow): boolean => {
    if (updateCommandState.run(to, commandId, from).changes === 0) return false;
    insertCommandStatus.run(status.containerId, status.timeMs, status.value);
    return true;
  });

  const insertContainer = db.prepare<[string]>('INSERT INTO container (id) VALUES (?)');
  /** The container's number, numbering it inside the caller's transaction when it is new. */
  function containerNumber(containerId: string): number {
    let no = containers.numbers.get(containerId);
    if (no === undefined) {
      no = Number(insertContainer.run(containerId).lastInsertRowid);
      containers.numbers.set(containerId, no);
      containers.ids[no] = containerId;
    }
    return no;
  }
  function containerIdOf(no: number): string {
    const id = containers.ids[no];
    if (id === undefined) throw new Error(`outbox row names container number ${no}, which is not in the container table`);
    return id;
  }

  const totals = selectTotals.get();
  let count = totals?.count ?? 0;
  let bytes = totals?.bytes ?? 0;
  let alarms = totals?.alarms ?? 0;

  interface ShedCandidate {
    seq: number;
    container: number;
    lane: number;
    size: number;
  }

  const appendTx = db.transaction((rows: readonly NewRow[], deadLetters: readonly DeadLetterRow[], ledger: readonly LedgerEntry[]) => {
    const seqs: (number | null)[] = [];
    let seq = lastSeq;
    let addedBytes = 0;
    let addedAlarms = 0;
    for (const row of rows) {
      const container = containerNumber(row.containerId);
      if (insertSeen.run(row.measurementMs, container).changes === 0) {
        seqs.push(null);
        continue;
      }
      seq += 1;
      const value = row.encode(seq);
      insertRow.run(seq, container, row.receivedMs, LANE_CODE[row.lane], value);
      addedBytes += value.length + ROW_OVERHEAD_BYTES;
      if (row.lane === 'alarm') addedAlarms += 1;
      seqs.push(seq);
    }
    let deadLetterId = 0;
    for (const d of deadLetters) deadLetterId = Number(insertDead.run(d.receivedMs, d.transport, d.source, d.containerId, d.reason, d.detail, d.payload).lastInsertRowid);
    if (deadLetters.length > 0) trimDead.run(maxDeadLetters);
    for (const l of ledger) bumpLedger.run(l.containerId, l.reason, l.count);
    if (seq !== lastSeq) setMeta.run('last_seq', seq);
    return { seqs, seq, addedBytes, addedAlarms, deadLetterId };
  });

  const removeTx = db.transaction((seqs: readonly number[]) => {
    for (const seq of seqs) {
      const gone = deleteRow.get(seq);
      if (gone) forget(gone.size, gone.lane);
    }
  });

  function forget(size: number, lane = 0): void {
    count -= 1;
    bytes -= size;
    alarms -= lane;
  }

  const removeRangesTx = db.transaction((ranges: readonly SeqRange[]) => {
    let removed = 0;
    for (const [from, to] of ranges) {
      const gone = measureRange.get(from, to);
      if (!gone || gone.n === 0) continue;
      deleteRange.run(from, to);
      count -= gone.n;
      bytes -= gone.size ?? 0;
      alarms -= gone.alarms ?? 0;
      removed += gone.n;
    }
    return removed;
  });

  const removeDeliveredTx = db.transaction((delivered: Delivered): number => {
    const removed = delivered.ranges.length > 0 ? removeRangesTx(delivered.ranges) : 0;
    if (delivered.deadLetters) deleteDeadRange.run(delivered.deadLetters[0], delivered.deadLetters[1]);
    if (delivered.commandStatuses) deleteCommandStatusRange.run(delivered.commandStatuses[0], delivered.commandStatuses[1]);
    return removed;
  });

  const shedTx = db.transaction((policy: ShedPolicy): ShedReport => {
    const report: ShedReport = { expired: 0, thinned: 0, droppedRoutine: 0, droppedAlarm: 0 };
    const isProtected = (seq: number) => policy.protect.some(([from, to]) => seq >= from && seq <= to);
    const losses = new Map<string, number>();
    const drop = (row: ShedCandidate, reason: string) => {
      deleteShed.run(row.seq);
      forget(row.size, row.lane);
      const key = `${containerIdOf(row.container)}\u0000${reason}`;
      losses.set(key, (losses.get(key) ?? 0) + 1);
    };

    const oldest = selectOldest.get();
    if (oldest && oldest.received_ms < policy.nowMs - policy.maxAgeMs) {
      for (;;) {
        const expired = selectExpired.all(policy.nowMs - policy.maxAgeMs, SHED_CHUNK_ROWS).filter((r) => !isProtected(r.seq));
        for (const row of expired) drop(row, 'expired');
        report.expired += expired.length;
        if (expired.length < SHED_CHUNK_ROWS) break;
      }
    }

    // Thin first: routine readings not thinned before, oldest first, keeping every n-th per container.
    while (bytes > policy.maxBytes) {
      const chunk = selectUnthinned.all(SHED_CHUNK_ROWS).filter((r) => !isProtected(r.seq));
      if (chunk.length === 0) break;
      const position = new Map<number, number>();
      for (const row of chunk) {
        const p = position.get(row.container) ?? 0;
        position.set(row.container, p + 1);
        if (p % policy.keepEvery === 0) markThinned.run(row.seq);
        else {
          drop(row, 'thinned');
          report.thinned += 1;
        }
      }
    }
    // Then drop, routine readings before alarms, oldest first.
    for (const lane of [0, 1]) {
      while (bytes > policy.maxBytes) {
        const chunk = selectOldestInLane.all(lane, SHED_CHUNK_ROWS).filter((r) => !isProtected(r.seq));
        if (chunk.length === 0) break;
        for (const row of chunk) {
          if (bytes <= policy.maxBytes) break;
          drop(row, lane === 0 ? 'shed-routine' : 'shed-alarm');
          if (lane === 0) report.droppedRoutine += 1;
          else report.droppedAlarm += 1;
        }
      }
    }
    for (const [key, n] of losses) {
      const [containerId, reason] = key.split('\u0000') as [string, string];
      bumpLedger.run(containerId, reason, n);
    }
    return report;
  });

  let closed = false;
  return {
    append(rows, deadLetters, ledger = [], appendOptions = {}) {
      let result: ReturnType<typeof appendTx>;
      // A commit that syncs later skips SQLite's own fsync (sync full): durable() makes it, off the event
      // loop. Every other write (deletes, commands, schema ids) keeps its fsync at commit.
      const later = walSync !== undefined && appendOptions.syncLater === true;
      if (later) {
        syncPending = true;
        syncNormal.run();
      }
      try {
        result = appendTx(rows, deadLetters, ledger);
      } catch (err) {
        // Numbers handed out in the rolled-back transaction were never stored.
        containers = loadContainers(db);
        throw err;
      } finally {
        if (later) syncFull.run();
      }
      appendedSeq = Math.max(appendedSeq, result.seq);
      appendedDeadLetterId = Math.max(appendedDeadLetterId, result.deadLetterId);
      if (!later) {
        // On disk now, and with it every commit before it that waited for durable().
        durableSeq = appendedSeq;
        durableDeadLetterId = appendedDeadLetterId;
      }
      // Only advance once the transaction committed; a failed commit reuses nothing it did not write.
      lastSeq = result.seq;
      const added = result.seqs.filter((s) => s !== null).length;
      count += added;
      bytes += result.addedBytes;
      alarms += result.addedAlarms;
      return { seqs: result.seqs };
    },
    peek(limit, bounds = {}) {
      return selectRows.all(bounds.minSeq ?? 0, Math.min(bounds.maxSeq ?? Number.MAX_SAFE_INTEGER, durableSeq), limit).map(([seq, container, receivedMs, lane, value]) => ({
        seq,
        containerId: containerIdOf(container),
        receivedMs,
        lane: LANE_NAME[lane] ?? 'routine',
        value,
      }));
    },
    remove(seqs) {
      if (seqs.length > 0) removeTx(seqs);
    },
    removeRanges(ranges) {
      return ranges.length > 0 ? removeRangesTx(ranges) : 0;
    },
    removeDelivered(delivered) {
      if (!walSync) return removeDeliveredTx(delivered);
      syncPending = true;
      syncNormal.run();
      try {
        return removeDeliveredTx(delivered);
      } finally {
        syncFull.run();
      }
    },
    shed(policy) {
      if (bytes <= policy.maxBytes) {
        const oldest = count > 0 ? selectOldest.get() : undefined;
        if (!oldest || oldest.received_ms >= policy.nowMs - policy.maxAgeMs) return { expired: 0, thinned: 0, droppedRoutine: 0, droppedAlarm: 0 };
      }
      return shedTx(policy);
    },
    pruneSeen(beforeMeasurementMs) {
      return pruneSeenStmt.run(beforeMeasurementMs).changes;
    },
    depth() {
      return { count, bytes, alarms, oldestReceivedMs: count > 0 ? (selectOldest.get()?.received_ms ?? null) : null };
    },
    durable() {
      // Nothing committed since the last sync started: that sync (maybe still under way) covers it all.
      if (!walSync || !syncPending) return lastSync;
      syncPending = false;
      const seq = appendedSeq;
      const deadLetterId = appendedDeadLetterId;
      let syncing: Promise<void>;
      try {
        syncing = walSync.sync();
      } catch (error) {
        syncing = Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      lastSync = syncing.then(
        () => {
          durableSeq = Math.max(durableSeq, seq);
          durableDeadLetterId = Math.max(durableDeadLetterId, deadLetterId);
        },
        (error: unknown) => {
          // Not on disk: the next durable() tries again, for these commits and any after them.
          syncPending = true;
          throw error;
        },
      );
      return lastSync;
    },
    epoch: () => epoch,
    claimGateway(gatewayId) {
      const owner = getMeta.get('gateway_id')?.value;
      if (owner === gatewayId) return;
      if (typeof owner === 'string' && count > 0) {
        throw new Error(
          `gatewayId: expected "${owner}" while ${options.path} holds ${count} readings made durable under it, got "${gatewayId}"; ` +
            'let them drain under the old id first, or start the new id with another dataDir',
        );
      }
      setMeta.run('gateway_id', gatewayId);
    },
    lastSeq: () => lastSeq,
    ledger() {
      return selectLedger.all();
    },
    deadLetters(limit) {
      return selectDead.all(durableDeadLetterId, limit);
    },
    removeDeadLetters([from, to]) {
      deleteDeadRange.run(from, to);
    },
    deadLetterCount() {
      return countDead.get()?.n ?? 0;
    },
    schemaIds: () => schemaIds,
    checkpoint() {
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    close() {
      if (closed) return;
      closed = true;
      db.close();
      walSync?.close();
    },
    storeCommand: (command, status) => storeCommandTx(command, status),
    pendingCommands: (containerId) => (containerId === undefined ? selectOpenCommands.all() : selectOpenCommandsOf.all(containerId)),
    pendingCommandCount: () => countOpenCommands.get()?.n ?? 0,
    expiredCommands: (nowMs) => selectExpiredCommands.all(nowMs),
    command: (commandId) => selectCommand.get(commandId) ?? null,
    setCommandState: (commandId, from, to, status) => setCommandStateTx(commandId, from, to, status),
    commandStatuses: (limit) => selectCommandStatuses.all(limit),
    removeCommandStatuses([from, to]) {
      deleteCommandStatusRange.run(from, to);
    },
    pruneCommands: (beforeReceivedMs) => pruneCommandsStmt.run(beforeReceivedMs).changes,
  };
}
