/**
 * The Confluent framing end to end against a real schema registry (Apicurio Registry's
 * Confluent-compatible API) and the real Kafka broker: versions registered under a FULL subject,
 * records of both versions produced to one topic and decoded by one consumer, and encoding from
 * the edge's id cache while the registry is down.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConfluentTelemetry, valueSubject, type ConfluentTelemetry } from '../../cloud-bridge/confluent-telemetry.js';
import { createKafkaClient, type ConsumedRecord, type KafkaRecord } from '../../cloud-bridge/kafka-client.js';
import { createFileSchemaIdCache, createMemorySchemaIdCache } from '../../cloud-bridge/schema-id-cache.js';
import { SchemaRegistryError, createSchemaRegistryClient, type SchemaRegistryClient } from '../../cloud-bridge/schema-registry.js';
import { TELEMETRY_SCHEMA_VERSIONS } from '../../schemas/avro.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import type { ReeferTelemetryV2, TelemetryVersion } from '../../schemas/reefer-telemetry-v2.js';
import { sampleReading } from '../harness/reference-reading.js';
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
  const dir = mkdtempSync(join(tmpdir(), 'reefer-registry-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function client(cache = createMemorySchemaIdCache()): SchemaRegistryClient {
  const registry = createSchemaRegistryClient({ url: server.url, requestTimeoutMs: 10_000 }, { cache });
  cleanups.push(() => registry.close());
  return registry;
}

function v1Record(seq: number): ReeferTelemetry {
  return {
    ...sampleReading({
      container_id: `C${seq % 5}`,
      measurement_time: Date.UTC(2026, 5, 1) + seq * 300_000,
      product_id: 'P06',
      temperature: -49 - (seq % 3) / 10,
      target_temperature: -50,
      ambient_temperature: 18.5,
      kilowatts: 3.2,
      content_type: 2,
      defrost_cycle: 3,
      latitude: 53.55,
      longitude: 9.99,
    }),
    gateway_id: 'gw-v1',
    seq,
    transport: 'mqtt',
    received_time: Date.UTC(2026, 5, 1) + seq * 300_000 + 800,
  };
}

function v2Record(seq: number): ReeferTelemetryV2 {
  return { ...v1Record(seq), gateway_id: 'gw-v2', lane: seq % 2 === 0 ? 'alarm' : 'routine', replayed: seq % 3 === 0, failure_label: seq % 2 === 0 ? 'tempgrowth' : 'none' };
}

async function produce(topic: string, records: readonly KafkaRecord[]): Promise<void> {
  const kafka = createKafkaClient({ brokers: [bootstrap], clientId: 'schema-registry-test' });
  const admin = kafka.admin();
  try {
    await admin.ensureTopics([{ topic, partitions: 1 }]);
  } finally {
    await admin.close();
  }
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send(topic, records);
  } finally {
    await producer.close();
  }
}

async function consume(topic: string, count: number): Promise<ConsumedRecord[]> {
  const reader = await readRawTopic(bootstrap, topic);
  try {
    const deadline = Date.now() + 60_000;
    while (reader.records().length < count) {
      if (Date.now() > deadline) throw new Error(`only ${reader.records().length} of ${count} records arrived in ${topic}`);
      await delay(50);
    }
    return reader.records();
  } finally {
    await reader.close();
  }
}

async function decodeAll<V extends TelemetryVersion>(telemetry: ConfluentTelemetry, records: readonly ConsumedRecord[], readerVersion: V) {
  const out = [];
  for (const r of records) {
    const decoded = await telemetry.decode(r.value ?? Buffer.alloc(0), readerVersion);
    if (!decoded.ok) throw new Error(decoded.detail);
    out.push({ writerVersion: decoded.writerVersion, value: { ...decoded.value } });
  }
  return out;
}

function strip(r: ReeferTelemetryV2): ReeferTelemetry {
  const { lane: _lane, replayed: _replayed, failure_label: _label, ...rest } = r;
  return rest;
}

describe('Confluent framing with a real schema registry', () => {
  it('registers both versions under a FULL subject, and one consumer decodes a topic fed by v1 and v2 producers as either version', async () => {
    const topic = `registry-${randomUUID().slice(0, 8)}`;
    const subject = valueSubject(topic);
    const producerSide = client();
    await producerSide.setCompatibility(subject, 'FULL');
    const producer = createConfluentTelemetry({ subject }, { registry: producerSide });
    const v1Id = await producer.schemaId(1);
    const v2Id = await producer.schemaId(2);
    expect(v2Id).not.toBe(v1Id);
    // Registering again gives the same id: another gateway on the same version shares it.
    expect(await createConfluentTelemetry({ subject }, { registry: client() }).schemaId(2)).toBe(v2Id);

    const values: KafkaRecord[] = [];
    for (let seq = 1; seq <= 6; seq++) {
      const value = seq % 2 === 1 ? await producer.encode(v1Record(seq), 1) : await producer.encode(v2Record(seq), 2);
      expect(value.readUInt32BE(1)).toBe(seq % 2 === 1 ? v1Id : v2Id);
      values.push({ key: `C${seq % 5}`, value });
    }
    await produce(topic, values);
    const consumed = await consume(topic, values.length);

    // A consumer that never saw the producer: it learns each writer schema from the registry by id.
    const consumer = createConfluentTelemetry({ subject }, { registry: client() });
    const asV2 = await decodeAll(consumer, consumed, 2);
    expect(asV2).toEqual(
      [1, 2, 3, 4, 5, 6].map((seq) =>
        seq % 2 === 1
          ? { writerVersion: 1, value: { ...v1Record(seq), lane: 'routine', replayed: false, failure_label: null } }
          : { writerVersion: 2, value: v2Record(seq) },
      ),
    );
    const asV1 = await decodeAll(consumer, consumed, 1);
    expect(asV1.map((d) => d.value)).toEqual([1, 2, 3, 4, 5, 6].map((seq) => (seq % 2 === 1 ? v1Record(seq) : strip(v2Record(seq)))));
  });

  it('refuses a version that breaks the subject compatibility rule, naming the registry answer, and does not cache it', async () => {
    const subject = valueSubject(`registry-${randomUUID().slice(0, 8)}`);
    const registry = client();
    await registry.setCompatibility(subject, 'FULL');
    await registry.register(subject, TELEMETRY_SCHEMA_VERSIONS[1].schema);
    const v1 = TELEMETRY_SCHEMA_VERSIONS[1].schema;
    const broken = { ...v1, fields: v1.fields.map((f) => (f.name === 'temperature' ? { ...f, type: 'string' } : f)) };
    let error: unknown;
    try {
      await registry.register(subject, broken);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SchemaRegistryError);
    expect(error).toMatchObject({ code: 'REEFER_REGISTRY_REJECTED', retriable: false, status: 409 });
    expect((error as Error).message).toContain(
      `the registry refused reeferedge.ReeferTelemetry under subject ${subject} (against its latest version 1: ` +
        `backward: field reeferedge.ReeferTelemetry.temperature: the writer's type "double" cannot be read as the reader's "string"`,
    );
    expect((error as Error).message).toMatch(/: 409 \(error 409\): .*Incompatible/);
    expect(registry.cachedId(subject, broken)).toBeUndefined();
  });

  it('keeps encoding from the cached ids while the registry is down, fails a first registration as retriable, and recovers when it is back', async () => {
    const topic = `registry-down-${randomUUID().slice(0, 8)}`;
    const subject = valueSubject(topic);
    const cachePath = join(tempFolder(), 'schema-ids.json');
    const first = createConfluentTelemetry({ subject }, { registry: client(createFileSchemaIdCache({ path: cachePath })) });
    const v1Id = await first.schemaId(1);
    const v2Id = await first.schemaId(2);

    await server.stop();
    try {
      // A gateway restarted while the registry is down: its ids come from the cache file alone.
      const restarted = client(createFileSchemaIdCache({ path: cachePath }));
      const telemetry = createConfluentTelemetry({ subject }, { registry: restarted });
      const values = [await telemetry.encode(v1Record(1), 1), await telemetry.encode(v2Record(2), 2)];
      expect(values.map((v) => v.readUInt32BE(1))).toEqual([v1Id, v2Id]);
      await produce(
        topic,
        values.map((value, i) => ({ key: `C${i}`, value })),
      );

      // A subject it never registered under needs the registry.
      const otherSubject = valueSubject(`${topic}-other`);
      let error: unknown;
      try {
        await createConfluentTelemetry({ subject: otherSubject }, { registry: restarted }).encode(v1Record(3), 1);
      } catch (err) {
        error = err;
      }
      expect(error).toMatchObject({ code: 'REEFER_REGISTRY_UNREACHABLE', retriable: true });
      expect((error as Error).message).toContain(`under subject ${otherSubject}: its id is not cached yet and the registry is unreachable`);
    } finally {
      await server.start();
    }

    const consumed = await consume(topic, 2);
    const decoded = await decodeAll(createConfluentTelemetry({ subject }, { registry: client() }), consumed, 2);
    expect(decoded).toEqual([
      { writerVersion: 1, value: { ...v1Record(1), lane: 'routine', replayed: false, failure_label: null } },
      { writerVersion: 2, value: v2Record(2) },
    ]);
    expect(await createConfluentTelemetry({ subject: valueSubject(`${topic}-other`) }, { registry: client() }).schemaId(1)).toEqual(expect.any(Number));
  });
});
