import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BridgeError, type BridgeLink } from '../../cloud-bridge/bridge-link.js';
import type { ProgressMarker, TopicRecords } from '../../cloud-bridge/kafka-client.js';
import { encodeTelemetry, frameTelemetryBody } from '../../schemas/avro.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { startTestBridge, startTestLink, type TestBridge } from '../harness/bridge-under-test.js';
import { checkDelivery } from '../harness/delivery-check.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';
import { createTestCertificates, type TestCertificates } from '../harness/test-certs.js';
import { readTopic, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const suffix = randomUUID().slice(0, 6);
const shipA = { username: `ship-a-${suffix}`, password: 'correct horse battery staple' };
const shipB = { username: `ship-b-${suffix}`, password: 'another long password' };
const topic = `bridge-sec-${suffix}`;
let dir: string;
let certs: TestCertificates;
let bridge: TestBridge;
let reader: TopicReader;
const links: BridgeLink[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'reefer-bridge-sec-'));
  certs = createTestCertificates(join(dir, 'certs'), ['ship-a']);
  reader = await readTopic(bootstrap, topic);
  bridge = await startTestBridge(bootstrap, { logins: [shipA, shipB], allow: [topic], tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
});

afterAll(async () => {
  await Promise.all(links.map((l) => l.close()));
  for (const c of clients) c.end(true);
  await bridge?.close();
  await reader?.close();
  rmSync(dir, { recursive: true, force: true });
});

function link(login: { username: string; password: string }, to: TestBridge = bridge, clientCert?: { certFile: string; keyFile: string }): BridgeLink {
  const l = startTestLink({ url: to.url, login, topic, tls: { caFile: certs.caFile, rejectUnauthorized: true, ...clientCert } });
  links.push(l);
  return l;
}

/** A raw MQTT client over TLS, for what a gateway's link never does. */
function rawClient(username: string, password: string, withCa = true): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(bridge.url, { username, password, reconnectPeriod: 0, connectTimeout: 3000, protocolVersion: 4, ...(withCa ? { ca: readFileSync(certs.caFile) } : {}) });
    clients.push(c);
    c.once('connect', () => resolve(c));
    c.once('error', (error) => reject(error));
  });
}

function reading(i: number): ReeferReading {
  return { ...REFERENCE_READING, container_id: `C${i % 3}`, measurement_time: REFERENCE_READING.measurement_time + i * 60_000 };
}

function batch(gatewayId: string, seqs: readonly number[]): TopicRecords[] {
  return [
    {
      topic,
      records: seqs.map((seq) => {
        const r = reading(seq);
        return {
          key: r.container_id,
          value: frameTelemetryBody(encodeTelemetry({ ...r, gateway_id: gatewayId, seq, transport: 'mqtt', received_time: r.measurement_time })),
          headers: { gateway_id: gatewayId, seq: String(seq), lane: 'routine' },
        };
      }),
    },
  ];
}

function marker(gatewayId: string, epoch: string, from: number, to: number): ProgressMarker {
  return { groupId: `reefer-gateway.${gatewayId}.progress`, topic, partition: 0, offset: to, metadata: `${epoch}:${from}-${to}` };
}

async function refusal(promise: Promise<unknown>): Promise<BridgeError> {
  const error = await promise.then(
    () => {
      throw new Error('the bridge accepted it');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BridgeError);
  return error as BridgeError;
}

async function connected(l: BridgeLink): Promise<void> {
  await expect.poll(() => l.stats().connectedUrl, { timeout: 5000 }).toBe(bridge.url);
}

const seqRange = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('bridge security', () => {
  it('refuses a wrong password, an unknown gateway and a client that does not trust the bridge certificate', async () => {
    await expect(rawClient(shipA.username, 'wrong password')).rejects.toThrow(/Bad username or password/);
    await expect(rawClient(`ghost-${suffix}`, shipA.password)).rejects.toThrow(/Bad username or password/);
    await expect(rawClient(shipA.username, shipA.password, false)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    const ok = await rawClient(shipA.username, shipA.password);
    expect(ok.connected).toBe(true);
    expect(bridge.bridge.server.refused()).toMatchObject({ 'bad-password': 1, 'unknown-user': 1 });
  });

  it('requires a gateway certificate when the bridge asks for one', async () => {
    const strict = await startTestBridge(bootstrap, {
      logins: [shipA],
      allow: [topic],
      tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile, caFile: certs.caFile, requireClientCert: true },
    });
    try {
      const withCert = link(shipA, strict, certs.clients['ship-a']);
      await expect.poll(() => withCert.stats().connectedUrl, { timeout: 5000 }).toBe(strict.url);
      await withCert.admin().listTopics();
      const withStranger = link(shipA, strict, certs.stranger);
      const withoutCert = link(shipA, strict);
      await expect.poll(() => strict.bridge.server.refused()['tls-handshake'] ?? 0, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
      expect(withStranger.stats().connections).toBe(0);
      expect(withoutCert.stats().connections).toBe(0);
      await Promise.all([withCert.close(), withStranger.close(), withoutCert.close()]);
    } finally {
      await strict.close();
    }
  });

  it('keeps a gateway to its own topics: no subscribing to, or publishing on, another gateway’s', async () => {
    const c = await rawClient(shipA.username, shipA.password);
    // MQTT.js reports a SUBACK failure code (0x80) as an error.
    await expect(c.subscribeAsync(`reefer-bridge/${shipB.username}/reply`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(c.subscribeAsync(`reefer-bridge/${shipB.username}/commands`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(c.subscribeAsync(`reefer-bridge/${shipA.username}/request`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
    const granted = await c.subscribeAsync(`reefer-bridge/${shipA.username}/reply`, { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1]);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish(`reefer-bridge/${shipB.username}/request`, Buffer.from([0x10]), { qos: 1 });
    await closed;
    expect(bridge.bridge.server.refused()).toMatchObject({ 'publish-denied': 1, 'subscribe-denied': 3 });
  });

  it('refuses a batch for a topic not on the allow-list, another gateway’s progress group or records, each with a clear error', async () => {
    const l = link(shipA);
    await connected(l);
    const producer = l.producer();
    await producer.connect();

    const notAllowed = await refusal(producer.commit([{ topic: 'reefer-telemetry-elsewhere', records: batch(shipA.username, [1])[0]!.records }], marker(shipA.username, 'ep', 1, 1)));
    expect(notAllowed.code).toBe('topic-not-allowed');
    expect(notAllowed.retriable).toBe(false);
    expect(notAllowed.message).toBe(`bridge: topic "reefer-telemetry-elsewhere" is not in the bridge's topics.allow (${topic})`);

    const otherGroup = await refusal(producer.commit(batch(shipA.username, [1]), marker(shipB.username, 'ep', 1, 1)));
    expect(otherGroup.code).toBe('group-not-allowed');
    expect(otherGroup.message).toContain(`expected reefer-gateway.${shipA.username}.progress`);

    const otherRecords = await refusal(producer.commit(batch(shipB.username, [1]), marker(shipA.username, 'ep', 1, 1)));
    expect(otherRecords.code).toBe('gateway-id-mismatch');

    const openElsewhere = await refusal(createBridgeLinkProducerOn(l, 'reefer-telemetry-elsewhere'));
    expect(openElsewhere.code).toBe('topic-not-allowed');
    const records = await reader.settle(500);
    expect(records.filter((r) => r.headers.gateway_id !== shipA.username)).toHaveLength(0);
    await l.close();
  });

  it('writes a resent batch (same seqs) once, whether the gateway recovered first or not, and fences the older session', async () => {
    const gatewayId = shipB.username;
    const l = link(shipB);
    await connected(l);
    const epoch = `ep-${randomUUID().slice(0, 8)}`;
    const first = l.producer();
    await first.connect();
    await first.commit(batch(gatewayId, seqRange(1, 10)), marker(gatewayId, epoch, 1, 10));
    // The same session sends it again (its reply was lost, say).
    await first.commit(batch(gatewayId, seqRange(1, 10)), marker(gatewayId, epoch, 1, 10));

    // A new session that did not read the marker first resends the batch with two new readings.
    const second = l.producer();
    await second.connect();
    const fenced = await refusal(first.commit(batch(gatewayId, [11]), marker(gatewayId, epoch, 11, 11)));
    expect(fenced.code).toBe('fenced');
    expect(fenced.retriable).toBe(true);
    await second.commit(batch(gatewayId, seqRange(1, 12)), marker(gatewayId, epoch, 1, 12));
    // Ranges committed earlier in the session are remembered too, not only the last marker.
    await second.commit(batch(gatewayId, seqRange(13, 14)), marker(gatewayId, epoch, 13, 14));
    await second.commit(batch(gatewayId, seqRange(1, 14)), marker(gatewayId, epoch, 1, 14));

    const delivered = (await reader.waitFor(0, 1).then(() => reader.settle(1500))).filter((r) => r.headers.gateway_id === gatewayId);
    const report = checkDelivery(seqRange(1, 14).map(reading), delivered);
    expect(report).toMatchObject({ acknowledged: 14, delivered: 14, duplicated: 0, lost: 0, unexpected: 0 });
    expect(delivered.map((r) => Number(r.headers.seq)).sort((a, b) => a - b)).toEqual(seqRange(1, 14));
    expect(bridge.bridge.service.stats().duplicatesDropped).toBe(10 + 10 + 14);
    await l.close();
  });
});

/** Opens a session whose marker lives under `markerTopic`, as a gateway configured with that topic would. */
async function createBridgeLinkProducerOn(l: BridgeLink, markerTopic: string): Promise<void> {
  const other = startTestLink({ url: bridge.url, login: shipA, topic: markerTopic, tls: { caFile: certs.caFile, rejectUnauthorized: true }, compression: 'deflate' });
  links.push(other);
  await connected(other);
  expect(l.stats().connectedUrl).toBe(bridge.url);
  await other.producer().connect();
}
