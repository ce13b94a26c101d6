import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { connectDevice, type DeviceConnection } from '../../device-sim/mqtt-transport.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { readTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function gatewayWith(limits: Record<string, unknown>): Promise<GatewayUnderTest> {
  const gw = await startTestGateway(bootstrap, { mqtt: { auth: { allowAnonymous: true }, limits } });
  cleanups.push(() => gw.close());
  return gw;
}

async function device(gw: GatewayUnderTest, clientId: string): Promise<DeviceConnection> {
  const connection = await connectDevice({ url: gw.mqttUrl, clientId, qos: 1, reconnectPeriodMs: 0, connectTimeoutMs: 20_000 });
  cleanups.push(() => connection.close());
  return connection;
}

const BASE_MS = Date.UTC(2026, 3, 1);

function reading(containerId: string, minute: number): Buffer {
  return Buffer.from(JSON.stringify({ container_id: containerId, measurement_time: new Date(BASE_MS + minute * 60_000).toISOString(), temperature: 5 }));
}

const refused = (gw: GatewayUnderTest, reason: string) => (gw.gateway.status().security.refused as Record<string, number>)[reason] ?? 0;

/** An MQTT 3.1.1 CONNECT with a clean session and the given client id. */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, id.length >> 8, id.length & 0xff]), id]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

describe('input limits', () => {
  it('throttles, then refuses, a flooding device with a counted reason, while a well-behaved one gets every acknowledged reading into Kafka', async () => {
    const gw = await gatewayWith({ readingsPerSecond: 5, readingsBurst: 5, maxThrottleMs: 500 });
    const reader = await readTopic(bootstrap, gw.topic);
    cleanups.push(() => reader.close());
    const flood = await device(gw, 'flood');
    const steady = await device(gw, 'steady');

    // Its burst goes through; then it sends 200 at once, as a device stuck in a loop would.
    const floodAcked: number[] = [];
    for (let minute = 0; minute < 5; minute++) {
      await flood.publish('reefer/F01/telemetry', reading('F01', minute));
      floodAcked.push(minute);
    }
    const floodAttempts = Array.from({ length: 200 }, (_, i) => i + 5).map((minute) =>
      flood.publish('reefer/F01/telemetry', reading('F01', minute)).then(
        () => void floodAcked.push(minute),
        () => undefined,
      ),
    );
    // Past its burst, the steady device waits 1/rate for each reading: held back, never refused.
    for (let minute = 0; minute < 8; minute++) await steady.publish('reefer/S01/telemetry', reading('S01', minute));

    await expect.poll(() => refused(gw, 'rate-limited'), { timeout: 20_000 }).toBeGreaterThan(0);
    await expect.poll(() => flood.connected, { timeout: 20_000 }).toBe(false);
    await flood.close();
    await Promise.all(floodAttempts);
    const security = gw.gateway.status().security;
    expect(security.throttled).toBeGreaterThan(0);
    expect(Object.keys(security.refused)).toEqual(['rate-limited']);
    expect(steady.connected).toBe(true);
    expect(floodAcked.length).toBeLessThan(205);

    await reader.waitFor(8 + floodAcked.length, 30_000);
    const delivered = await reader.settle(1000);
    const minutes = (id: string) => delivered.filter((r) => r.value.container_id === id).map((r) => (Number(r.value.measurement_time) - BASE_MS) / 60_000);
    expect(minutes('S01').sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // What the flooding device was acknowledged for is kept too: refusing it never loses a reading.
    expect(minutes('F01')).toEqual(expect.arrayContaining(floodAcked));
  });

  it('refuses topics longer or deeper than the limits, publishing or subscribing, and counts each', async () => {
    const gw = await gatewayWith({ maxTopicBytes: 64, maxTopicLevels: 5 });
    const deep = await device(gw, 'deep');
    void deep.publish('reefer/C01/telemetry/a/b/c', reading('C01', 0)).catch(() => undefined);
    await expect.poll(() => refused(gw, 'topic-too-deep'), { timeout: 20_000 }).toBe(1);
    await expect.poll(() => deep.connected, { timeout: 20_000 }).toBe(false);

    const long = await device(gw, 'long');
    void long.publish(`reefer/${'C'.repeat(60)}/telemetry`, reading('C01', 0)).catch(() => undefined);
    await expect.poll(() => refused(gw, 'topic-too-long'), { timeout: 20_000 }).toBe(1);
    await expect.poll(() => long.connected, { timeout: 20_000 }).toBe(false);

    // aedes itself refuses topics past 100 levels, before asking the gateway: counted all the same.
    const deeper = await device(gw, 'deeper');
    void deeper.publish(`reefer/${'x/'.repeat(120)}telemetry`, reading('C01', 0)).catch(() => undefined);
    await expect.poll(() => refused(gw, 'topic-too-deep'), { timeout: 20_000 }).toBe(2);

    const subscriber = await device(gw, 'subscriber');
    expect(await subscriber.subscribe('reefer/C01/commands/a/b/c')).toBe(128);
    expect(refused(gw, 'topic-too-deep')).toBe(3);
    expect(await subscriber.subscribe('reefer/C01/commands')).toBe(1);
    await subscriber.publish('reefer/C01/telemetry', reading('C01', 1));
    expect(gw.gateway.status().stats.acceptedTotal).toBe(1);
  });

  it('closes connections beyond maxConnections at once, counted, and takes new ones once others left', async () => {
    const gw = await gatewayWith({ maxConnections: 2 });
    const first = await device(gw, 'first');
    await device(gw, 'second');
    await expect(connectDevice({ url: gw.mqttUrl, clientId: 'third', qos: 1, reconnectPeriodMs: 0 })).rejects.toThrow();
    expect(refused(gw, 'too-many-connections')).toBe(1);

    await first.close();
    await expect.poll(() => gw.gateway.status().security.connections, { timeout: 20_000 }).toBe(1);
    const later = await device(gw, 'later');
    await later.publish('reefer/C01/telemetry', reading('C01', 2));
    expect(refused(gw, 'too-many-connections')).toBe(1);
  });

  it('closes a connection whose packet header announces more than maxPacketBytes, without waiting for the packet', async () => {
    const gw = await gatewayWith({ maxPacketBytes: 128 * 1024 });
    const socket: Socket = connect({ host: '127.0.0.1', port: gw.gateway.mqttPort() });
    cleanups.push(async () => void socket.destroy());
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(connectPacket('big-sender'));
    // A QoS 0 PUBLISH announcing 256 MB; only its first bytes are ever sent.
    socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x13]));
    socket.write(Buffer.from('reefer/C01/telemetry'));
    await closed;
    expect(refused(gw, 'packet-too-large')).toBe(1);

    // A reading over mqtt.maxPayloadBytes but within the packet limit is still dead-lettered, the device kept.
    const sender = await device(gw, 'oversized');
    await sender.publish('reefer/C01/telemetry', Buffer.alloc(70 * 1024, 0x20));
    expect(gw.gateway.status().stats.rejected).toEqual({ mqtt: { oversized: 1 } });
    expect(sender.connected).toBe(true);
  });
});
