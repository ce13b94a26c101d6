/**
 * Version 2 of the `reeferedge.ReeferTelemetry` record (reefer-telemetry.v2.avsc): version 1 plus
 * three fields with defaults, so either version reads what the other wrote.
 */
import type { ReeferTelemetry } from './reefer-reading.js';

/** The gateway lane a reading travelled in; alarm readings are kept longest when the outbox is full. */
export type TelemetryLane = 'routine' | 'alarm';

export interface ReeferTelemetryV2 extends ReeferTelemetry {
  /** `routine` when read from a version 1 record. */
  lane: TelemetryLane;
  /** Sent from the backlog after an uplink outage; `false` when read from a version 1 record. */
  replayed: boolean;
  /**
   * The failure mode a simulated reefer was running (`none` when healthy); `null` for a real
   * device and when read from a version 1 record.
   */
  failure_label: string | null;
}

/** The committed versions of ReeferTelemetry, oldest first. */
export const TELEMETRY_VERSIONS = [1, 2] as const;
export type TelemetryVersion = (typeof TELEMETRY_VERSIONS)[number];

/** The value shape a reader of each version sees. */
export interface TelemetryByVersion {
  1: ReeferTelemetry;
  2: ReeferTelemetryV2;
}
