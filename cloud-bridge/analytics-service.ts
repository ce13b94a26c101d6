/**
 * The reference anomaly detector as a Kafka service: reads `reefer-telemetry`, writes
 * `ContainerAnomaly` and `MaintenanceNeeded` to `reefer-alerts`, exactly once.
 *
 * Each fetched batch of a telemetry partition is one transaction holding the alerts it raised, the
 * new state of every container it touched (to a compacted changelog topic, in the partition of the
 * same number as the input, so a container's state travels with its partition) and the group's
 * offset past the batch. A crash, a restart or a rebalance therefore resumes from a state and an
 * offset that match. Whoever takes a partition over first fences its previous owner, then rebuilds
 * the partition's states from the changelog before its first batch.
 */
import type { Logger } from 'pino';
import { encodeAlert, type ReeferAlert } from './alerts.js';
import {
  DEFAULT_DETECTOR_OPTIONS,
  decodeContainerState,
  encodeContainerState,
  processReading,
  type ContainerState,
  type DetectorOptions,
  type ReadingOutcome,
} from './anomaly-detector.js';
import type { ConfluentTelemetry } from './confluent-telemetry.js';
import type {
  ConsumedRecord,
  KafkaAdminPort,
  PartitionedRecord,
  PartitionedTopicRecords,
  StreamsClient,
  TopicPartition,
} from './kafka-client.js';
import { decodeTelemetryAnyVersion, isSingleObject, READING_FINGERPRINT } from '../schemas/avro.js';
import type { ReeferTelemetry } from '../schemas/reefer-reading.js';

export interface AnalyticsServiceOptions {
  telemetryTopic: string;
  alertsTopic: string;
  /** Compacted changelog of the per-container states; same partition count as the telemetry topic. */
  stateTopic: string;
  /** Where undecodable records go, with their reason; they are only counted when absent. */
  deadLetterTopic?: string;
  groupId: string;
  /** Prefix of the per-partition transactional ids; the group id when absent. */
  transactionalIdPrefix?: string;
  /** Partitions of the telemetry topic if it must be created (as the gateway would, 3 by default). */
  telemetryPartitions?: number;
  detector?: Partial<DetectorOptions>;
  /** Longest a fetch waits for records; lower means fresher alerts and more requests. */
  maxWaitTimeMs?: number;
  /** Bounds one batch plus a state rebuild; see ExactlyOnceConsumerOptions. */
  sessionTimeoutMs?: number;
}

/** The service owns these: close() closes the streams client and the admin. */
export interface AnalyticsServiceDeps {
  streams: StreamsClient;
  admin: KafkaAdminPort;
  logger: Logger;
  /** Decodes Confluent-framed values; without it such values are counted as undecodable. */
  confluent?: ConfluentTelemetry;
  /** The alerts' `timeMs`; Date.now by default. */
  nowMs?: () => number;
  /** Called for every alert once its transaction is committed. */
  onAlert?: (alert: ReeferAlert) => void;
}

export interface AnalyticsStats {
  /** Readings by what became of them (see ReadingOutcome). */
  readings: Record<ReadingOutcome, number>;
  /** Records that did not decode as ReeferTelemetry, by reason. */
  undecodable: Record<string, number>;
  anomalies: number;
  maintenanceNeeded: number;
  /** Batches committed. */
  transactions: number;
  /** Container states rebuilt from the changelog. */
  statesRestored: number;
  /** Input partitions the group gave this instance. */
  assigned: number[];
  /** Input partitions whose container states this instance holds (rebuilt at their first batch). */
  partitions: number[];
  /** Containers held in memory now. */
  containers: number;
}

export interface AnalyticsService {
  /** Creates the topics it needs, joins the group; resolves once subscribed. */
  start(): Promise<void>;
  /** Finishes the batch in progress and leaves the group. Safe twice. */
  close(): Promise<void>;
  stats(): AnalyticsStats;
}

type Decoded = { ok: true; reading: ReeferTelemetry } | { ok: false; reason: string; detail: string };

/** Why a record did not decode; dead-letter records carry it in their `reason` header. */
export const UNDECODABLE_REASONS = {
  'empty-value': 'the record has no value',
  'not-telemetry': 'a ReeferReading (device schema), not a ReeferTelemetry record',
  'bad-avro': 'not a well-formed ReeferTelemetry of a known version',
  'no-registry': 'Confluent-framed, and no schema registry is configured',
  'unknown-framing': 'neither single-object (c3 01) nor Confluent (00) framing',
} as const;

export function createAnalyticsService(options: AnalyticsServiceOptions, deps: AnalyticsServiceDeps): AnalyticsService {
  const detector: DetectorOptions = { ...DEFAULT_DETECTOR_OPTIONS, ...options.detector };
  const logger = deps.logger.child({ component: 'analytics' });
  const nowMs = deps.nowMs ?? Date.now;
  const states = new Map<number, Map<string, ContainerState>>();
  const stats = {
    readings: { evaluated: 0, late: 0, duplicate: 0, 'too-late': 0 } as Record<ReadingOutcome, number>,
    undecodable: {} as Record<string, number>,
    anomalies: 0,
    maintenanceNeeded: 0,
    transactions: 0,
    statesRestored: 0,
  };
  let warnedNoRegistry = false;
  const consumer = deps.streams.exactlyOnceConsumer({
    groupId: options.groupId,
    topic: options.telemetryTopic,
    transactionalIdPrefix: options.transactionalIdPrefix ?? options.groupId,
    maxWaitTimeMs: options.maxWaitTimeMs,
    sessionTimeoutMs: options.sessionTimeoutMs,
  });
  let starting: Promise<void> | undefined;
  let closed = false;

  const decode = async (record: ConsumedRecord): Promise<Decoded> => {
    const value = record.value;
    if (!value || value.length === 0) return { ok: false, reason: 'empty-value', detail: UNDECODABLE_REASONS['empty-value'] };
    if (isSingleObject(value)) {
      if (value.length >= 10 && value.subarray(2, 10).equals(READING_FINGERPRINT)) {
        return { ok: false, reason: 'not-telemetry', detail: UNDECODABLE_REASONS['not-telemetry'] };
      }
      const decoded = decodeTelemetryAnyVersion(value, 1);
      return decoded.ok ? { ok: true, reading: decoded.value } : { ok: false, reason: 'bad-avro', detail: decoded.detail };
    }
    if (value[0] === 0) {
      if (!deps.confluent) {
        if (!warnedNoRegistry) logger.warn({ topic: options.telemetryTopic }, 'Confluent-framed telemetry and no schema registry configured: such records are skipped');
        warnedNoRegistry = true;
        return { ok: false, reason: 'no-registry', detail: UNDECODABLE_REASONS['no-registry'] };
      }
      // A registry that cannot be reached rejects here: the batch is retried, not skipped.
      const decoded = await deps.confluent.decode(value, 1);
      return decoded.ok ? { ok: true, reading: decoded.value } : { ok: false, reason: 'bad-avro', detail: decoded.detail };
    }
    return { ok: false, reason: 'unknown-framing', detail: `${UNDECODABLE_REASONS['unknown-framing']}; starts ${value.subarray(0, 2).toString('hex')}` };
  };

  const deadLetter = (record: ConsumedRecord, reason: string, detail: string): PartitionedRecord => ({
    key: record.key ?? `${record.topic}/${record.partition}`,
    value: Buffer.from(
      JSON.stringify({
        source: `${record.topic}/${record.partition}/${record.offset}`,
        reason,
        detail,
        headers: record.headers,
        payloadBase64: record.value ? record.value.toString('base64') : null,
      }),
    ),
    headers: { reason, source_topic: record.topic },
  });

  const assigned = async (partitions: readonly TopicPartition[]): Promise<void> => {
    if (partitions.length === 0) return;
    const numbers = partitions.map((p) => p.partition);
    for (const p of numbers) states.set(p, new Map());
    const records = await deps.streams.readCompacted(options.stateTopic, numbers);
    let restored = 0;
    let unreadable = 0;
    for (const r of records) {
      const state = decodeContainerState(r.value);
      const partitionStates = states.get(r.partition);
      if (!partitionStates) continue;
      if (!state) {
        unreadable += 1;
        continue;
      }
      partitionStates.set(state.containerId, state);
      restored += 1;
    }
    stats.statesRestored += restored;
    logger.info({ partitions: numbers, restored, unreadable }, 'partitions assigned, container states rebuilt from the changelog');
  };

  const revoked = (partitions: readonly TopicPartition[]): void => {
    for (const p of partitions) states.delete(p.partition);
    logger.info({ partitions: partitions.map((p) => p.partition) }, 'partitions released');
  };

  const transform = async (records: readonly ConsumedRecord[], tp: TopicPartition) => {
    const held = states.get(tp.partition) ?? new Map<string, ContainerState>();
    const changed = new Map<string, ContainerState>();
    const alerts: ReeferAlert[] = [];
    const outcomes: ReadingOutcome[] = [];
    const rejected: { record: ConsumedRecord; reason: string; detail: string }[] = [];
    const now = nowMs();
    for (const record of records) {
      const decoded = await decode(record);
      if (!decoded.ok) {
        rejected.push({ record, reason: decoded.reason, detail: decoded.detail });
        continue;
      }
      const id = decoded.reading.container_id;
      const before = changed.get(id) ?? held.get(id);
      const result = processReading(decoded.reading, before, now, detector);
      outcomes.push(result.outcome);
      if (result.state !== before) changed.set(id, result.state);
      alerts.push(...result.alerts);
    }
    const sends: PartitionedTopicRecords[] = [
      {
        topic: options.alertsTopic,
        records: alerts.map((a) => ({ key: a.containerId, value: encodeAlert(a), headers: { type: a.type, alert_id: a.alertId } })),
      },
      {
        topic: options.stateTopic,
        records: [...changed.values()].map((s) => ({ key: s.containerId, value: encodeContainerState(s), partition: tp.partition })),
      },
    ];
    if (options.deadLetterTopic && rejected.length > 0) {
      sends.push({ topic: options.deadLetterTopic, records: rejected.map((r) => deadLetter(r.record, r.reason, r.detail)) });
    }
    return {
      sends,
      committed() {
        const partitionStates = states.get(tp.partition);
        if (partitionStates) for (const [id, s] of changed) partitionStates.set(id, s);
        for (const o of outcomes) stats.readings[o] += 1;
        for (const r of rejected) stats.undecodable[r.reason] = (stats.undecodable[r.reason] ?? 0) + 1;
        if (rejected.length > 0) logger.warn({ partition: tp.partition, count: rejected.length, reason: rejected[0]!.reason, detail: rejected[0]!.detail }, 'undecodable telemetry skipped');
        stats.transactions += 1;
        for (const a of alerts) {
          if (a.type === 'ContainerAnomaly') stats.anomalies += 1;
          else stats.maintenanceNeeded += 1;
          deps.onAlert?.(a);
        }
      },
    };
  };

  const startOnce = async (): Promise<void> => {
    await deps.admin.ensureTopics([{ topic: options.telemetryTopic, partitions: options.telemetryPartitions ?? 3 }]);
    const partitions = await deps.streams.partitionCount(options.telemetryTopic);
    if (partitions === null) throw new Error(`telemetry topic ${options.telemetryTopic} does not exist and could not be created`);
    await deps.admin.ensureTopics([
      { topic: options.stateTopic, partitions, config: { 'cleanup.policy': 'compact' } },
      { topic: options.alertsTopic, partitions },
      ...(options.deadLetterTopic ? [{ topic: options.deadLetterTopic, partitions: 1 }] : []),
    ]);
    const statePartitions = await deps.streams.partitionCount(options.stateTopic);
    if (statePartitions !== partitions) {
      throw new Error(
        `state topic ${options.stateTopic} has ${statePartitions} partitions; expected ${partitions}, as many as ${options.telemetryTopic}, so each container's state sits in the partition of its readings`,
      );
    }
    await consumer.start({ assigned, revoked, transform });
    logger.info({ telemetryTopic: options.telemetryTopic, alertsTopic: options.alertsTopic, stateTopic: options.stateTopic, groupId: options.groupId }, 'analytics started');
  };

  return {
    start() {
      starting ??= startOnce();
      return starting;
    },
    async close() {
      if (closed) return;
      closed = true;
      // A close that overtakes start() waits for it, so nothing it opens is left running.
      await starting?.catch(() => undefined);
      await consumer.close();
      await deps.streams.close();
      await deps.admin.close();
    },
    stats() {
      let containers = 0;
      for (const m of states.values()) containers += m.size;
      return {
        readings: { ...stats.readings },
        undecodable: { ...stats.undecodable },
        anomalies: stats.anomalies,
        maintenanceNeeded: stats.maintenanceNeeded,
        transactions: stats.transactions,
        statesRestored: stats.statesRestored,
        assigned: consumer.assignment(),
        partitions: [...states.keys()].sort((a, b) => a - b),
        containers,
      };
    },
  };
}
