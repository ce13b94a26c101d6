/**
 * A gateway configured with a real schema registry (Apicurio Registry's Confluent-compatible API):
 * record values in the Confluent wire format with the registry's id, the id kept in the outbox
 * database so delivery goes on across a restart while the registry is down, and readings held in the
 * outbox while no id is known and the registry is unreachable.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConfluentTelemetry, valueSubject, type ConfluentTelemetry } from '../../cloud-bridge/confluent-telemetry.js';
import type { ConsumedRecord } from '../../cloud-bridge/kafka-client.js';
import { createMemorySchemaIdCache } from '../../cloud-bridge/schema-id-cache.js';
import { createSchemaRegistryClient } from '../../cloud-bridge/schema-registry.js';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { startSchemaRegistry, type SchemaRegistryServer } from '../harness/schema-registry.js';
import { readRawTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
let server: SchemaRegistryServer;
beforeAll(async () => {
  server = await startSchemaRegistry();
}, 600_000);
afterAll(async () => {
  await server?.close();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function tempFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'reefer-gw-registry-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A consumer's view: it knows the registry, not the gateway, and learns each writer schema by id. */
function consumerSide(subject: string): ConfluentTelemetry {
  const registry = createSchemaRegistryClient({ url: server.url, requestTimeoutMs: 10_000 }, { cache: createMemorySchemaIdCache() });
  cleanups.push(() => registry.close());
  return createConfluentTelemetry({ subject }, { registry });
}

/** A gateway on `dataDir` and `topic`, so a restart finds the same outbox; stopped (not removed) after the test. */
async function gatewayOn(dataDir: string, topic: string, logs: Record<string, unknown>[] = []): Promise<GatewayUnderTest> {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const gw = await startTestGateway(
    bootstrap,
    {
      dataDir,
      kafka: {
        brokers: [bootstrap],
        topic,
        deadLetterTopic: `${topic}-deadletter`,
        requestTimeoutMs: 5000,
        connectionTimeoutMs: 1000,
        schemaRegistry: { url: server.url, requestTimeoutMs: 2000 },
      },
    },
    { logger },
  );
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await gw.gateway.close();
  };
  cleanups.push(close);
  return { ...gw, close };
}

async function publish(gw: GatewayUnderTest, containerId: string, minutes: readonly number[]): Promise<void> {
  const device = await connectDevice({ url: gw.mqttUrl, clientId: `dev-${randomUUID().slice(0, 8)}`, qos: 1 });
  try {
    for (const minute of minutes) {
      const t = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
      await device.publish(`reefer/${containerId}/telemetry`, Buffer.from(JSON.stringify({ container_id: containerId, measurement_time: t, temperature: 4 + minute / 100 })));
    }
  } finally {
    await device.close();
  }
}

async function topicReader(topic: string): Promise<{ records(): ConsumedRecord[] }> {
  const reader = await readRawTopic(bootstrap, topic);
  cleanups.push(() => reader.close());
  return reader;
}

async function decodeAll(consumer: ConfluentTelemetry, records: readonly ConsumedRecord[]) {
  const out: { schemaId: number; containerId: string; measurementTime: number; temperature: number | null }[] = [];
  for (const r of records) {
    const value = r.value ?? Buffer.alloc(0);
    const decoded = await consumer.decode(value, 1);
    if (!decoded.ok) throw new Error(decoded.detail);
    out.push({ schemaId: value.readUInt32BE(1), containerId: decoded.value.container_id, measurementTime: decoded.value.measurement_time, temperature: decoded.value.temperature });
  }
  return out;
}

const minute = (m: number) => Date.UTC(2026, 0, 1, 0, m);

describe('gateway with a schema registry', () => {
  it('frames values with the registry id, and after a restart with the registry down keeps framing with the id from its outbox database', async () => {
    const dataDir = tempFolder();
    const topic = `reefer-telemetry-${randomUUID().slice(0, 8)}`;
    const subject = valueSubject(topic);
    const consumer = consumerSide(subject);
    const reader = await topicReader(topic);

    const first = await gatewayOn(dataDir, topic);
    await publish(first, 'R1', [0, 5, 10]);
    await expect.poll(() => reader.records().length, { timeout: 60_000 }).toBe(3);
    // The id a consumer finds under the subject is the one in front of every value.
    const registeredId = await consumer.schemaId(1);
    const delivered = await decodeAll(consumer, reader.records());
    expect(delivered).toEqual([0, 5, 10].map((m) => ({ schemaId: registeredId, containerId: 'R1', measurementTime: minute(m), temperature: 4 + m / 100 })));
    expect(reader.records().every((r) => r.value?.[0] === 0x00)).toBe(true);
    await first.close();

    await server.stop();
    try {
      const logs: Record<string, unknown>[] = [];
      const second = await gatewayOn(dataDir, topic, logs);
      await publish(second, 'R1', [15, 20]);
      await expect.poll(() => reader.records().length, { timeout: 60_000 }).toBe(5);
      // The consumer fetched the writer schema while the registry was up; ids never change meaning.
      expect(await decodeAll(consumer, reader.records().slice(3))).toEqual(
        [15, 20].map((m) => ({ schemaId: registeredId, containerId: 'R1', measurementTime: minute(m), temperature: 4 + m / 100 })),
      );
      expect(second.gateway.status().outbox.count).toBe(0);
      expect(logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('no schema id'))).toEqual([]);
    } finally {
      await server.start();
    }
  });

  it('with no id cached and the registry down, keeps readings in the outbox and reports the uplink down until the registry answers', async () => {
    const dataDir = tempFolder();
    const topic = `reefer-telemetry-${randomUUID().slice(0, 8)}`;
    const reader = await topicReader(topic);
    await server.stop();
    let registryUp = false;
    cleanups.push(async () => {
      if (!registryUp) await server.start();
    });

    const logs: Record<string, unknown>[] = [];
    const gw = await gatewayOn(dataDir, topic, logs);
    await publish(gw, 'R2', [0, 5, 10, 15]);
    expect(gw.gateway.status().outbox.count).toBe(4);
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('down');
    await expect
      .poll(() => logs.filter((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('no schema id')).length, { timeout: 30_000 })
      .toBeGreaterThan(1);
    const warning = logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('no schema id'))!;
    expect(warning.err).toMatch(/registry is unreachable/);
    // Several attempts failed, and nothing went out in another framing meanwhile.
    expect(gw.gateway.status().outbox.count).toBe(4);
    expect(reader.records()).toEqual([]);

    await server.start();
    registryUp = true;
    await expect.poll(() => reader.records().length, { timeout: 60_000 }).toBe(4);
    const consumer = consumerSide(valueSubject(topic));
    const id = await consumer.schemaId(1);
    expect(await decodeAll(consumer, reader.records())).toEqual(
      [0, 5, 10, 15].map((m) => ({ schemaId: id, containerId: 'R2', measurementTime: minute(m), temperature: 4 + m / 100 })),
    );
    await expect.poll(() => gw.gateway.status().outbox.count).toBe(0);
    expect(gw.gateway.status().uplink).toBe('up');
  });
});
