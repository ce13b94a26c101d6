/**
 * Group commit: readings arriving close together share one outbox transaction, so durability costs
 * one fsync per batch rather than one per reading. Each caller's promise settles once its entry is
 * committed and on disk (or the commit failed), which is when a device may be acknowledged.
 */
import type { DeadLetterRow, LedgerEntry, NewRow, Outbox } from './sqlite-outbox.js';

export interface CommitQueueOptions {
  /** Longest an entry waits for companions before its batch is committed. */
  flushIntervalMs: number;
  /** A batch this large is committed at once. */
  maxBatch: number;
}

export interface CommitQueue {
  /**
   * Resolves with the reading's sequence number once it is durable, or with null when the same
   * reading (container id and measurement time) was stored before: a device's resend.
   */
  addReading(row: NewRow): Promise<number | null>;
  /** Resolves once the dead letter is durable. */
  addDeadLetter(row: DeadLetterRow): Promise<void>;
  /** Ledger counts ride along with the next commit. */
  addLedger(entries: readonly LedgerEntry[]): void;
  /** Commits whatever is waiting now. */
  flush(): void;
  /** Called after each successful commit with the number of readings it made durable. */
  onCommit(listener: (readings: number) => void): void;
  close(): void;
}

const SYNC_LATER = { syncLater: true } as const;

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

export interface CommitQueueDeps {
  outbox: Outbox;
  /**
   * Called when a commit failed (a full disk, say). Returning true retries the commit once, after the
   * handler made room; otherwise every entry of the batch fails and its device is not acknowledged.
   */
  onAppendError?(error: unknown, entries: number): boolean;
}

export function createCommitQueue(options: CommitQueueOptions, deps: CommitQueueDeps): CommitQueue {
  let rows: NewRow[] = [];
  let rowWaiters: Waiter<number | null>[] = [];
  let ledger: LedgerEntry[] = [];
  let dead: DeadLetterRow[] = [];
  let deadWaiters: Waiter<void>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  /** Settles once the last committed batch has been acknowledged (or failed). */
  let acknowledged: Promise<unknown> = Promise.resolve();
  const listeners: ((readings: number) => void)[] = [];

  function flush(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (rows.length === 0 && dead.length === 0 && ledger.length === 0) return;
    const batchRows = rows;
    const batchRowWaiters = rowWaiters;
    const batchDead = dead;
    const batchDeadWaiters = deadWaiters;
    const batchLedger = ledger;
    ledger = [];
    rows = [];
    rowWaiters = [];
    dead = [];
    deadWaiters = [];
    let seqs: (number | null)[];
    try {
      seqs = appendOrRetry(batchRows, batchDead, batchLedger);
    } catch (error) {
      for (const w of batchRowWaiters) w.reject(error);
      for (const w of batchDeadWaiters) w.reject(error);
      return;
    }
    // Committed; acknowledged once on disk. The next batch may commit while this one is synced, but
    // batches are acknowledged in the order they were committed.
    const synced = deps.outbox.durable();
    const inOrder = Promise.allSettled([acknowledged, synced]).then(() => synced);
    acknowledged = inOrder.catch(() => undefined);
    inOrder.then(
      () => {
        for (let i = 0; i < batchRowWaiters.length; i++) batchRowWaiters[i]!.resolve(seqs[i]!);
        for (const w of batchDeadWaiters) w.resolve();
        if (batchRows.length > 0) for (const l of listeners) l(batchRows.length);
      },
      (error: unknown) => {
        for (const w of batchRowWaiters) w.reject(error);
        for (const w of batchDeadWaiters) w.reject(error);
      },
    );
  }

  function appendOrRetry(batchRows: NewRow[], batchDead: DeadLetterRow[], batchLedger: LedgerEntry[]): (number | null)[] {
    try {
      return deps.outbox.append(batchRows, batchDead, batchLedger, SYNC_LATER).seqs;
    } catch (error) {
      if (!deps.onAppendError?.(error, batchRows.length + batchDead.length)) throw error;
      return deps.outbox.append(batchRows, batchDead, batchLedger, SYNC_LATER).seqs;
    }
  }

  function schedule(): void {
    if (rows.length + dead.length >= options.maxBatch) flush();
    else if (!timer) timer = setTimeout(flush, options.flushIntervalMs);
  }

  return {
    addReading(row) {
      if (closed) return Promise.reject(new Error('outbox is closed'));
      return new Promise<number | null>((resolve, reject) => {
        rows.push(row);
        rowWaiters.push({ resolve, reject });
        schedule();
      });
    },
    addDeadLetter(row) {
      if (closed) return Promise.reject(new Error('outbox is closed'));
      return new Promise<void>((resolve, reject) => {
        dead.push(row);
        deadWaiters.push({ resolve, reject });
        schedule();
      });
    },
    addLedger(entries) {
      ledger.push(...entries);
      schedule();
    },
    flush,
    onCommit(listener) {
      listeners.push(listener);
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
    },
  };
}
