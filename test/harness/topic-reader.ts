/**
 * Reads a Kafka topic from the beginning with a read-committed consumer and decodes every record, so
 * tests can compare what reached Kafka with what devices were acknowledged for.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { createKafkaClient, type ConsumedRecord, type KafkaConsumerPort } from '../../cloud-bridge/kafka-client.js';
import { decodeSingleObject } from '../../schemas/avro.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';

export interface DeliveredRecord {
  key: string | null;
  partition: number;
  offset: number;
  headers: Record<string, string>;
  value: ReeferTelemetry;
}

export interface TopicReader {
  records(): DeliveredRecord[];
  /** Resolves once at least `count` records were read; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<DeliveredRecord[]>;
  /** Waits `quietMs` without new records (to catch duplicates arriving late), then returns all. */
  settle(quietMs: number): Promise<DeliveredRecord[]>;
  close(): Promise<void>;
}

export async function readTopic(bootstrap: string, topic: string): Promise<TopicReader> {
  const client = createKafkaClient({ brokers: [bootstrap], clientId: 'test-reader' });
  // A consumer cannot subscribe to a topic that does not exist yet; the gateway may not have made it.
  const admin = client.admin();
  try {
    await admin.ensureTopics([{ topic, partitions: 3 }]);
  } finally {
    await admin.close();
  }
  const seen: DeliveredRecord[] = [];
  let lastArrivalMs = Date.now();
  const waiters = new Set<() => void>();
  const undecodable: ConsumedRecord[] = [];
  const onRecords = (batch: ConsumedRecord[]): void => {
    for (const r of batch) {
      const decoded = r.value ? decodeSingleObject(r.value) : { ok: false as const, detail: 'empty value' };
      if (!decoded.ok || decoded.schema !== 'ReeferTelemetry') {
        undecodable.push(r);
        continue;
      }
      seen.push({ key: r.key, partition: r.partition, offset: Number(r.offset), headers: r.headers, value: decoded.value as ReeferTelemetry });
    }
    lastArrivalMs = Date.now();
    for (const w of waiters) w();
  };
  const consumer = await startConsumer(client, topic, onRecords);
  return {
    records: () => {
      if (undecodable.length > 0) throw new Error(`${undecodable.length} records in ${topic} did not decode as ReeferTelemetry`);
      return [...seen];
    },
    waitFor(count, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (seen.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve([...seen]);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${seen.length} of ${count} records arrived in ${topic} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async settle(quietMs) {
      lastArrivalMs = Date.now();
      while (Date.now() - lastArrivalMs < quietMs) await new Promise((r) => setTimeout(r, 100));
      return [...seen];
    },
    close: () => consumer.close(),
  };
}

/**
 * When the gateway creates the topic at the same moment, ensureTopics sees it listed before its
 * partitions have leaders, and subscribing fails with a retriable error for a short while.
 */
async function startConsumer(
  client: ReturnType<typeof createKafkaClient>,
  topic: string,
  onRecords: (batch: ConsumedRecord[]) => void,
): Promise<KafkaConsumerPort> {
  for (let attempt = 1; ; attempt++) {
    const consumer = client.consumer({ groupId: `test-${randomUUID()}`, topics: [topic], fromBeginning: true, maxWaitTimeMs: 100 });
    try {
      await consumer.start(onRecords);
      return consumer;
    } catch (error) {
      await consumer.close().catch(() => undefined);
      if (attempt >= 10 || (error as { retriable?: unknown }).retriable !== true) throw error;
      await delay(100 * attempt);
    }
  }
}

/** Reads a topic's raw records (for topics that do not carry readings, such as gateway-status). */
export async function readRawTopic(bootstrap: string, topic: string): Promise<{ records(): ConsumedRecord[]; close(): Promise<void> }> {
  const client = createKafkaClient({ brokers: [bootstrap], clientId: 'test-raw-reader' });
  const admin = client.admin();
  try {
    // Side topics (status, dead letters) have one partition, as the gateway creates them.
    await admin.ensureTopics([{ topic, partitions: 1 }]);
  } finally {
    await admin.close();
  }
  const seen: ConsumedRecord[] = [];
  const consumer = await startConsumer(client, topic, (batch) => {
    seen.push(...batch);
  });
  return { records: () => [...seen], close: () => consumer.close() };
}
