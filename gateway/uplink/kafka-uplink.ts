/**
 * The uplink drains the outbox into Kafka exactly once. Each batch is one Kafka transaction that also
 * records which outbox rows it carried (a progress marker stored as the committed offset of a
 * per-gateway group). Rows are deleted only after the commit; after a crash, a timeout or an
 * ambiguous commit, the uplink starts a fresh producer (which fences the old one and aborts its open
 * transaction), reads the marker and deletes the rows Kafka did commit. So a restart neither resends
 * what Kafka committed nor skips what it did not.
 *
 * After an outage, fresh readings go first while the backlog drains at a bounded rate, in sequence
 * (and so per-container) order, marked as replayed.
 */
import type { Logger } from 'pino';
import type { KafkaAdminPort, KafkaRecord, ProgressMarker, TopicRecords, TransactionalProducerPort } from '../../cloud-bridge/kafka-client.js';
import type { Outbox, OutboxRow, SeqRange } from '../outbox/sqlite-outbox.js';

export type UplinkState = 'connecting' | 'up' | 'down' | 'closed';

export interface UplinkOptions {
  topic: string;
  gatewayId: string;
  /** Most readings sent in one transaction. */
  batchSize: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** How often an idle uplink looks at the outbox even without being told of new rows. */
  idlePollMs: number;
  /**
   * While it keeps up (less than a batch waits, none was read ahead), the uplink starts a transaction
   * at least this long after the last one ended, so readings gather into fewer transactions. 0: at once.
   */
  lingerMs?: number;
  /** Longest one Kafka operation may take before the broker counts as hung. */
  operationTimeoutMs: number;
  /** How often an idle uplink checks that Kafka still answers. */
  probeIntervalMs: number;
  /** Send fresh readings before the backlog left by an outage. */
  liveFirst: boolean;
  /**
   * Readings waiting this long when the link comes (back) up count as a backlog to replay behind fresh
   * ones; a shorter blip is sent in order.
   */
  liveFirstAfterMs: number;
  /** Backlog readings sent per second while fresh ones keep flowing; 0 for no limit. */
  replayRatePerSecond: number;
  /** Topic for rejected input with its reason; empty to keep dead letters in the outbox only. */
  deadLetterTopic: string;
  /** Topic for the gateway's status and loss ledger; empty to send none. */
  statusTopic: string;
  statusIntervalMs: number;
  /**
   * Topic for changes of state of device commands (stored, delivered, applied, …), sent in the same
   * transactions as readings and covered by the marker; empty or absent to send none.
   */
  commandStatusTopic?: string;
  /**
   * Longest close() waits for the transaction in flight. Past it the transaction is abandoned: the
   * next start fences it and its marker tells what Kafka kept, so nothing is lost or sent twice.
   */
  closeTimeoutMs: number;
}

export interface UplinkDeps {
  outbox: Outbox;
  /** Builds a producer; called again after every failure, so a hung one is abandoned, not reused. */
  createProducer(): TransactionalProducerPort;
  /** The progress lookup and the probe: Kafka's admin, or the bridge link in uplink mode mqtt. */
  admin: Pick<KafkaAdminPort, 'fetchMarker' | 'listTopics' | 'close'>;
  /** Turns a stored row into the Kafka record value (framing). */
  frame(row: OutboxRow): Buffer;
  /**
   * Readies `frame` before anything is sent after a (re)start or failure: with a schema registry, the
   * schema id. While it rejects, nothing is sent and the uplink is down, retried with its backoff;
   * sending in another framing instead would mix framings within one topic.
   */
  prepare?(): Promise<void>;
  /** The gateway's status and loss ledger, sent to the status topic. */
  statusReport(): unknown;
  logger: Logger;
  now(): number;
  onSent?(count: number, latencyMs: number): void;
  onStateChange?(state: UplinkState): void;
  onError?(error: unknown): void;
}

export interface Uplink {
  start(): void;
  /** Wakes an idle uplink: new rows are waiting. */
  notify(): void;
  state(): UplinkState;
  /** Rows being sent right now, which shedding must leave alone. */
  inFlight(): readonly SeqRange[];
  /** Oldest sequence number that still counts as backlog, or 0 when there is none. */
  replayUntilSeq(): number;
  close(): Promise<void>;
}

export class UplinkTimeoutError extends Error {
  readonly code = 'REEFER_UPLINK_TIMEOUT';
  readonly retriable = true;
  constructor(operation: string, ms: number) {
    super(`Kafka did not answer ${operation} within ${ms} ms`);
    this.name = 'UplinkTimeoutError';
  }
}

/**
 * Marker text: the outbox's epoch, the committed reading ranges, after `;d` the committed dead-letter
 * range and after `;s` the committed command-status range, e.g. `3f2c…:1-500,9001-9100;d17-20;s4-9`.
 */
export function encodeMarker(epoch: string, ranges: readonly SeqRange[], deadLetters?: SeqRange, commandStatuses?: SeqRange): string {
  const dead = deadLetters ? `;d${deadLetters[0]}-${deadLetters[1]}` : '';
  const statuses = commandStatuses ? `;s${commandStatuses[0]}-${commandStatuses[1]}` : '';
  return `${epoch}:${ranges.map(([a, b]) => `${a}-${b}`).join(',')}${dead}${statuses}`;
}

export function decodeMarker(text: string): { epoch: string; ranges: SeqRange[]; deadLetters?: SeqRange; commandStatuses?: SeqRange } | null {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return null;
  const [readingPart = '', ...extraParts] = text.slice(colon + 1).split(';');
  const ranges: SeqRange[] = [];
  for (const part of readingPart === '' ? [] : readingPart.split(',')) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    if (!m) return null;
    ranges.push([Number(m[1]), Number(m[2])]);
  }
  let deadLetters: SeqRange | undefined;
  let commandStatuses: SeqRange | undefined;
  for (const part of extraParts) {
    const m = /^([ds])(\d+)-(\d+)$/.exec(part);
    if (!m) return null;
    if (m[1] === 'd') deadLetters = [Number(m[2]), Number(m[3])];
    else commandStatuses = [Number(m[2]), Number(m[3])];
  }
  if (ranges.length === 0 && !deadLetters && !commandStatuses) return null;
  return {
    epoch: text.slice(0, colon),
    ranges,
    ...(deadLetters ? { deadLetters } : {}),
    ...(commandStatuses ? { commandStatuses } : {}),
  };
}

/** A dead letter as it appears on the dead-letter topic (JSON, key = container id or source). */
function deadLetterRecord(d: ReturnType<Outbox['deadLetters']>[number], gatewayId: string): KafkaRecord {
  return {
    key: d.containerId ?? d.source,
    value: Buffer.from(
      JSON.stringify({
        gatewayId,
        reason: d.reason,
        detail: d.detail,
        transport: d.transport,
        source: d.source,
        containerId: d.containerId,
        receivedMs: d.receivedMs,
        payloadBase64: Buffer.from(d.payload).toString('base64'),
      }),
    ),
    headers: { gateway_id: gatewayId, reason: d.reason },
    timestampMs: d.receivedMs,
  };
}

/** Time a stop gives Kafka connections to disconnect cleanly, even when the transaction used up closeTimeoutMs. */
const MIN_DISCONNECT_WAIT_MS = 1000;

/** Waits for `promise` at most `ms`; true when it settled in time. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(done, done);
  });
}

/** Rows read from the outbox in one call while the next batch is read ahead. */
const PREFETCH_SLICE = 1000;

/** The last sequence number taken in each lane (0 for none). */
interface Cursor {
  live: number;
  backlog: number;
}

/** One transaction's readings: their rows, and their records in the same order. */
interface Batch {
  live: OutboxRow[];
  backlog: OutboxRow[];
  liveRecords: KafkaRecord[];
  backlogRecords: KafkaRecord[];
}

function rangeOf(rows: readonly OutboxRow[]): SeqRange | undefined {
  return rows.length > 0 ? [rows[0]!.seq, rows[rows.length - 1]!.seq] : undefined;
}

export function createUplink(options: UplinkOptions, deps: UplinkDeps): Uplink {
  const log = deps.logger.child({ component: 'uplink' });
  const progressGroup = `reefer-gateway.${options.gatewayId}.progress`;
  let state: UplinkState = 'connecting';
  let running = false;
  let closing: Promise<void> | undefined;
  /** Set when close() stopped waiting: the loop must not touch the outbox, which is closed next. */
  let abandoned = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let backoffMs = options.minBackoffMs;
  let producer: TransactionalProducerPort | undefined;
  let needsRecovery = true;
  let inFlight: SeqRange[] = [];
  /** The batch read while the previous transaction was in flight. */
  let next: { generation: number; batch: Promise<Batch | undefined> } | undefined;
  /** Bumped by every failed transaction: a batch read before it is read again after recovery. */
  let batchGeneration = 0;
  let replayUntil = 0;
  let replayTokens = 0;
  let replayRefillMs = deps.now();
  let lastProbeMs = deps.now();
  let lastStatusMs = 0;
  let statusDue = true;
  /** When the last transaction committed. */
  let lastCommitMs = 0;

  function setState(next: UplinkState): void {
    if (state === next || state === 'closed') return;
    const previous = state;
    state = next;
    log.info({ state, previous }, `uplink ${state}`);
    // The link is back: tell the status topic.
    if (next === 'up' && previous === 'down') statusDue = true;
    deps.onStateChange?.(state);
  }

  /** How much longer the next transaction waits for readings to gather; 0 to start it now. */
  function lingerLeft(): number {
    const left = (options.lingerMs ?? 0) - (deps.now() - lastCommitMs);
    if (left <= 0 || next || !running || abandoned || deps.outbox.depth().count >= options.batchSize) return 0;
    return left;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  /** Gives up on an operation that does not answer; a hung broker never rejects on its own. */
  function withTimeout<T>(operation: string, promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new UplinkTimeoutError(operation, options.operationTimeoutMs)), options.operationTimeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  function toRecord(row: OutboxRow, replayed: boolean): KafkaRecord {
    const headers: Record<string, string> = { gateway_id: options.gatewayId, seq: String(row.seq), lane: row.lane };
    if (replayed) headers.replayed = 'true';
    return { key: row.containerId, value: deps.frame(row), headers, timestampMs: row.receivedMs };
  }

  function dropProducer(): void {
    const old = producer;
    producer = undefined;
    // A hung producer may never finish disconnecting; its transaction is fenced by the next one anyway.
    if (old) void old.close().catch(() => undefined);
  }

  async function failed(error: unknown, message = 'Kafka unavailable; readings stay in the outbox'): Promise<void> {
    deps.onError?.(error);
    needsRecovery = true;
    batchGeneration += 1;
    inFlight = [];
    dropProducer();
    if (!running) {
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'Kafka did not finish before the stop; what it did not confirm stays in the outbox');
      return;
    }
    setState('down');
    log.warn({ err: error instanceof Error ? error.message : String(error), retryInMs: backoffMs }, message);
    // Jitter keeps a fleet of gateways from reconnecting in step after a shared outage.
    await sleep(backoffMs / 2 + Math.random() * (backoffMs / 2));
    backoffMs = Math.min(options.maxBackoffMs, backoffMs * 2);
  }

  async function recover(): Promise<void> {
    const fresh = deps.createProducer();
    producer = fresh;
    await withTimeout('producer start', fresh.connect());
    const marker = await withTimeout('progress lookup', deps.admin.fetchMarker(progressGroup, options.topic, 0));
    if (abandoned) return;
    const decoded = marker ? decodeMarker(marker.metadata) : null;
    if (decoded && decoded.epoch === deps.outbox.epoch()) {
      if (decoded.deadLetters) deps.outbox.removeDeadLetters(decoded.deadLetters);
      if (decoded.commandStatuses) deps.outbox.removeCommandStatuses(decoded.commandStatuses);
      const removed = deps.outbox.removeRanges(decoded.ranges);
      if (removed > 0) log.info({ removed, ranges: decoded.ranges }, 'rows Kafka had committed before the restart removed from the outbox');
    }
    needsRecovery = false;
  }

  /**
   * Up to `limit` readings after the cursor: fresh ones first, then the backlog at the replay rate.
   * The cursor holds the last sequence number already taken in each lane (0 for none).
   */
  function takeBatch(limit: number, after: Cursor = { live: 0, backlog: 0 }): { live: OutboxRow[]; backlog: OutboxRow[] } {
    if (!options.liveFirst) return { live: deps.outbox.peek(limit, { minSeq: after.live + 1 }), backlog: [] };
    const live = deps.outbox.peek(limit, { minSeq: Math.max(replayUntil, after.live) + 1 });
    const room = limit - live.length;
    if (room <= 0) return { live, backlog: [] };
    let allowance = room;
    if (options.replayRatePerSecond > 0) {
      const now = deps.now();
      replayTokens = Math.min(options.replayRatePerSecond, replayTokens + ((now - replayRefillMs) / 1000) * options.replayRatePerSecond);
      replayRefillMs = now;
      allowance = Math.min(room, Math.floor(replayTokens));
    }
    const backlog = allowance > 0 ? deps.outbox.peek(allowance, { minSeq: after.backlog + 1, maxSeq: replayUntil }) : [];
    if (options.replayRatePerSecond > 0) replayTokens -= backlog.length;
    return { live, backlog };
  }

  function toBatch(rows: { live: OutboxRow[]; backlog: OutboxRow[] }): Batch {
    return { ...rows, liveRecords: rows.live.map((r) => toRecord(r, false)), backlogRecords: rows.backlog.map((r) => toRecord(r, true)) };
  }

  /**
   * Reads and encodes the batch after `current` while Kafka works on `current`: a drain's reading and
   * encoding then overlap its round trips instead of adding to them. In slices, between which the
   * event loop serves the transaction in flight. Undefined when a failure or a stop made it moot.
   */
  async function prefetch(current: Batch, generation: number): Promise<Batch | undefined> {
    const next: Batch = { live: [], backlog: [], liveRecords: [], backlogRecords: [] };
    const cursor: Cursor = {
      live: current.live.length > 0 ? current.live[current.live.length - 1]!.seq : 0,
      backlog: current.backlog.length > 0 ? current.backlog[current.backlog.length - 1]!.seq : 0,
    };
    try {
      while (next.live.length + next.backlog.length < options.batchSize) {
        await new Promise((resolve) => setImmediate(resolve));
        if (!running || generation !== batchGeneration) return undefined;
        const slice = toBatch(takeBatch(Math.min(PREFETCH_SLICE, options.batchSize - next.live.length - next.backlog.length), cursor));
        if (slice.live.length + slice.backlog.length === 0) break;
        next.live.push(...slice.live);
        next.backlog.push(...slice.backlog);
        next.liveRecords.push(...slice.liveRecords);
        next.backlogRecords.push(...slice.backlogRecords);
        if (slice.live.length > 0) cursor.live = slice.live[slice.live.length - 1]!.seq;
        if (slice.backlog.length > 0) cursor.backlog = slice.backlog[slice.backlog.length - 1]!.seq;
      }
    } catch {
      // Taken again, and any error met again, on the loop's own path.
      return undefined;
    }
    return next;
  }

  function statusSend(): TopicRecords[] {
    if (!options.statusTopic) return [];
    const now = deps.now();
    if (!statusDue && now - lastStatusMs < options.statusIntervalMs) return [];
    return [{ topic: options.statusTopic, records: [{ key: options.gatewayId, value: Buffer.from(JSON.stringify(deps.statusReport())), timestampMs: now }] }];
  }

  async function run(): Promise<void> {
    while (running) {
      if (needsRecovery) {
        if (deps.prepare) {
          try {
            await deps.prepare();
          } catch (error) {
            if (abandoned) return;
            await failed(error, 'no schema id for the record values (registry unreachable or refusing, none cached); readings stay in the outbox');
            continue;
          }
          if (abandoned || !running) return;
        }
        try {
          await recover();
        } catch (error) {
          if (abandoned) return;
          await failed(error);
          continue;
        }
        if (abandoned || !running) return;
        // What waited through an outage (or a stop) is backlog, replayed behind fresh readings.
        const oldest = deps.outbox.depth().oldestReceivedMs;
        if (options.liveFirst && oldest !== null && deps.now() - oldest >= options.liveFirstAfterMs) {
          replayUntil = Math.max(replayUntil, deps.outbox.lastSeq());
        }
      }
      // Keeping up with what arrives: let it gather for lingerMs after the last transaction. A backlog
      // (a batch read ahead, or a full one waiting) goes at once.
      for (let waitMs = lingerLeft(); waitMs > 0; waitMs = lingerLeft()) await sleep(waitMs);
      if (abandoned || !running) return;
      const ahead = next;
      next = undefined;
      const prefetched = ahead ? await ahead.batch : undefined;
      if (abandoned || !running) return;
      const batch = prefetched && ahead!.generation === batchGeneration ? prefetched : toBatch(takeBatch(options.batchSize));
      const { live, backlog } = batch;
      const dead = options.deadLetterTopic ? deps.outbox.deadLetters(options.batchSize) : [];
      const deadRange: SeqRange | undefined = dead.length > 0 ? [dead[0]!.id, dead[dead.length - 1]!.id] : undefined;
      const commandStatuses = options.commandStatusTopic ? deps.outbox.commandStatuses(options.batchSize) : [];
      const commandStatusRange: SeqRange | undefined =
        commandStatuses.length > 0 ? [commandStatuses[0]!.id, commandStatuses[commandStatuses.length - 1]!.id] : undefined;
      const status = statusSend();
      if (live.length === 0 && backlog.length === 0 && dead.length === 0 && commandStatuses.length === 0 && status.length === 0) {
        if (deps.now() - lastProbeMs >= options.probeIntervalMs) {
          lastProbeMs = deps.now();
          try {
            await withTimeout('health probe', deps.admin.listTopics());
          } catch (error) {
            if (abandoned) return;
            await failed(error);
            continue;
          }
          if (abandoned) return;
        }
        setState('up');
        if (backlog.length === 0 && options.replayRatePerSecond > 0 && deps.outbox.peek(1, { maxSeq: replayUntil }).length > 0) {
          await sleep(Math.min(options.idlePollMs, 1000 / options.replayRatePerSecond));
        } else {
          await sleep(options.idlePollMs);
        }
        continue;
      }
      const ranges = [rangeOf(live), rangeOf(backlog)].filter((r): r is SeqRange => r !== undefined);
      const sends: TopicRecords[] = [
        { topic: options.topic, records: batch.backlogRecords.length > 0 ? [...batch.liveRecords, ...batch.backlogRecords] : batch.liveRecords },
        ...(dead.length > 0 ? [{ topic: options.deadLetterTopic, records: dead.map((d) => deadLetterRecord(d, options.gatewayId)) }] : []),
        ...(commandStatuses.length > 0
          ? [
              {
                topic: options.commandStatusTopic!,
                records: commandStatuses.map((c) => ({ key: c.containerId, value: c.value, headers: { gateway_id: options.gatewayId }, timestampMs: c.timeMs })),
              },
            ]
          : []),
        ...status,
      ];
      const marker: ProgressMarker | undefined =
        ranges.length > 0 || deadRange || commandStatusRange
          ? {
              groupId: progressGroup,
              topic: options.topic,
              partition: 0,
              offset: ranges.length > 0 ? ranges[ranges.length - 1]![1] : 0,
              metadata: encodeMarker(deps.outbox.epoch(), ranges, deadRange, commandStatusRange),
            }
          : undefined;
      inFlight = ranges;
      const startedMs = deps.now();
      try {
        // The previous transaction's removals reach the disk before this marker replaces its marker.
        await deps.outbox.durable();
        const committing = withTimeout('transaction', producer!.commit(sends, marker));
        // A full batch means more is waiting: read it meanwhile.
        if (live.length + backlog.length >= options.batchSize) next = { generation: batchGeneration, batch: prefetch(batch, batchGeneration) };
        await committing;
      } catch (error) {
        if (abandoned) return;
        await failed(error);
        continue;
      }
      if (abandoned) return;
      try {
        deps.outbox.removeDelivered({ ranges, deadLetters: deadRange, commandStatuses: commandStatusRange });
      } catch (error) {
        // Kafka has these rows but the outbox could not forget them (a full disk): sending more before
        // recovery has removed them would send them twice, so recover first.
        log.error({ err: error instanceof Error ? error.message : String(error) }, 'could not remove delivered rows from the outbox');
        await failed(error);
        continue;
      }
      inFlight = [];
      lastCommitMs = deps.now();
      if (status.length > 0) {
        lastStatusMs = deps.now();
        statusDue = false;
      }
      lastProbeMs = deps.now();
      backoffMs = options.minBackoffMs;
      setState('up');
      const sent = live.length + backlog.length;
      if (sent > 0) deps.onSent?.(sent, deps.now() - startedMs);
    }
  }

  async function stop(): Promise<void> {
    if (state === 'closed') return;
    running = false;
    wake?.();
    const deadlineMs = deps.now() + options.closeTimeoutMs;
    // The transaction in flight may commit; a hung broker must not hold up the stop for long.
    const finished = await settlesWithin(loop ?? Promise.resolve(), options.closeTimeoutMs);
    if (!finished) {
      abandoned = true;
      log.warn({ closeTimeoutMs: options.closeTimeoutMs }, 'uplink stopped before Kafka answered; the restart recovers it');
    }
    setState('closed');
    const last = producer;
    producer = undefined;
    // A clean disconnect is quick when Kafka answers; when it does not, the sockets go with the process.
    const disconnects = Promise.all([last?.close().catch(() => undefined), deps.admin.close().catch(() => undefined)]);
    await settlesWithin(disconnects, Math.max(MIN_DISCONNECT_WAIT_MS, deadlineMs - deps.now()));
  }

  return {
    start() {
      if (running || state === 'closed') return;
      running = true;
      loop = run();
    },
    notify() {
      wake?.();
    },
    state: () => state,
    inFlight: () => inFlight,
    replayUntilSeq: () => (deps.outbox.peek(1, { maxSeq: replayUntil }).length > 0 ? replayUntil : 0),
    close() {
      closing ??= stop();
      return closing;
    },
  };
}
