/**
 * Records on `reefer-alerts` (key = container id, value = UTF-8 JSON): what the anomaly detector emits
 * and the actions consume. Pure: encoding, decoding and checking, no I/O.
 *
 * - `ContainerAnomaly`: one reading broke one reference rule.
 * - `MaintenanceNeeded`: a container reached the anomaly count that calls for maintenance.
 *
 * `alertId` is derived from what caused the alert (gateway id and sequence of the reading), so an
 * alert emitted again after a redelivery carries the same id and consumers can drop the repeat.
 */
import type { AnomalyKind } from './reefer-rules.js';
import { parseJsonObject } from './json-value.js';

export const ALERT_TYPES = ['ContainerAnomaly', 'MaintenanceNeeded'] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

interface AlertBase {
  alertId: string;
  containerId: string;
  /** The gateway that forwarded the reading: where commands for this container go. */
  gatewayId: string;
  /** When the detector raised it. */
  timeMs: number;
}

export interface ContainerAnomaly extends AlertBase {
  type: 'ContainerAnomaly';
  rule: AnomalyKind;
  /** The reading that broke the rule: `(gatewayId, seq)` identifies it downstream. */
  seq: number;
  /** The reading's measurement time, epoch milliseconds. */
  measurementTimeMs: number;
  /** Human-readable: which value against which limit. */
  detail: string;
  /** Anomalies counted for this container so far, this one included. */
  anomalyCount: number;
}

export interface MaintenanceNeeded extends AlertBase {
  type: 'MaintenanceNeeded';
  /** Anomalies counted when maintenance was called for. */
  anomalyCount: number;
  /** The rules broken, in the order they were. */
  rules: AnomalyKind[];
}

export type ReeferAlert = ContainerAnomaly | MaintenanceNeeded;

export function encodeAlert(alert: ReeferAlert): Buffer {
  return Buffer.from(JSON.stringify(alert), 'utf8');
}

/** Decodes an alert record's value; null (never a throw) when it is not one. */
export function decodeAlert(value: Buffer | null): ReeferAlert | null {
  const a = parseJsonObject(value);
  if (typeof a === 'string') return null;
  if (typeof a.alertId !== 'string' || typeof a.containerId !== 'string' || typeof a.gatewayId !== 'string' || typeof a.timeMs !== 'number') return null;
  if (a.type === 'ContainerAnomaly') {
    if (typeof a.rule !== 'string' || typeof a.seq !== 'number' || typeof a.anomalyCount !== 'number') return null;
    return a as unknown as ContainerAnomaly;
  }
  if (a.type === 'MaintenanceNeeded') {
    if (typeof a.anomalyCount !== 'number' || !Array.isArray(a.rules)) return null;
    return a as unknown as MaintenanceNeeded;
  }
  return null;
}
