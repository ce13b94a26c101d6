import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { resolveConfig } from '../../gateway/config.js';
import { startGateway } from '../../gateway/main.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { openOutbox } from '../../gateway/outbox/sqlite-outbox.js';
import { encodeMarker } from '../../gateway/uplink/kafka-uplink.js';
import { encodeTelemetry, frameTelemetryBody } from '../../schemas/avro.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { sampleReading } from '../harness/reference-reading.js';
import { readTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function reading(i: number): ReeferReading {
  return sampleReading({ container_id: `C${i % 7}`, measurement_time: Date.UTC(2026, 0, 1) + i * 60_000, temperature: 4 + (i % 10) / 10 });
}

describe('exactly once across a crash', () => {
  it('after a crash between the Kafka commit and the outbox delete, neither resends what Kafka committed nor loses the rest', async () => {
    const gatewayId = `gw-rec-${randomUUID().slice(0, 6)}`;
    const topic = `recovery-${randomUUID().slice(0, 8)}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'reefer-recovery-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));

    // The state a gateway leaves when it dies right after Kafka committed rows 1-60.
    const outbox = openOutbox({ path: join(dataDir, 'outbox.db'), sync: 'full' });
    const rows = Array.from({ length: 100 }, (_, i) => reading(i));
    outbox.append(
      rows.map((r) => ({
        containerId: r.container_id,
        measurementMs: r.measurement_time,
        receivedMs: Date.now(),
        lane: 'routine' as const,
        encode: (seq: number) => encodeTelemetry({ ...r, gateway_id: gatewayId, seq, transport: 'mqtt', received_time: Date.now() }),
      })),
      [],
    );
    const stored = outbox.peek(1000);
    const epoch = outbox.epoch();
    outbox.close();

    const kafka = createKafkaClient({ brokers: [bootstrap], clientId: 'crashed-gateway' });
    const admin = kafka.admin();
    await admin.ensureTopics([{ topic, partitions: 3 }]);
    await admin.close();
    const toRecord = (row: (typeof stored)[number]) => ({ key: row.containerId, value: frameTelemetryBody(row.value), headers: { seq: String(row.seq) } });
    const crashed = kafka.transactionalProducer({ transactionalId: `reefer-gateway.${gatewayId}` });
    await crashed.connect();
    await crashed.commit([{ topic, records: stored.slice(0, 60).map(toRecord) }], {
      groupId: `reefer-gateway.${gatewayId}.progress`,
      topic,
      partition: 0,
      offset: 60,
      metadata: encodeMarker(epoch, [[1, 60]]),
    });
    await crashed.close();

    const reader = await readTopic(bootstrap, topic);
    cleanups.push(() => reader.close());
    const config = resolveConfig({
      file: {
        gatewayId,
        dataDir,
        mqtt: { host: '127.0.0.1', port: 0, auth: { allowAnonymous: true } },
        http: { host: '127.0.0.1', port: 0 },
        kafka: { brokers: [bootstrap], topic, requestTimeoutMs: 5000 },
        log: { level: process.env.REEFER_TEST_LOG ?? 'silent' },
      },
    });
    const gateway = await startGateway(config, { logger: createLogger(config.log.level) });
    cleanups.push(() => gateway.close());

    await reader.waitFor(100, 30_000);
    const delivered = await reader.settle(1500);
    const seqs = delivered.map((r) => r.value.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await expect.poll(() => gateway.status().outbox.count).toBe(0);
  });
});
