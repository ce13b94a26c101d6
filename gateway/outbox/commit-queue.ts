/**
 * Group commit: readings arriving close together share one outbox transaction, so durability costs
 * one fsync per batch rather than one per reading. Each caller's promise settles once its entry is
 * committed (or the commit failed), which is when a device may be acknowledged.
 */
import type { DeadLetterRow, NewRow, Outbox } from './sqlite-outbox.js';

export interface CommitQueueOptions {
  /** Longest an entry waits for companions before its batch is committed. */
  flushIntervalMs: number;
  /** A batch this large is committed at once. */
  maxBatch: number;
}

export interface CommitQueue {
  /** Resolves with the reading's sequence number once it is durable. */
  addReading(row: NewRow): Promise<number>;
  /** Resolves once the dead letter is durable. */
  addDeadLetter(row: DeadLetterRow): Promise<void>;
  /** Commits whatever is waiting now. */
  flush(): void;
  /** Called after each successful commit with the number of readings it made durable. */
  onCommit(listener: (readings: number) => void): void;
  close(): void;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function createCommitQueue(options: CommitQueueOptions, deps: { outbox: Outbox }): CommitQueue {
  let rows: NewRow[] = [];
  let rowWaiters: Waiter<number>[] = [];
  let dead: DeadLetterRow[] = [];
  let deadWaiters: Waiter<void>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const listeners: ((readings: number) => void)[] = [];

  function flush(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (rows.length === 0 && dead.length === 0) return;
    const batchRows = rows;
    const batchRowWaiters = rowWaiters;
    const batchDead = dead;
    const batchDeadWaiters = deadWaiters;
    rows = [];
    rowWaiters = [];
    dead = [];
    deadWaiters = [];
    let seqs: number[];
    try {
      seqs = deps.outbox.append(batchRows, batchDead);
    } catch (error) {
      for (const w of batchRowWaiters) w.reject(error);
      for (const w of batchDeadWaiters) w.reject(error);
      return;
    }
    for (let i = 0; i < batchRowWaiters.length; i++) batchRowWaiters[i]!.resolve(seqs[i]!);
    for (const w of batchDeadWaiters) w.resolve();
    if (batchRows.length > 0) for (const l of listeners) l(batchRows.length);
  }

  function schedule(): void {
    if (rows.length + dead.length >= options.maxBatch) flush();
    else if (!timer) timer = setTimeout(flush, options.flushIntervalMs);
  }

  return {
    addReading(row) {
      if (closed) return Promise.reject(new Error('outbox is closed'));
      return new Promise<number>((resolve, reject) => {
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
