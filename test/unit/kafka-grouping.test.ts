import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { ProduceMessage } from '../../cloud-bridge/kafka-produce-request.js';

// Imported first: the adapter replaces kafkajs modules in require's cache as it loads.
await import('../../cloud-bridge/kafka-client.js');
const require = createRequire(import.meta.url);

const messages = (n: number): ProduceMessage[] => Array.from({ length: n }, (_, i) => ({ key: `C${i}`, value: Buffer.from([i]) }));

describe('grouping records by partition in the Kafka adapter', () => {
  type Group = (args: { topic: string; partitionMetadata: { partitionId: number; leader: number }[]; messages: ProduceMessage[]; partitioner: (args: { message: ProduceMessage }) => number }) => Record<number, ProduceMessage[]>;

  it('groups in order, and refuses, as metadata not loaded, a partition its metadata does not list (kafkajs would drop its records unsent)', () => {
    const group = require('kafkajs/src/producer/groupMessagesPerPartition.js') as Group;
    const records = messages(9);
    const byIndex = (args: { message: ProduceMessage }) => records.indexOf(args.message) % 3;
    const full = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1 }));
    const grouped = group({ topic: 't', partitionMetadata: full, messages: records, partitioner: byIndex });
    expect(grouped).toEqual({ 0: [records[0], records[3], records[6]], 1: [records[1], records[4], records[7]], 2: [records[2], records[5], records[8]] });

    const partial = full.filter((p) => p.partitionId !== 1);
    let refused: unknown;
    try {
      group({ topic: 't', partitionMetadata: partial, messages: records, partitioner: byIndex });
    } catch (error) {
      refused = error;
    }
    expect((refused as Error | undefined)?.name).toBe('KafkaJSMetadataNotLoaded');
    expect((refused as Error).message).toContain('partition 1 of t');
  });
});
