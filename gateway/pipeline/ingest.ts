/**
 * The pipeline every transport feeds: decode → normalise → validate, then into the outbox. A valid
 * reading becomes a durable outbox row; anything else becomes a counted, durable dead letter with its
 * reason. Either way the returned promise settles only once the outcome is on disk.
 */
import type { Logger } from 'pino';
import { encodeTelemetry } from '../../schemas/avro.js';
import type { Transport } from '../../schemas/reefer-reading.js';
import type { CommitQueue } from '../outbox/commit-queue.js';
import { decodeReading, type RejectReason } from './decode-reading.js';
import type { GatewayStats } from '../ops/gateway-stats.js';

export interface IngestOptions {
  gatewayId: string;
  timeZone: string;
  maxPayloadBytes: number;
  /** Dead letters keep at most this much of the offending payload. */
  deadLetterPayloadBytes: number;
}

export interface IngestDeps {
  queue: CommitQueue;
  stats: GatewayStats;
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

export type IngestOutcome = { accepted: true; seq: number } | { accepted: false; reason: RejectReason };

export interface Ingest {
  ingest(payload: Buffer, from: IngestSource): Promise<IngestOutcome>;
}

export function createIngest(options: IngestOptions, deps: IngestDeps): Ingest {
  const log = deps.logger.child({ component: 'pipeline' });
  return {
    async ingest(payload, from) {
      const receivedMs = deps.now();
      const result = decodeReading(payload, {
        topicContainerId: from.topicContainerId,
        timeZone: options.timeZone,
        nowMs: receivedMs,
        maxPayloadBytes: options.maxPayloadBytes,
      });
      if (!result.ok) {
        deps.stats.rejected(from.transport, result.reason);
        log.debug({ transport: from.transport, source: from.source, reason: result.reason, detail: result.detail }, 'reading rejected');
        await deps.queue.addDeadLetter({
          receivedMs,
          transport: from.transport,
          source: from.source,
          reason: result.reason,
          detail: result.detail,
          payload: payload.subarray(0, options.deadLetterPayloadBytes),
        });
        return { accepted: false, reason: result.reason };
      }
      const reading = result.reading;
      const seq = await deps.queue.addReading({
        containerId: reading.container_id,
        receivedMs,
        encode: (assigned) =>
          encodeTelemetry({ ...reading, gateway_id: options.gatewayId, seq: assigned, transport: from.transport, received_time: receivedMs }),
      });
      deps.stats.accepted(from.transport);
      return { accepted: true, seq };
    },
  };
}
