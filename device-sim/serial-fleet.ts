/**
 * Simulated reefers on serial lines: the fleet's reefers are spread round-robin over the ports, and
 * each port writes its reefers' readings in turn, one line each, the way a serial concentrator
 * multiplexes the containers wired to it.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { ReeferReading } from '../schemas/reefer-reading.js';
import { createPacer, simulatedClock, sleep, type Fleet, type FleetProgress, type FleetSummary } from './fleet.js';
import { createFleetModel, type Reefer } from './reefer-model.js';
import type { SerialFraming } from './serial-forms.js';
import { openSerialDevice as defaultOpen, type OpenSerialDevice, type SerialDevice } from './serial-transport.js';

export interface SerialFleetOptions {
  /** Ports to write to; reefer i writes on port i mod the number of ports. */
  paths: readonly string[];
  framing: SerialFraming;
  /** 9,600 by default. */
  baudRate?: number;
  devices: number;
  /** Readings per second across the whole fleet; 0 writes as fast as the ports take them. */
  ratePerSecond: number;
  countPerDevice?: number;
  durationMs?: number;
  seed: number;
  containerPrefix?: string;
  /** Attempts at opening a port (at start, and after it went away) before its reefers stop; 5 by default. */
  openAttempts?: number;
  /** Called for every reading written to its port. */
  onSent?: (reading: ReeferReading, containerId: string) => void;
}

const OPEN_BACKOFF_FIRST_MS = 250;
const OPEN_BACKOFF_MAX_MS = 5_000;

const sum = (values: Iterable<number>): number => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

export function createSerialFleet(options: SerialFleetOptions, deps: { openSerialDevice?: OpenSerialDevice } = {}): Fleet {
  if (options.paths.length === 0) throw new RangeError('paths: expected at least one serial port path, got none');
  const open = deps.openSerialDevice ?? defaultOpen;
  const openAttempts = options.openAttempts ?? 5;
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);

  const clock = simulatedClock(options, Date.now());
  const reefers = createFleetModel({
    devices: options.devices,
    seed: options.seed,
    containerPrefix: options.containerPrefix,
    startTimeMs: clock.startTimeMs,
    intervalMs: clock.intervalMs,
  });
  const takeSlot = options.ratePerSecond > 0 ? createPacer(options.ratePerSecond, abort.signal) : null;

  /** Open ports and the reefers on each: progress counts a reefer as connected while its port is open. */
  const live = new Map<SerialDevice, number>();
  const reefersOnOpenedPorts = new Map<string, number>();
  let sent = 0;
  let errors = 0;
  let lastError: string | null = null;
  let startedMs: number | null = null;
  let endedMs: number | null = null;
  let running: Promise<FleetSummary> | null = null;

  const countError = (error: unknown): void => {
    errors += 1;
    lastError = error instanceof Error ? error.message : String(error);
  };

  const snapshot = (connected: number): FleetProgress => {
    const ms = startedMs === null ? 0 : (endedMs ?? performance.now()) - startedMs;
    return {
      devices: options.devices,
      connected,
      sent,
      errors,
      elapsedMs: Math.round(ms),
      ratePerSecond: ms > 0 ? Math.round((sent / ms) * 1000 * 100) / 100 : 0,
      lastError,
    };
  };

  const openWithRetry = async (path: string): Promise<SerialDevice | null> => {
    let backoffMs = OPEN_BACKOFF_FIRST_MS;
    for (let attempt = 1; attempt <= openAttempts && !abort.signal.aborted; attempt++) {
      try {
        return await open({ path, framing: options.framing, baudRate: options.baudRate, csvHeader: true });
      } catch (error) {
        countError(error);
        if (attempt < openAttempts && !(await sleep(backoffMs, abort.signal))) break;
        backoffMs = Math.min(backoffMs * 2, OPEN_BACKOFF_MAX_MS);
      }
    }
    return null;
  };

  const runPort = async (path: string, onPort: Reefer[]): Promise<void> => {
    const remaining = new Map(onPort.map((r) => [r, options.countPerDevice ?? Number.POSITIVE_INFINITY]));
    let device: SerialDevice | null = null;
    try {
      while (!abort.signal.aborted && remaining.size > 0) {
        if (!device) {
          device = await openWithRetry(path);
          if (!device) return;
          reefersOnOpenedPorts.set(path, onPort.length);
          live.set(device, onPort.length);
        }
        for (const reefer of [...remaining.keys()]) {
          if (abort.signal.aborted) break;
          if (takeSlot && !(await takeSlot())) break;
          const reading = reefer.next();
          const left = remaining.get(reefer)! - 1;
          if (left > 0) remaining.set(reefer, left);
          else remaining.delete(reefer);
          try {
            await device.send(reading);
            sent += 1;
            options.onSent?.(reading, reefer.containerId);
          } catch (error) {
            // The port went away (or the reading cannot be written): that reading is lost, as on a real line.
            countError(error);
            if (!device.isOpen) {
              live.delete(device);
              await device.close();
              device = null;
              break;
            }
          }
        }
      }
    } finally {
      if (device) {
        live.delete(device);
        await device.close();
      }
    }
  };

  const run = async (): Promise<FleetSummary> => {
    startedMs = performance.now();
    const timer = options.durationMs === undefined ? null : setTimeout(() => abort.abort(), options.durationMs);
    try {
      await Promise.all(
        options.paths.map((path, p) =>
          runPort(
            path,
            reefers.filter((_, i) => i % options.paths.length === p),
          ).catch(countError),
        ),
      );
    } finally {
      if (timer) clearTimeout(timer);
      endedMs = performance.now();
    }
    return snapshot(sum(reefersOnOpenedPorts.values()));
  };

  return {
    run() {
      running ??= run();
      return running;
    },
    async stop() {
      abort.abort();
      if (running) await running;
    },
    progress: () => snapshot(sum(live.values())),
  };
}
