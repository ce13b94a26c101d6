/**
 * One serial port devices write readings to, a line each: the only file that imports serialport.
 *
 * A serial line has no acknowledgement, so a line read is a line the gateway answers for: lines are
 * handed to the pipeline in the order they arrived, and the port is paused while the outbox commit
 * of what was read is pending, so the device (or the kernel's buffer) waits rather than the gateway
 * holding an unbounded backlog. A port that goes away (unplugged USB adapter, device power-cycled)
 * is reopened with capped, jittered backoff for as long as the gateway runs.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { SerialPort as NodeSerialPort } from 'serialport';
import type { DecodeResult, RejectReason } from '../pipeline/decode-reading.js';
import type { Ingest, IngestOutcome, IngestSource } from '../pipeline/ingest.js';
import {
  SERIAL_FRAMERS,
  createLineSplitter,
  isSkipped,
  rejectLineEvent,
  type LineEvent,
  type SerialFraming,
} from '../pipeline/serial-framers.js';

export interface SerialPortOptions {
  /** Device node, e.g. /dev/ttyUSB0; a /dev/serial/by-id/… link keeps its name across replugging. */
  path: string;
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  framing: SerialFraming;
  /** Longest line kept; a longer one is rejected as oversized and skipped up to its newline. */
  maxLineBytes: number;
  /** IANA zone of timestamps devices write without one. */
  timeZone: string;
  /** First wait before reopening a port that went away or could not be opened. */
  reopenMinMs: number;
  /** Longest wait between reopening attempts. */
  reopenMaxMs: number;
  /** How often the device node of an open port is checked for having vanished or changed. */
  presenceCheckMs: number;
}

export interface SerialPortDeps {
  logger: Logger;
  ingest: Pick<Ingest, 'ingestDecoded'>;
  now(): number;
  /** Jitter source, [0, 1). */
  random?: () => number;
}

export interface SerialPortStatus {
  path: string;
  framing: SerialFraming;
  /** up: open and being read; down: absent or failing, being reopened; closed: the gateway stopped. */
  state: 'up' | 'down' | 'closed';
  /** Complete lines read, oversized ones included. */
  lines: number;
  /** Lines stored in the outbox as readings. */
  accepted: number;
  /** Readings the outbox already held (a device that sent a reading twice). */
  duplicates: number;
  /** Lines (and cut-off partial lines) rejected and dead-lettered, by reason. */
  rejected: Partial<Record<RejectReason, number>>;
  /** CSV header rows and blank lines, which carry no reading. */
  skipped: number;
  /** Times the port came back after going down. */
  reopens: number;
  /** Failed attempts to open the port. */
  openErrors: number;
  /** Bytes of an unfinished line held until its newline arrives. */
  pendingBytes: number;
  /** Lines read and not yet durable. */
  waitingLines: number;
  lastError: string | null;
}

export interface SerialPortInput {
  /** Resolves after the first attempt to open the port; an absent port is retried in the background. */
  start(): Promise<void>;
  status(): SerialPortStatus;
  /** Stops reading, stores what was read (a cut-off line as partial-line), then closes the port. */
  close(): Promise<void>;
}

interface ReadLine {
  result: DecodeResult;
  raw: Buffer;
  receivedMs: number;
}

export function createSerialPort(options: SerialPortOptions, deps: SerialPortDeps): SerialPortInput {
  const log = deps.logger.child({ component: 'serial', path: options.path, framing: options.framing });
  const random = deps.random ?? Math.random;
  const decode = SERIAL_FRAMERS[options.framing];
  const splitter = createLineSplitter({ maxLineBytes: options.maxLineBytes });
  const from: IngestSource = { transport: 'serial', source: options.path };

  let port: NodeSerialPort | undefined;
  let state: SerialPortStatus['state'] = 'down';
  let lines = 0;
  let accepted = 0;
  let duplicates = 0;
  const rejected: Partial<Record<RejectReason, number>> = {};
  let skipped = 0;
  let reopens = 0;
  let openErrors = 0;
  let lastError: string | null = null;
  let everUp = false;
  let failingSince: number | undefined;
  /** An open failure was logged as a warning since the port was last up; more go to debug. */
  let failureWarned = false;
  let backoffMs = options.reopenMinMs;
  let reopenTimer: NodeJS.Timeout | undefined;
  let presenceTimer: NodeJS.Timeout | undefined;
  let opening: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  /** Lines read and not yet durable, in the order they arrived. */
  const waiting: ReadLine[] = [];
  /** Lines handed to the pipeline whose commit is pending. */
  let storing = 0;
  let draining: Promise<void> | undefined;
  let wakeRetry: (() => void) | undefined;

  const noteError = (error: unknown): string => (lastError = error instanceof Error ? error.message : String(error));

  function accept(event: LineEvent, receivedMs: number): void {
    let result: DecodeResult;
    if (event.kind === 'line') {
      lines += 1;
      const decoded = decode(event.bytes, { timeZone: options.timeZone, nowMs: receivedMs, maxPayloadBytes: options.maxLineBytes });
      if (isSkipped(decoded)) {
        skipped += 1;
        return;
      }
      result = decoded;
    } else {
      if (event.kind === 'oversized') lines += 1;
      result = rejectLineEvent(event);
    }
    waiting.push({ result, raw: event.bytes, receivedMs });
  }

  function count(outcome: IngestOutcome): void {
    if (!outcome.accepted) rejected[outcome.reason] = (rejected[outcome.reason] ?? 0) + 1;
    else if ('duplicate' in outcome) duplicates += 1;
    else accepted += 1;
  }

  function retryPause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wakeRetry = undefined;
        resolve();
      }
      wakeRetry = done;
    });
  }

  /**
   * Stores lines in order. They are handed over together, so one commit covers them, and the
   * pipeline queues each one as it is handed over, which keeps their order in the outbox. A failed
   * commit (a full disk, say) is retried while the port stays paused: a line read is never dropped
   * while the gateway runs.
   */
  async function store(batch: ReadLine[]): Promise<void> {
    let pending = batch;
    let retryMs = options.reopenMinMs;
    for (;;) {
      storing = pending.length;
      const outcomes = await Promise.allSettled(pending.map((l) => deps.ingest.ingestDecoded(l.result, l.raw, from, l.receivedMs)));
      storing = 0;
      const failed: ReadLine[] = [];
      outcomes.forEach((o, i) => {
        if (o.status === 'fulfilled') count(o.value);
        else {
          noteError(o.reason);
          failed.push(pending[i]!);
        }
      });
      if (failed.length === 0) return;
      if (closing) {
        log.error({ err: lastError, lines: failed.length }, 'lines read from the port could not be stored before the gateway stopped');
        return;
      }
      log.error({ err: lastError, lines: failed.length, retryInMs: retryMs }, 'lines not stored; retrying with the port paused');
      await retryPause(retryMs);
      retryMs = Math.min(options.reopenMaxMs, retryMs * 2);
      pending = failed;
    }
  }

  function drain(): void {
    if (draining || waiting.length === 0) return;
    port?.pause();
    draining = (async () => {
      try {
        while (waiting.length > 0) await store(waiting.splice(0));
      } finally {
        draining = undefined;
        if (port && !closing) port.resume();
      }
    })();
  }

  function onData(chunk: Buffer): void {
    const receivedMs = deps.now();
    for (const event of splitter.push(chunk)) accept(event, receivedMs);
    drain();
  }

  /** Hands over what the stream already read but has not emitted while paused: those lines were read. */
  function takeBuffered(p: NodeSerialPort): void {
    // In paused mode read() emits each chunk it returns as 'data', so onData receives it.
    while (p.read() !== null);
  }

  /** The open port `p` failed or closed under us. */
  function lost(p: NodeSerialPort, error: unknown): void {
    if (p !== port) return;
    takeBuffered(p);
    port = undefined;
    clearInterval(presenceTimer);
    presenceTimer = undefined;
    state = 'down';
    failingSince = deps.now();
    // The warning below covers the reopening attempts that fail while the device is away.
    failureWarned = true;
    const cut = splitter.end();
    if (cut) accept(cut, deps.now());
    drain();
    log.warn({ err: noteError(error ?? 'closed'), cutBytes: cut?.bytes.length ?? 0 }, 'serial port went away; reopening when it is back');
    scheduleReopen();
  }

  /**
   * Watches the device node while the port is open. A USB adapter that is pulled fails the next read,
   * which serialport reports; but a pseudo-terminal whose other end closed reads as end of file, which
   * serialport retries without end and never reports. A node that vanished, or that now names another
   * device (replugged between two checks), means the port is gone either way.
   */
  function watchPresence(p: NodeSerialPort): void {
    let opened: { rdev: number; ino: number } | undefined;
    const check = async (): Promise<void> => {
      let now: { rdev: number; ino: number };
      try {
        const s = await stat(options.path);
        now = { rdev: s.rdev, ino: s.ino };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') gone(p, `device node ${options.path} is gone`);
        return;
      }
      opened ??= now;
      if (now.rdev !== opened.rdev || now.ino !== opened.ino) gone(p, `device node ${options.path} now names another device`);
    };
    void check();
    presenceTimer = setInterval(() => void check(), options.presenceCheckMs);
  }

  function gone(p: NodeSerialPort, why: string): void {
    if (p !== port) return;
    lost(p, new Error(why));
    if (p.isOpen) p.close(() => undefined);
  }

  function scheduleReopen(): void {
    if (closing || reopenTimer) return;
    // Equal jitter: ports behind one USB hub that vanished together are not all retried in one instant.
    const delayMs = backoffMs / 2 + random() * (backoffMs / 2);
    backoffMs = Math.min(options.reopenMaxMs, backoffMs * 2);
    reopenTimer = setTimeout(() => {
      reopenTimer = undefined;
      if (!closing) opening = open();
    }, delayMs);
  }

  function open(): Promise<void> {
    return new Promise<void>((resolve) => {
      const p = new NodeSerialPort({
        path: options.path,
        baudRate: options.baudRate,
        dataBits: options.dataBits,
        parity: options.parity,
        stopBits: options.stopBits,
        autoOpen: false,
      });
      p.open((error) => {
        if (error) {
          openErrors += 1;
          failingSince ??= deps.now();
          noteError(error);
          if (failureWarned) log.debug({ err: lastError }, 'serial port still cannot be opened');
          else log.warn({ err: lastError }, 'serial port cannot be opened; retrying');
          failureWarned = true;
          scheduleReopen();
          resolve();
          return;
        }
        if (closing) {
          p.close(() => resolve());
          return;
        }
        port = p;
        state = 'up';
        backoffMs = options.reopenMinMs;
        const downForMs = failingSince === undefined ? 0 : deps.now() - failingSince;
        failingSince = undefined;
        failureWarned = false;
        if (everUp) {
          reopens += 1;
          log.info({ reopens, downForMs }, 'serial port back');
        } else {
          log.info({ baudRate: options.baudRate, downForMs }, 'serial port open');
        }
        everUp = true;
        // Lines from before the port went away may still be committing; new ones wait behind them.
        if (draining) p.pause();
        p.on('data', onData);
        p.on('close', (closeError: unknown) => lost(p, closeError ?? 'port closed'));
        watchPresence(p);
        p.on('error', (readError: unknown) => {
          if (p.isOpen) {
            noteError(readError);
            p.close();
          } else {
            lost(p, readError);
          }
        });
        resolve();
      });
    });
  }

  return {
    start() {
      if (opening || closing) return opening ?? Promise.resolve();
      opening = open();
      return opening;
    },
    status: () => ({
      path: options.path,
      framing: options.framing,
      state,
      lines,
      accepted,
      duplicates,
      rejected: { ...rejected },
      skipped,
      reopens,
      openErrors,
      pendingBytes: splitter.pendingBytes(),
      waitingLines: waiting.length + storing,
      lastError,
    }),
    close() {
      closing ??= (async () => {
        clearTimeout(reopenTimer);
        reopenTimer = undefined;
        await opening;
        clearInterval(presenceTimer);
        presenceTimer = undefined;
        const p = port;
        if (p) takeBuffered(p);
        port = undefined;
        state = 'closed';
        if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
        const cut = splitter.end();
        if (cut) accept(cut, deps.now());
        wakeRetry?.();
        drain();
        while (draining) await draining;
        log.info({ lines, accepted, skipped }, 'serial port closed');
      })();
      return closing;
    },
  };
}
