/**
 * The reference anomaly detector, pure: one reading and its container's state in, the alerts it
 * raises and the container's next state out. No I/O; analytics-service.ts feeds it from Kafka and
 * keeps the states in a changelog topic.
 *
 * - Each rule a reading breaks (reefer-rules.ts) is one anomaly, emitted as `ContainerAnomaly`.
 * - At `maintenanceThreshold` anomalies (3, the reference's figure) the container gets one
 *   `MaintenanceNeeded`. After `quietReadingsToReset` readings without an anomaly the episode is
 *   over: the count starts again, and a later failure calls for maintenance again.
 * - A reading is counted once: the state remembers the identities of the last `seenWindow` readings,
 *   both `(gateway_id, seq)` and `(container, measurement_time)`, and a repeat of either is skipped.
 *   A reading older than every time remembered cannot be told from a repeat once the window has
 *   moved on, so it is skipped too (reported as `too-late`), which keeps the "never twice" promise.
 * - A cold chain broken for another 10 readings after a violation is another violation.
 * - Readings arriving out of order (a gateway's backlog drained after fresher readings) are checked
 *   against the per-reading rules (CO2, O2, temperature) but do not feed the rules over consecutive
 *   readings (power off, cold chain), which follow the newest reading.
 */
import type { ContainerAnomaly, MaintenanceNeeded, ReeferAlert } from './alerts.js';
import { parseJsonObject } from './json-value.js';
import { coldChainThresholdC, evaluateReading, initialRuleState, type AnomalyKind, type ContainerRuleState } from './reefer-rules.js';
import type { ReeferTelemetry } from '../schemas/reefer-reading.js';

export interface DetectorOptions {
  /** Anomalies that call for maintenance; 3 in the reference. */
  maintenanceThreshold: number;
  /** Readings without an anomaly that end an episode (the count restarts); 288 = one day of 5-minute readings. */
  quietReadingsToReset: number;
  /** Reading identities remembered per container to recognise a repeat; 288 = one day of 5-minute readings. */
  seenWindow: number;
}

export const DEFAULT_DETECTOR_OPTIONS: Readonly<DetectorOptions> = Object.freeze({
  maintenanceThreshold: 3,
  quietReadingsToReset: 288,
  seenWindow: 288,
});

/** Format version of a serialised ContainerState, so a later layout can read (or reset) an older one. */
export const CONTAINER_STATE_VERSION = 1;

/** Everything the detector keeps per container; JSON-serialisable, written to the changelog as it is. */
export interface ContainerState {
  v: typeof CONTAINER_STATE_VERSION;
  containerId: string;
  /** State of the rules over consecutive readings, as of the newest reading. */
  rules: ContainerRuleState;
  /** Measurement time of the newest reading evaluated, epoch ms; null before the first. */
  newestMs: number | null;
  /** Anomalies in the current episode. */
  anomalyCount: number;
  /** The rule of each anomaly of the current episode, in order, up to the maintenance threshold. */
  rulesBroken: AnomalyKind[];
  /** MaintenanceNeeded was emitted in the current episode. */
  maintenanceRaised: boolean;
  /** Readings since the last anomaly. */
  quietReadings: number;
  /** Measurement times of the readings remembered, ascending. */
  seenTimes: number[];
  /** `gateway_id#seq` of the readings remembered, in the order of seenTimes. */
  seenIds: string[];
  /** Newest measurement time forgotten from the window; readings at or before it are skipped. */
  forgottenMs: number | null;
}

export function initialContainerState(containerId: string): ContainerState {
  return {
    v: CONTAINER_STATE_VERSION,
    containerId,
    rules: initialRuleState(),
    newestMs: null,
    anomalyCount: 0,
    rulesBroken: [],
    maintenanceRaised: false,
    quietReadings: 0,
    seenTimes: [],
    seenIds: [],
    forgottenMs: null,
  };
}

/** What became of one reading. */
export type ReadingOutcome = 'evaluated' | 'late' | 'duplicate' | 'too-late';

export interface ProcessResult {
  alerts: ReeferAlert[];
  state: ContainerState;
  outcome: ReadingOutcome;
}

/** Stable id of the anomaly a reading raised for one rule: the same reading always gives the same id. */
export function anomalyAlertId(gatewayId: string, seq: number, rule: AnomalyKind): string {
  return `${gatewayId}/${seq}/${rule}`;
}

/** Stable id of the MaintenanceNeeded raised by a reading. */
export function maintenanceAlertId(gatewayId: string, seq: number): string {
  return `${gatewayId}/${seq}/maintenance`;
}

function readingId(r: ReeferTelemetry): string {
  return `${r.gateway_id}#${r.seq}`;
}

/** Index of the first time ≥ t in an ascending array. */
function lowerBound(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function describeAnomaly(rule: AnomalyKind, r: ReeferTelemetry): string {
  const target = r.target_temperature;
  switch (rule) {
    case 'co2':
      return `carbon_dioxide_level ${r.carbon_dioxide_level} % outside 0 to ${target !== null && target <= -20 ? 12 : 10.8} %`;
    case 'o2':
      return `oxygen_level ${r.oxygen_level} % below 12 %`;
    case 'temperature':
      return `temperature ${r.temperature} °C more than 20 °C from the setpoint ${target} °C`;
    case 'power-off':
      return `kilowatts ${r.kilowatts} on two consecutive readings`;
    case 'cold-chain':
      return `temperature ${r.temperature} °C at or above ${target === null ? '?' : coldChainThresholdC(target)} °C for 10 consecutive readings`;
  }
}

/**
 * Evaluates one reading against its container's state (undefined for a container never seen).
 * Never mutates `state`; `nowMs` is the alerts' `timeMs`.
 */
export function processReading(
  reading: ReeferTelemetry,
  state: ContainerState | undefined,
  nowMs: number,
  options: DetectorOptions = DEFAULT_DETECTOR_OPTIONS,
): ProcessResult {
  const prev = state ?? initialContainerState(reading.container_id);
  const t = reading.measurement_time;
  const id = readingId(reading);
  const at = lowerBound(prev.seenTimes, t);
  if (prev.seenTimes[at] === t || prev.seenIds.includes(id)) return { alerts: [], state: prev, outcome: 'duplicate' };
  if (prev.forgottenMs !== null && t <= prev.forgottenMs) return { alerts: [], state: prev, outcome: 'too-late' };

  const seenTimes = [...prev.seenTimes];
  const seenIds = [...prev.seenIds];
  seenTimes.splice(at, 0, t);
  seenIds.splice(at, 0, id);
  let forgottenMs = prev.forgottenMs;
  while (seenTimes.length > options.seenWindow) {
    forgottenMs = seenTimes.shift() as number;
    seenIds.shift();
  }

  // Out of order: only the per-reading rules apply; a fresh rule state cannot complete a sequence.
  const inOrder = prev.newestMs === null || t > prev.newestMs;
  const evaluated = evaluateReading(reading, inOrder ? prev.rules : initialRuleState());
  // A cold chain still broken ten readings later is another violation: the run starts over, so a
  // sustained break keeps counting toward maintenance instead of being reported once.
  const ruleState = evaluated.anomalies.includes('cold-chain') ? { ...evaluated.state, coldRun: 0 } : evaluated.state;
  const next: ContainerState = {
    ...prev,
    rules: inOrder ? ruleState : prev.rules,
    newestMs: inOrder ? t : prev.newestMs,
    rulesBroken: [...prev.rulesBroken],
    seenTimes,
    seenIds,
    forgottenMs,
  };

  if (evaluated.anomalies.length === 0) {
    next.quietReadings = prev.quietReadings + 1;
    if (next.quietReadings >= options.quietReadingsToReset && (next.anomalyCount > 0 || next.maintenanceRaised)) {
      next.anomalyCount = 0;
      next.rulesBroken = [];
      next.maintenanceRaised = false;
    }
    return { alerts: [], state: next, outcome: inOrder ? 'evaluated' : 'late' };
  }

  const alerts: ReeferAlert[] = [];
  next.quietReadings = 0;
  for (const rule of evaluated.anomalies) {
    next.anomalyCount += 1;
    if (next.rulesBroken.length < options.maintenanceThreshold) next.rulesBroken.push(rule);
    const anomaly: ContainerAnomaly = {
      type: 'ContainerAnomaly',
      alertId: anomalyAlertId(reading.gateway_id, reading.seq, rule),
      containerId: reading.container_id,
      gatewayId: reading.gateway_id,
      timeMs: nowMs,
      rule,
      seq: reading.seq,
      measurementTimeMs: t,
      detail: describeAnomaly(rule, reading),
      anomalyCount: next.anomalyCount,
    };
    alerts.push(anomaly);
  }
  if (!next.maintenanceRaised && next.anomalyCount >= options.maintenanceThreshold) {
    next.maintenanceRaised = true;
    const maintenance: MaintenanceNeeded = {
      type: 'MaintenanceNeeded',
      alertId: maintenanceAlertId(reading.gateway_id, reading.seq),
      containerId: reading.container_id,
      gatewayId: reading.gateway_id,
      timeMs: nowMs,
      anomalyCount: next.anomalyCount,
      rules: [...next.rulesBroken],
    };
    alerts.push(maintenance);
  }
  return { alerts, state: next, outcome: inOrder ? 'evaluated' : 'late' };
}

/** The state as the changelog stores it. */
export function encodeContainerState(state: ContainerState): Buffer {
  return Buffer.from(JSON.stringify(state), 'utf8');
}

/**
 * Reads a changelog value back; null (never a throw) for a value that is not a state of this
 * format version, so a corrupt or foreign record costs that container its history, not the restore.
 */
export function decodeContainerState(value: Buffer | null): ContainerState | null {
  const parsed = parseJsonObject(value);
  if (typeof parsed === 'string') return null;
  const s = parsed as Partial<ContainerState>;
  if (s.v !== CONTAINER_STATE_VERSION || typeof s.containerId !== 'string' || typeof s.anomalyCount !== 'number') return null;
  if (!Array.isArray(s.seenTimes) || !Array.isArray(s.seenIds) || s.seenTimes.length !== s.seenIds.length) return null;
  if (typeof s.rules !== 'object' || s.rules === null || !Array.isArray(s.rulesBroken)) return null;
  return s as ContainerState;
}
