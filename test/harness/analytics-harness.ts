/**
 * Runs the analytics service against the harness's Kafka, produces readings into its telemetry
 * topic as a gateway encodes them, and reads the alerts back as a downstream consumer would.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { decodeAlert, type ReeferAlert } from '../../cloud-bridge/alerts.js';
import { createAnalyticsService, type AnalyticsService, type AnalyticsServiceOptions } from '../../cloud-bridge/analytics-service.js';
import { createKafkaClient, createStreamsClient, type KafkaRecord } from '../../cloud-bridge/kafka-client.js';
import { encodeTelemetrySingleObject } from '../../schemas/avro.js';
import type { ReeferReading, ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { readRawTopic } from './topic-reader.js';

export interface AnalyticsTopics {
  telemetryTopic: string;
  alertsTopic: string;
  stateTopic: string;
  deadLetterTopic: string;
  groupId: string;
}

/** Fresh topic names and group per test, so tests never see each other's records. */
export function analyticsTopics(partitions = 3): AnalyticsTopics & { partitions: number } {
  const id = randomUUID().slice(0, 8);
  return {
    telemetryTopic: `reefer-telemetry-${id}`,
    alertsTopic: `reefer-alerts-${id}`,
    stateTopic: `reefer-analytics-state-${id}`,
    deadLetterTopic: `reefer-analytics-deadletter-${id}`,
    groupId: `reefer-analytics-${id}`,
    partitions,
  };
}

export function startAnalytics(
  bootstrap: string,
  topics: AnalyticsTopics & { partitions?: number },
  overrides: Partial<AnalyticsServiceOptions> = {},
): { service: AnalyticsService; alerts: ReeferAlert[]; started: Promise<void> } {
  const logger = pino({ level: process.env.REEFER_TEST_LOG ?? 'silent' });
  const alerts: ReeferAlert[] = [];
  const service = createAnalyticsService(
    { ...topics, telemetryPartitions: topics.partitions, maxWaitTimeMs: 100, sessionTimeoutMs: 10_000, ...overrides },
    {
      streams: createStreamsClient({ brokers: [bootstrap], clientId: 'analytics-test', logger }),
      admin: createKafkaClient({ brokers: [bootstrap], clientId: 'analytics-test-admin', logger }).admin(),
      logger,
      onAlert: (a) => alerts.push(a),
    },
  );
  return { service, alerts, started: service.start() };
}

/** A reading as the gateway forwards it: its gateway id, a sequence number, transport and receive time. */
export function asTelemetry(reading: ReeferReading, gatewayId: string, seq: number): ReeferTelemetry {
  return { ...reading, gateway_id: gatewayId, seq, transport: 'mqtt', received_time: reading.measurement_time + 1000 };
}

/** The record the gateway writes: key = container id, single-object Avro, headers gateway_id and seq. */
export function telemetryRecord(t: ReeferTelemetry): KafkaRecord {
  return { key: t.container_id, value: encodeTelemetrySingleObject(t), headers: { gateway_id: t.gateway_id, seq: String(t.seq) } };
}

export async function produce(bootstrap: string, topic: string, records: readonly KafkaRecord[]): Promise<void> {
  const producer = createKafkaClient({ brokers: [bootstrap], clientId: 'analytics-test-producer' }).producer();
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 2000) await producer.send(topic, records.slice(i, i + 2000));
  } finally {
    await producer.close();
  }
}

/** Reads the alerts topic with a read-committed consumer, as the actions consumer does. */
export async function readAlerts(bootstrap: string, topic: string): Promise<{ alerts(): ReeferAlert[]; close(): Promise<void> }> {
  const reader = await readRawTopic(bootstrap, topic);
  return {
    alerts: () =>
      reader.records().map((r) => {
        const alert = decodeAlert(r.value);
        if (!alert) throw new Error(`record at ${r.partition}/${r.offset} of ${topic} is not an alert`);
        return alert;
      }),
    close: () => reader.close(),
  };
}

/** Sum of the readings a set of services has dealt with, whatever became of them. */
export function readingsDone(services: readonly AnalyticsService[]): number {
  let total = 0;
  for (const s of services) {
    const { readings, undecodable } = s.stats();
    total += Object.values(readings).reduce((a, b) => a + b, 0) + Object.values(undecodable).reduce((a, b) => a + b, 0);
  }
  return total;
}
