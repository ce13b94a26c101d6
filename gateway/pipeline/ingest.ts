/**
 * The pipeline every transport feeds: decode → normalise → validate, then into the outbox. A valid
 * reading becomes a durable outbox row; anything else becomes a counted, durable dead letter with its
 * reason. Either way the returned promise settles only once the outcome is on disk.
 */
import type { Logger } from 'pino';
import type { ReeferReading, Transport } from '../../schemas/reefer-reading.js';
import type { CommitQueue } from '../outbox/commit-queue.js';
import type { Lane } from '../outbox/sqlite-outbox.js';
import { encodeStoredReading } from '../outbox/stored-reading.js';
import type { GatewayStats } from '../ops/gateway-stats.js';
import { decodeReading, type DecodeResult, type RejectReason } from './decode-reading.js';
import type { GapTracker } from './gap-tracker.js';
import { laneOf, type LaneRules } from './lanes.js';

export interface IngestOptions {
  timeZone: string;
  maxPayloadBytes: number;
  /** Dead letters keep at most this much of the offending payload. */
  deadLetterPayloadBytes: number;
  lanes: LaneRules;
}

export interface IngestDeps {
  queue: CommitQueue;
  stats: GatewayStats;
  gaps: GapTracker;
  /** Throws when the gateway cannot take input now (a full disk): the device is not acknowledged. */
  admit?(): void;
  /** Told of each reading once it is durable (not of duplicates): the dashboard's latest readings. */
  onAccepted?(reading: ReeferReading, accepted: { lane: Lane; seq: number; transport: Transport; receivedMs: number }): void;
  logger: Logger;
  now(): number;
}

export interface IngestSource {
  transport: Transport;
  /** Topic, serial port path or upstream broker: where the input came from. */
  source: string;
  /** The container id the topic names, when the transport has topics. */
  topicContainerId?: string;
}

export type IngestOutcome =
  | { accepted: true; seq: number }
  /** The same reading (container id and measurement time) was stored before: a device's resend. */
  | { accepted: true; duplicate: true }
  | { accepted: false; reason: RejectReason };

export interface Ingest {
  ingest(payload: Buffer, from: IngestSource): Promise<IngestOutcome>;
  /** For transports that decode themselves (serial framers): the same path from the decoded result on. */
  ingestDecoded(result: DecodeResult, raw: Buffer, from: IngestSource, receivedMs?: number): Promise<IngestOutcome>;
}

export function createIngest(options: IngestOptions, deps: IngestDeps): Ingest {
  const log = deps.logger.child({ component: 'pipeline' });

  async function ingestDecoded(result: DecodeResult, raw: Buffer, from: IngestSource, receivedMs = deps.now()): Promise<IngestOutcome> {
    deps.admit?.();
    if (!result.ok) {
      deps.stats.rejected(from.transport, result.reason);
      log.debug({ transport: from.transport, source: from.source, reason: result.reason, detail: result.detail }, 'reading rejected');
      const device = from.topicContainerId ?? from.source;
      deps.queue.addLedger([{ containerId: device, reason: result.reason, count: 1 }]);
      await deps.queue.addDeadLetter({
        receivedMs,
        transport: from.transport,
        source: from.source,
        containerId: from.topicContainerId ?? null,
        reason: result.reason,
        detail: result.detail,
        payload: raw.subarray(0, options.deadLetterPayloadBytes),
      });
      return { accepted: false, reason: result.reason };
    }
    const reading = result.reading;
    const missing = deps.gaps.observe(reading.container_id, reading.measurement_time);
    if (missing > 0) deps.queue.addLedger([{ containerId: reading.container_id, reason: 'gap', count: missing }]);
    const lane = laneOf(reading, options.lanes);
    const seq = await deps.queue.addReading({
      containerId: reading.container_id,
      measurementMs: reading.measurement_time,
      receivedMs,
      lane,
      encode: () => encodeStoredReading(reading, from.transport, receivedMs),
    });
    if (seq === null) {
      deps.stats.duplicate(from.transport);
      return { accepted: true, duplicate: true };
    }
    deps.stats.accepted(from.transport);
    deps.onAccepted?.(reading, { lane, seq, transport: from.transport, receivedMs });
    return { accepted: true, seq };
  }

  return {
    ingest(payload, from) {
      const receivedMs = deps.now();
      const result = decodeReading(payload, {
        topicContainerId: from.topicContainerId,
        timeZone: options.timeZone,
        nowMs: receivedMs,
        maxPayloadBytes: options.maxPayloadBytes,
      });
      return ingestDecoded(result, payload, from, receivedMs);
    },
    ingestDecoded,
  };
}
