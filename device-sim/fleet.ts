import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { ReeferReading } from '../schemas/reefer-reading.js';
import { connectDevice as mqttConnectDevice, type ConnectDevice, type DeviceConnection, type Qos } from './mqtt-transport.js';
import { encodePayload, isPayloadForm, telemetryTopic, type PayloadForm } from './payload-forms.js';
import { createFleetModel, DEFAULT_INTERVAL_MS, type Reefer } from './reefer-model.js';

export interface FleetOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883. */
  mqttUrl: string;
  devices: number;
  /** Readings per second across the whole fleet; 0 publishes as fast as acknowledgements allow. */
  ratePerSecond: number;
  /** Readings each device sends before it stops; unbounded when absent. */
  countPerDevice?: number;
  /** Wall time after which the fleet stops; unbounded when absent. */
  durationMs?: number;
  seed: number;
  qos: Qos;
  form: PayloadForm;
  /** Container ids are the prefix and a zero-padded number; 'C' by default. */
  containerPrefix?: string;
  /** Publishes a device may have unacknowledged at once; 10 by default. */
  maxInFlightPerDevice?: number;
  /** Devices connect spread evenly over this window, sparing the broker a connection storm; 0 by default. */
  connectSpreadMs?: number;
  /** Simulated time of every device's first reading; by default see simulatedClock(). */
  startTimeMs?: number;
  /** Simulated time between a device's readings; by default the wall-clock pace when paced, else 5 minutes. */
  intervalMs?: number;
  /** Attempts at a device's first connection before it gives up; 5 by default. */
  connectAttempts?: number;
  /** Called for every reading the broker acknowledged (or, at QoS 0, that was written). */
  onSent?: (reading: ReeferReading, containerId: string) => void;
}

export interface FleetDeps {
  connectDevice?: ConnectDevice;
}

export interface FleetProgress {
  devices: number;
  /** Devices whose connection is up (in a summary: devices that connected at all). */
  connected: number;
  /** Readings acknowledged. */
  sent: number;
  /** Failed connection attempts and failed publishes. */
  errors: number;
  elapsedMs: number;
  /** Readings acknowledged per second since the run started. */
  ratePerSecond: number;
  /** The most recent error's message, to tell a refused connection from a rejected publish. */
  lastError: string | null;
}

export type FleetSummary = FleetProgress;

export interface Fleet {
  /** Runs until every device sent its count, the duration ends or stop() is called. Errors are counted, not thrown. */
  run(): Promise<FleetSummary>;
  /** Stops publishing, waits (bounded) for outstanding acknowledgements and disconnects. Safe to call twice. */
  stop(): Promise<void>;
  progress(): FleetProgress;
}

const CONNECT_BACKOFF_FIRST_MS = 250;
const CONNECT_BACKOFF_MAX_MS = 5_000;

function checkOptions(o: FleetOptions): void {
  const fail = (key: string, expected: string, got: unknown): never => {
    throw new RangeError(`${key}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  const positiveInt = (v: number | undefined): boolean => v === undefined || (Number.isInteger(v) && v > 0);
  if (!positiveInt(o.devices)) fail('devices', 'a positive integer', o.devices);
  if (!(Number.isFinite(o.ratePerSecond) && o.ratePerSecond >= 0)) fail('ratePerSecond', 'a number ≥ 0', o.ratePerSecond);
  if (!positiveInt(o.countPerDevice)) fail('countPerDevice', 'a positive integer', o.countPerDevice);
  if (o.durationMs !== undefined && !(o.durationMs > 0)) fail('durationMs', 'a positive number', o.durationMs);
  if (![0, 1, 2].includes(o.qos)) fail('qos', '0, 1 or 2', o.qos);
  if (!isPayloadForm(o.form)) fail('form', 'a payload form', o.form);
  if (!positiveInt(o.maxInFlightPerDevice)) fail('maxInFlightPerDevice', 'a positive integer', o.maxInFlightPerDevice);
  if (!positiveInt(o.connectAttempts)) fail('connectAttempts', 'a positive integer', o.connectAttempts);
}

/** Resolves true after ms, or false as soon as the signal aborts (clearing the timer). */
async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/**
 * Hands out publish slots 1/rate apart across the whole fleet. A fleet that falls behind does not
 * burst to catch up: the schedule restarts from now.
 */
function createPacer(ratePerSecond: number, signal: AbortSignal): () => Promise<boolean> {
  const gapMs = 1000 / ratePerSecond;
  let nextSlotMs = performance.now();
  return async () => {
    const now = performance.now();
    const slotMs = Math.max(now, nextSlotMs);
    nextSlotMs = slotMs + gapMs;
    // Timers do not fire sooner than 1 ms; waiting less would only add jitter.
    return slotMs - now >= 1 ? sleep(slotMs - now, signal) : !signal.aborted;
  };
}

/**
 * Where each device's simulated clock starts and how fast it runs. Gateways reject readings from the
 * future, so by default a paced fleet keeps its clock in step with the wall clock, and an unpaced
 * fleet with a count ends its readings at the present.
 */
export function simulatedClock(
  options: Pick<FleetOptions, 'devices' | 'ratePerSecond' | 'countPerDevice' | 'startTimeMs' | 'intervalMs'>,
  nowMs: number,
): { startTimeMs: number; intervalMs: number } {
  const nowS = Math.floor(nowMs / 1000) * 1000;
  const intervalMs = options.intervalMs ?? (options.ratePerSecond > 0 ? (options.devices / options.ratePerSecond) * 1000 : DEFAULT_INTERVAL_MS);
  if (options.startTimeMs !== undefined) return { startTimeMs: options.startTimeMs, intervalMs };
  if (options.ratePerSecond > 0) return { startTimeMs: nowS, intervalMs };
  const readings = options.countPerDevice ?? UNPACED_HISTORY_READINGS;
  return { startTimeMs: nowS - readings * intervalMs, intervalMs };
}

/** Readings of history an unpaced, unbounded fleet starts with before it reaches the present. */
const UNPACED_HISTORY_READINGS = 7 * 288;

/** A fleet of simulated reefers, each publishing its readings in order on its own MQTT connection. */
export function createFleet(options: FleetOptions, deps: FleetDeps = {}): Fleet {
  checkOptions(options);
  const connect = deps.connectDevice ?? mqttConnectDevice;
  const maxInFlight = options.maxInFlightPerDevice ?? 10;
  const connectAttempts = options.connectAttempts ?? 5;
  const connectSpreadMs = options.connectSpreadMs ?? 0;

  const abort = new AbortController();
  // Every waiting device listens to this one signal.
  setMaxListeners(0, abort.signal);
  let signalStop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (signalStop = resolve));
  const onAbort = (): void => signalStop();
  abort.signal.addEventListener('abort', onAbort, { once: true });

  const clock = simulatedClock(options, Date.now());
  const reefers: Reefer[] = createFleetModel({
    devices: options.devices,
    seed: options.seed,
    containerPrefix: options.containerPrefix,
    startTimeMs: clock.startTimeMs,
    intervalMs: clock.intervalMs,
  });
  const takeSlot = options.ratePerSecond > 0 ? createPacer(options.ratePerSecond, abort.signal) : null;

  const live = new Set<DeviceConnection>();
  let connectedEver = 0;
  let sent = 0;
  let errors = 0;
  let lastError: string | null = null;
  let startedMs: number | null = null;
  let endedMs: number | null = null;
  let running: Promise<FleetSummary> | null = null;

  const elapsedMs = (): number => (startedMs === null ? 0 : (endedMs ?? performance.now()) - startedMs);

  const snapshot = (connected: number): FleetProgress => {
    const ms = elapsedMs();
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

  const countError = (error: unknown): void => {
    errors += 1;
    lastError = error instanceof Error ? error.message : String(error);
  };

  const connectWithRetry = async (containerId: string): Promise<DeviceConnection | null> => {
    let backoffMs = CONNECT_BACKOFF_FIRST_MS;
    for (let attempt = 1; attempt <= connectAttempts && !abort.signal.aborted; attempt++) {
      try {
        return await connect({ url: options.mqttUrl, clientId: containerId, qos: options.qos });
      } catch (error) {
        countError(error);
        if (attempt < connectAttempts && !(await sleep(backoffMs, abort.signal))) break;
        backoffMs = Math.min(backoffMs * 2, CONNECT_BACKOFF_MAX_MS);
      }
    }
    return null;
  };

  const runDevice = async (reefer: Reefer, index: number): Promise<void> => {
    if (!(await sleep((index * connectSpreadMs) / options.devices, abort.signal))) return;
    const connection = await connectWithRetry(reefer.containerId);
    if (!connection) return;
    if (abort.signal.aborted) {
      await connection.close();
      return;
    }
    connectedEver += 1;
    live.add(connection);

    const topic = telemetryTopic(reefer.containerId);
    const inFlight = new Set<Promise<void>>();
    let attempted = 0;
    try {
      while (!abort.signal.aborted && (options.countPerDevice === undefined || attempted < options.countPerDevice)) {
        if (inFlight.size >= maxInFlight) await Promise.race([...inFlight, stopped]);
        if (abort.signal.aborted || inFlight.size >= maxInFlight) continue;
        if (takeSlot && !(await takeSlot())) break;

        const reading = reefer.next();
        attempted += 1;
        const publishing: Promise<void> = connection
          .publish(topic, encodePayload(reading, options.form))
          .then(() => {
            sent += 1;
            options.onSent?.(reading, reefer.containerId);
          })
          // A failed publish, or an onSent hook that throws, is counted; the device carries on.
          .catch(countError)
          .finally(() => inFlight.delete(publishing));
        inFlight.add(publishing);
      }
    } finally {
      // close() lets outstanding publishes finish (bounded) and fails the rest, so this settles.
      await connection.close();
      await Promise.all([...inFlight]);
      live.delete(connection);
    }
  };

  const run = async (): Promise<FleetSummary> => {
    startedMs = performance.now();
    const durationTimer =
      options.durationMs === undefined ? null : setTimeout(() => abort.abort(), options.durationMs);
    try {
      // A device that fails unexpectedly (a reading that cannot be encoded) ends alone and is counted.
      await Promise.all(reefers.map((reefer, i) => runDevice(reefer, i).catch(countError)));
    } finally {
      if (durationTimer) clearTimeout(durationTimer);
      endedMs = performance.now();
      abort.signal.removeEventListener('abort', onAbort);
      signalStop();
    }
    return snapshot(connectedEver);
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
    progress() {
      let up = 0;
      for (const c of live) if (c.connected) up += 1;
      return snapshot(up);
    },
  };
}
