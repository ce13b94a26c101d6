import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { ReeferReading } from '../schemas/reefer-reading.js';
import { createDeviceCommandHandler, type DeviceCommandAck } from './device-commands.js';
import { createMqttTransport, type DeviceGroup, type DeviceLink, type DeviceTransport } from './device-transport.js';
import { jitteredBackoffMs, type ConnectDevice, type Qos } from './mqtt-transport.js';
import { isPayloadForm, type PayloadForm } from './payload-forms.js';
import {
  createFleetModel,
  DEFAULT_INTERVAL_MS,
  fleetContainerIds,
  type FailureWindow,
  type ReadingLabel,
  type Reefer,
  type ReferenceFailureMode,
} from './reefer-model.js';
import { resolveScenario, type Scenario } from './scenario.js';

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
  /**
   * Devices connect spread evenly over this window, sparing the broker a connection storm;
   * DEFAULT_CONNECT_SPREAD_MS_PER_DEVICE per device by default (10 s for 10,000 devices).
   */
  connectSpreadMs?: number;
  /** Simulated time of every device's first reading; by default see simulatedClock(). */
  startTimeMs?: number;
  /** Simulated time between a device's readings; by default the wall-clock pace when paced, else 5 minutes. */
  intervalMs?: number;
  /** A paced fleet's simulated time runs this many times faster than the wall clock; see timeScaledClock(). */
  timeScale?: number;
  /** Failures to inject; none by default. */
  scenario?: Scenario;
  /** Attempts at a device's first connection before it gives up; 5 by default. */
  connectAttempts?: number;
  /**
   * Called for every reading the broker acknowledged (or, at QoS 0, that was written), with its label:
   * the failure active when it was taken.
   */
  onSent?: (reading: ReeferReading, containerId: string, label: ReadingLabel) => void;
  /**
   * Devices subscribe to their commands (on links that can) and obey them: a setpoint moves the
   * target temperature, a defrost starts one, maintenance repairs a random failure. Off by default.
   */
  commands?: boolean;
  /** Called once per command a device applied or rejected (repeats after a redelivery are not). */
  onCommand?: (containerId: string, command: { commandId: string; kind: string; targetTemperature?: number }, ack: DeviceCommandAck) => void;
}

export interface FleetDeps {
  /** Connects the devices of the default MQTT transport (mqttUrl, qos, form). */
  connectDevice?: ConnectDevice;
  /**
   * A mixed fleet: devices in fleet order, group by group, each on its own transport (MQTT, serial, …).
   * The counts add up to `devices`. By default every device uses MQTT.
   */
  transports?: readonly DeviceGroup[];
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
  /**
   * Readings acknowledged while their container was failing, per failure mode (modes seen only);
   * absent from runners that inject no failures.
   */
  failureReadings?: Partial<Record<ReferenceFailureMode, number>>;
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
export const DEFAULT_CONNECT_SPREAD_MS_PER_DEVICE = 1;

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
  if (o.connectSpreadMs !== undefined && !(Number.isFinite(o.connectSpreadMs) && o.connectSpreadMs >= 0)) {
    fail('connectSpreadMs', 'a number ≥ 0', o.connectSpreadMs);
  }
  if (o.timeScale !== undefined) {
    if (!(Number.isFinite(o.timeScale) && o.timeScale > 0)) fail('timeScale', 'a number > 0', o.timeScale);
    if (!(o.ratePerSecond > 0)) fail('timeScale', 'a paced fleet (ratePerSecond > 0)', o.ratePerSecond);
  }
}

function checkGroups(groups: readonly DeviceGroup[], devices: number): void {
  const total = groups.reduce((sum, g) => sum + g.devices, 0);
  if (!groups.every((g) => Number.isInteger(g.devices) && g.devices > 0) || total !== devices) {
    throw new RangeError(
      `transports: expected groups of positive device counts adding up to devices (${devices}), got ${JSON.stringify(groups.map((g) => `${g.transport.kind}×${g.devices}`))}`,
    );
  }
}

/** Resolves true after ms, or false as soon as the signal aborts (clearing the timer). */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
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
export function createPacer(ratePerSecond: number, signal: AbortSignal): () => Promise<boolean> {
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

/**
 * The clock of a paced fleet whose simulated time runs `timeScale` times faster than the wall clock.
 * With a count or a duration it starts in the past, so its last readings land at the present; without
 * either it starts now and overtakes the present (a gateway rejects readings over 24 h ahead, which
 * happens after 24 h / (timeScale − 1) of wall time).
 */
export function timeScaledClock(
  options: Pick<FleetOptions, 'devices' | 'ratePerSecond' | 'countPerDevice' | 'durationMs' | 'startTimeMs' | 'intervalMs'> & {
    timeScale: number;
  },
  nowMs: number,
): { startTimeMs: number; intervalMs: number } {
  const nowS = Math.floor(nowMs / 1000) * 1000;
  const paceMs = (options.devices / options.ratePerSecond) * 1000;
  const intervalMs = options.intervalMs ?? paceMs * options.timeScale;
  if (options.startTimeMs !== undefined) return { startTimeMs: options.startTimeMs, intervalMs };
  const readings = options.countPerDevice ?? (options.durationMs === undefined ? 0 : Math.ceil(options.durationMs / paceMs));
  return { startTimeMs: nowS - readings * intervalMs, intervalMs };
}

/**
 * A fleet of simulated reefers, each sending its readings in order on its own link: an MQTT
 * connection by default, or whatever transport its group in `deps.transports` gives it.
 */
export function createFleet(options: FleetOptions, deps: FleetDeps = {}): Fleet {
  checkOptions(options);
  const groups: readonly DeviceGroup[] = deps.transports ?? [
    {
      transport: createMqttTransport({ url: options.mqttUrl, qos: options.qos, form: options.form }, { connectDevice: deps.connectDevice }),
      devices: options.devices,
    },
  ];
  checkGroups(groups, options.devices);
  const transportOf: DeviceTransport[] = groups.flatMap((g) => Array.from({ length: g.devices }, () => g.transport));
  const maxInFlight = options.maxInFlightPerDevice ?? 10;
  const connectAttempts = options.connectAttempts ?? 5;
  const connectSpreadMs = options.connectSpreadMs ?? options.devices * DEFAULT_CONNECT_SPREAD_MS_PER_DEVICE;

  const abort = new AbortController();
  // Every waiting device listens to this one signal.
  setMaxListeners(0, abort.signal);
  let signalStop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (signalStop = resolve));
  const onAbort = (): void => signalStop();
  abort.signal.addEventListener('abort', onAbort, { once: true });

  const clock =
    options.timeScale === undefined
      ? simulatedClock(options, Date.now())
      : timeScaledClock({ ...options, timeScale: options.timeScale }, Date.now());
  const scenario = options.scenario
    ? resolveScenario(options.scenario, {
        containerIds: fleetContainerIds(options.devices, options.containerPrefix),
        seed: options.seed,
        startTimeMs: clock.startTimeMs,
        intervalMs: clock.intervalMs,
      })
    : { failures: new Map<string, FailureWindow[]>(), random: undefined };
  const reefers: Reefer[] = createFleetModel({
    devices: options.devices,
    seed: options.seed,
    containerPrefix: options.containerPrefix,
    startTimeMs: clock.startTimeMs,
    intervalMs: clock.intervalMs,
    failures: scenario.failures,
    randomFailures: scenario.random,
  });
  const takeSlot = options.ratePerSecond > 0 ? createPacer(options.ratePerSecond, abort.signal) : null;

  const live = new Set<DeviceLink>();
  const failureReadings: Partial<Record<ReferenceFailureMode, number>> = {};
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
      failureReadings: { ...failureReadings },
    };
  };

  const countError = (error: unknown): void => {
    errors += 1;
    lastError = error instanceof Error ? error.message : String(error);
  };

  const connectWithRetry = async (transport: DeviceTransport, containerId: string): Promise<DeviceLink | null> => {
    for (let attempt = 1; attempt <= connectAttempts && !abort.signal.aborted; attempt++) {
      try {
        return await transport.open(containerId);
      } catch (error) {
        countError(error);
        const backoffMs = jitteredBackoffMs(attempt - 1, CONNECT_BACKOFF_FIRST_MS, CONNECT_BACKOFF_MAX_MS);
        if (attempt < connectAttempts && !(await sleep(backoffMs, abort.signal))) break;
      }
    }
    return null;
  };

  const runDevice = async (reefer: Reefer, index: number): Promise<void> => {
    if (!(await sleep((index * connectSpreadMs) / options.devices, abort.signal))) return;
    const connection = await connectWithRetry(transportOf[index]!, reefer.containerId);
    if (!connection) return;
    if (abort.signal.aborted) {
      await connection.close();
      return;
    }
    connectedEver += 1;
    live.add(connection);
    if (options.commands && connection.listenForCommands) {
      const handler = createDeviceCommandHandler(reefer, { onApplied: (command, ack) => options.onCommand?.(reefer.containerId, command, ack) });
      // A device that cannot subscribe still sends its readings; the failure is counted.
      await connection.listenForCommands((payload) => handler.handle(payload)).catch(countError);
    }

    const inFlight = new Set<Promise<void>>();
    let attempted = 0;
    try {
      while (!abort.signal.aborted && (options.countPerDevice === undefined || attempted < options.countPerDevice)) {
        if (inFlight.size >= maxInFlight) await Promise.race([...inFlight, stopped]);
        if (abort.signal.aborted || inFlight.size >= maxInFlight) continue;
        if (takeSlot && !(await takeSlot())) break;

        const { reading, label } = reefer.sample();
        attempted += 1;
        const publishing: Promise<void> = connection
          .send(reading)
          .then(() => {
            sent += 1;
            if (label.failure !== 'none') failureReadings[label.failure] = (failureReadings[label.failure] ?? 0) + 1;
            options.onSent?.(reading, reefer.containerId, label);
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
