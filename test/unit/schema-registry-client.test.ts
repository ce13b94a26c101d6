/**
 * The registry client where no registry answers: a loopback port nobody listens on (refused) and a
 * server that accepts connections and never replies (hung). Talking to a real registry is in
 * test/integration/schema-registry.test.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createConfluentTelemetry, valueSubject } from '../../cloud-bridge/confluent-telemetry.js';
import { createMemorySchemaIdCache } from '../../cloud-bridge/schema-id-cache.js';
import { SchemaRegistryError, createSchemaRegistryClient } from '../../cloud-bridge/schema-registry.js';
import { TELEMETRY_SCHEMA_VERSIONS, encodeTelemetryBody } from '../../schemas/avro.js';
import type { ReeferTelemetryV2 } from '../../schemas/reefer-telemetry-v2.js';
import { freePort } from '../harness/free-port.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const record: ReeferTelemetryV2 = {
  container_id: 'C01',
  measurement_time: Date.UTC(2026, 0, 1),
  product_id: null,
  temperature: -49.5,
  target_temperature: -50,
  ambient_temperature: null,
  kilowatts: 3.1,
  time_door_open: null,
  content_type: 2,
  defrost_cycle: null,
  oxygen_level: null,
  nitrogen_level: null,
  humidity_level: null,
  carbon_dioxide_level: null,
  fan_1: true,
  fan_2: true,
  fan_3: true,
  latitude: null,
  longitude: null,
  maintenance_required: null,
  gateway_id: 'gw-1',
  seq: 12,
  transport: 'mqtt',
  received_time: Date.UTC(2026, 0, 1, 0, 0, 1),
  lane: 'routine',
  replayed: false,
  failure_label: null,
};

const subject = valueSubject('reefer-telemetry');
const v2Fingerprint = TELEMETRY_SCHEMA_VERSIONS[2].fingerprint.toString('hex');

async function refusedUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/apis/ccompat/v7`;
}

async function hungUrl(): Promise<string> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

async function rejection(promise: Promise<unknown>): Promise<SchemaRegistryError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SchemaRegistryError) return err;
    throw err;
  }
  throw new Error('expected a SchemaRegistryError');
}

describe('schema registry client without a registry', () => {
  it('fails a first-ever registration with a retriable error that says the id is not cached yet', async () => {
    const url = await refusedUrl();
    const registry = createSchemaRegistryClient({ url }, { cache: createMemorySchemaIdCache() });
    const err = await rejection(registry.register(subject, TELEMETRY_SCHEMA_VERSIONS[2].schema));
    expect(err).toMatchObject({ code: 'REEFER_REGISTRY_UNREACHABLE', retriable: true, status: undefined });
    expect(err.message).toContain(`cannot encode with reeferedge.ReeferTelemetry (fingerprint ${v2Fingerprint}) under subject ${subject}: its id is not cached yet`);
    expect(err.message).toContain(`POST ${url}/subjects/${subject}/versions: ECONNREFUSED`);
    expect(err.message).toContain('encoding can start once the registry answers one registration');
    expect(err.cause).toBeInstanceOf(SchemaRegistryError);
  });

  it('encodes from a cached id without asking the registry', async () => {
    const cache = createMemorySchemaIdCache();
    const url = await refusedUrl();
    cache.put({ registryUrl: url, subject, fingerprint: v2Fingerprint }, 1234);
    const registry = createSchemaRegistryClient({ url }, { cache });
    const telemetry = createConfluentTelemetry({ subject }, { registry });
    const value = await telemetry.encode(record, 2);
    expect([...value.subarray(0, 5)]).toEqual([0, 0, 0, 0x04, 0xd2]);
    expect(value.subarray(5).equals(encodeTelemetryBody(record, 2))).toBe(true);
    expect(registry.cachedId(subject, TELEMETRY_SCHEMA_VERSIONS[2].schema)).toBe(1234);
    // The cache is per registry: the same schema is not known to another one.
    expect(registry.cachedId('other-value', TELEMETRY_SCHEMA_VERSIONS[2].schema)).toBeUndefined();
  });

  it('treats a registry that accepts the connection but never answers as unreachable', async () => {
    const url = await hungUrl();
    const registry = createSchemaRegistryClient({ url, requestTimeoutMs: 300 }, { cache: createMemorySchemaIdCache() });
    const err = await rejection(registry.schemaById(1));
    expect(err).toMatchObject({ code: 'REEFER_REGISTRY_UNREACHABLE', retriable: true, message: `GET ${url}/schemas/ids/1: no answer within 300 ms` });
  });

  it('rejects decoding a value whose writer schema it cannot fetch, rather than calling it bad data', async () => {
    const registry = createSchemaRegistryClient({ url: await refusedUrl() }, { cache: createMemorySchemaIdCache() });
    const telemetry = createConfluentTelemetry({ subject }, { registry });
    const value = Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), encodeTelemetryBody(record, 2)]);
    expect(await rejection(telemetry.decode(value, 1))).toMatchObject({ code: 'REEFER_REGISTRY_UNREACHABLE', retriable: true });
    expect(await telemetry.decode(Buffer.from([0xc3, 0x01]), 1)).toEqual({ ok: false, detail: 'expected the Confluent magic byte 00, got c3' });
  });

  it('on close, aborts a request in flight and refuses later ones; closing twice is harmless', async () => {
    const registry = createSchemaRegistryClient({ url: await hungUrl(), requestTimeoutMs: 60_000 }, { cache: createMemorySchemaIdCache() });
    const pending = rejection(registry.register(subject, TELEMETRY_SCHEMA_VERSIONS[1].schema));
    await registry.close();
    await registry.close();
    expect(await pending).toMatchObject({ code: 'REEFER_REGISTRY_CLOSED', retriable: false });
    expect(await rejection(registry.schemaById(1))).toMatchObject({ code: 'REEFER_REGISTRY_CLOSED', message: 'the schema registry client is closed' });
  });
});
