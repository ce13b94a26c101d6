/**
 * The latest reading of each container, for the dashboard and `/api/containers`. Bounded: past
 * `maxContainers` the container heard from longest ago is forgotten, so a yard with more containers
 * than the cap shows those still reporting. Recording costs one map update on the ingest path; alarms
 * are worked out only when someone looks.
 */
import type { ReeferReading, Transport } from '../../schemas/reefer-reading.js';
import { alarmsOf, type AlarmKind, type LaneRules } from '../pipeline/lanes.js';

/** A container counts as online while its latest reading is this recent: three of the reference's 5-minute intervals. */
export const ONLINE_WINDOW_MS = 15 * 60_000;

export interface LatestReading {
  containerId: string;
  productId: string | null;
  temperature: number;
  targetTemperature: number | null;
  /** UTC milliseconds. */
  measurementMs: number;
  receivedMs: number;
  transport: Transport;
  seq: number;
  /** Empty for a routine reading. */
  alarms: AlarmKind[];
}

export interface LatestReadingsOptions {
  maxContainers: number;
  lanes: LaneRules;
}

export interface LatestReadings {
  record(reading: ReeferReading, accepted: { seq: number; transport: Transport; receivedMs: number }): void;
  /** Every container's latest reading, by container id. */
  list(): LatestReading[];
  /** Readings recorded after `version` (0 for all), and the version to ask from next time. */
  changedSince(version: number): { version: number; readings: LatestReading[] };
  /** Grows with every reading recorded. */
  version(): number;
  /** Containers whose latest reading arrived at or after `sinceMs`. */
  heardSince(sinceMs: number): number;
  size(): number;
}

interface Entry {
  reading: ReeferReading;
  seq: number;
  transport: Transport;
  receivedMs: number;
  version: number;
}

export function createLatestReadings(options: LatestReadingsOptions): LatestReadings {
  if (!(Number.isInteger(options.maxContainers) && options.maxContainers > 0)) {
    throw new RangeError(`maxContainers: expected a positive integer, got ${JSON.stringify(options.maxContainers)}`);
  }
  // A Map iterates in insertion order: re-inserting on every reading keeps the least recently heard first.
  const entries = new Map<string, Entry>();
  let version = 0;

  function view(e: Entry): LatestReading {
    const r = e.reading;
    return {
      containerId: r.container_id,
      productId: r.product_id,
      temperature: r.temperature,
      targetTemperature: r.target_temperature,
      measurementMs: r.measurement_time,
      receivedMs: e.receivedMs,
      transport: e.transport,
      seq: e.seq,
      alarms: alarmsOf(r, options.lanes),
    };
  }

  const byId = (a: LatestReading, b: LatestReading): number => (a.containerId < b.containerId ? -1 : a.containerId > b.containerId ? 1 : 0);

  return {
    record(reading, accepted) {
      const id = reading.container_id;
      const previous = entries.get(id);
      // A late resend of an older measurement must not hide the newer one.
      if (previous && previous.reading.measurement_time > reading.measurement_time) return;
      if (previous) entries.delete(id);
      entries.set(id, { reading, seq: accepted.seq, transport: accepted.transport, receivedMs: accepted.receivedMs, version: ++version });
      if (entries.size > options.maxContainers) entries.delete(entries.keys().next().value!);
    },
    list() {
      return [...entries.values()].map(view).sort(byId);
    },
    changedSince(since) {
      const readings: LatestReading[] = [];
      for (const e of entries.values()) if (e.version > since) readings.push(view(e));
      return { version, readings: readings.sort(byId) };
    },
    version: () => version,
    heardSince(sinceMs) {
      let n = 0;
      for (const e of entries.values()) if (e.receivedMs >= sinceMs) n += 1;
      return n;
    },
    size: () => entries.size,
  };
}
