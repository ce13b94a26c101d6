import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { readRawTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');

describe('transactions through the Kafka adapter', () => {
  it('look their coordinators up once, send each transaction\'s topics in one request without metadata refreshes, and still commit records and markers', async () => {
    const kafka = createKafkaClient({ brokers: [bootstrap], clientId: 'coordinator-lookups' });
    const admin = kafka.admin();
    const topic = `coordinator-lookups-${randomUUID()}`;
    const group = `${topic}.progress`;
    const statusTopic = `${topic}-status`;
    await admin.ensureTopics([{ topic, partitions: 3 }, { topic: statusTopic, partitions: 1 }]);
    const requests: string[] = [];
    const producer = kafka.transactionalProducer({ transactionalId: `${topic}.tx`, onRequest: (api) => requests.push(api) });
    try {
      await producer.connect();
      const atConnect = requests.length;
      const transactions = 15;
      for (let t = 0; t < transactions; t += 1) {
        const records = Array.from({ length: 10 }, (_, i) => ({ key: `C${i}`, value: Buffer.from(`${t}-${i}`), headers: { seq: String(t * 10 + i) } }));
        const status = { key: 'gw', value: Buffer.from(`status ${t}`) };
        await producer.commit([{ topic, records }, { topic: statusTopic, records: [status] }], { groupId: group, topic, partition: 0, offset: t, metadata: `marker ${t}` });
      }
      const during = requests.slice(atConnect);
      const count = (api: string) => during.filter((a) => a === api).length;
      // Each transaction: its partitions, its records, its offsets and its end, on the coordinators found
      // at connect or on the first transaction.
      expect(count('EndTxn')).toBe(transactions);
      expect(count('TxnOffsetCommit')).toBe(transactions);
      expect(count('AddOffsetsToTxn')).toBe(transactions);
      expect(count('GroupCoordinator')).toBeLessThanOrEqual(2);
      // All topics of a transaction in one Produce request.
      expect(count('Produce')).toBe(transactions);
      // The coordinator's CONCURRENT_TRANSACTIONS right after a commit is retried in place: kafkajs
      // would refresh the cluster's metadata after each (one Metadata request per such answer).
      expect(count('AddPartitionsToTxn')).toBeGreaterThanOrEqual(transactions);
      expect(count('Metadata')).toBeLessThanOrEqual(1);

      expect(await admin.fetchMarker(group, topic, 0)).toEqual({ offset: transactions - 1, metadata: `marker ${transactions - 1}` });
      const reader = await readRawTopic(bootstrap, topic);
      try {
        await expect.poll(() => reader.records().length, { timeout: 30_000 }).toBe(transactions * 10);
      } finally {
        await reader.close();
      }
    } finally {
      await producer.close();
      await admin.close();
    }
  });
});
