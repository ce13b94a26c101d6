/**
 * The exactly-once consumer port against a real broker, in the case the analytics cannot show on
 * their own: an instance that stalls mid-batch (a long pause), loses its partitions to another
 * instance without noticing, and then tries to commit. Its commit must fail, fenced by the
 * per-partition transactional producer of its successor, so every input record is written once.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createKafkaClient, createStreamsClient, type ConsumedRecord, type PartitionProcessor, type TopicPartition } from '../../cloud-bridge/kafka-client.js';
import { readRawTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Copies each input record to the output topic, keyed by where it came from; may stall on its first batch. */
function copier(outputTopic: string, stall?: Promise<void>) {
  let stalled = false;
  const seen = { assigned: [] as number[], commits: 0 };
  const processor: PartitionProcessor = {
    async assigned(partitions: readonly TopicPartition[]) {
      seen.assigned.push(...partitions.map((p) => p.partition));
    },
    revoked() {},
    async transform(records: readonly ConsumedRecord[]) {
      if (stall && !stalled) {
        stalled = true;
        await stall;
      }
      return {
        sends: [{ topic: outputTopic, records: records.map((r) => ({ key: `${r.partition}/${r.offset}`, value: r.value ?? Buffer.alloc(0) })) }],
        committed: () => void (seen.commits += 1),
      };
    },
  };
  return { processor, seen };
}

describe('exactly-once consumer', () => {
  it('fences an instance that stalled and lost its partitions: its late commit fails, each record is written once', async () => {
    const id = randomUUID().slice(0, 8);
    const input = `eo-input-${id}`;
    const output = `eo-output-${id}`;
    const admin = createKafkaClient({ brokers: [bootstrap], clientId: 'eo-test' }).admin();
    cleanups.push(() => admin.close());
    await admin.ensureTopics([{ topic: input, partitions: 3 }, { topic: output, partitions: 1 }]);
    const options = { groupId: `eo-${id}`, topic: input, transactionalIdPrefix: `eo-${id}`, maxWaitTimeMs: 100, sessionTimeoutMs: 6000 };

    let release: () => void = () => {};
    const stall = new Promise<void>((resolve) => (release = resolve));
    const streamsA = createStreamsClient({ brokers: [bootstrap], clientId: 'eo-a' });
    const a = copier(output, stall);
    const consumerA = streamsA.exactlyOnceConsumer(options);
    cleanups.push(async () => {
      release();
      await consumerA.close();
      await streamsA.close();
    });
    await consumerA.start(a.processor);

    const producer = createKafkaClient({ brokers: [bootstrap], clientId: 'eo-producer' }).producer();
    await producer.connect();
    cleanups.push(() => producer.close());
    const records = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: Buffer.from(`v${i}`) }));
    await producer.send(input, records);
    // A has taken its first batch and hangs in it.
    await expect.poll(() => a.seen.assigned.length, { timeout: 20_000 }).toBeGreaterThan(0);

    const streamsB = createStreamsClient({ brokers: [bootstrap], clientId: 'eo-b' });
    const b = copier(output);
    const consumerB = streamsB.exactlyOnceConsumer(options);
    cleanups.push(async () => {
      await consumerB.close();
      await streamsB.close();
    });
    await consumerB.start(b.processor);
    // A is silent, so the group drops it after its session timeout and B gets every partition.
    await expect.poll(() => consumerB.assignment(), { timeout: 30_000 }).toEqual([0, 1, 2]);
    const reader = await readRawTopic(bootstrap, output);
    cleanups.push(() => reader.close());
    await expect.poll(() => reader.records().length, { timeout: 20_000 }).toBe(300);

    // A wakes up and tries to commit the batch it held: fenced, so nothing of it becomes visible.
    release();
    await delay(3000);
    const keys = reader.records().map((r) => r.key);
    expect(keys).toHaveLength(300);
    expect(new Set(keys).size).toBe(300);
    expect(a.seen.commits).toBe(0);
    expect(b.seen.commits).toBeGreaterThan(0);
  });
});
