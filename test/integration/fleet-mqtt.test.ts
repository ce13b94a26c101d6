import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFleet, type FleetOptions } from '../../device-sim/fleet.js';
import { SINGLE_OBJECT_MAGIC } from '../../schemas/avro.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { freePort } from '../harness/free-port.js';

interface Received {
  topicContainerId: string;
  payload: Buffer;
}

/** A real aedes broker on a real loopback socket, recording every device publish it accepts. */
async function startBroker(): Promise<{ url: string; received: Received[]; broker: Aedes; close(): Promise<void> }> {
  const broker = await Aedes.createBroker();
  const received: Received[] = [];
  broker.on('publish', (packet, client) => {
    const match = /^reefer\/([^/]+)\/telemetry$/.exec(packet.topic);
    if (client && match) received.push({ topicContainerId: match[1]!, payload: Buffer.from(packet.payload) });
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    received,
    broker,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

function baseOptions(url: string, overrides: Partial<FleetOptions>): FleetOptions {
  return { mqttUrl: url, devices: 20, ratePerSecond: 0, countPerDevice: 10, seed: 1, qos: 1, form: 'canonical-json', ...overrides };
}

function decodeCanonical(r: Received): { containerId: string; timeMs: number } {
  const body = JSON.parse(r.payload.toString('utf8')) as { container_id: string; measurement_time: string };
  expect(body.container_id).toBe(r.topicContainerId);
  return { containerId: body.container_id, timeMs: Date.parse(body.measurement_time) };
}

describe('fleet over MQTT against a real broker', () => {
  let broker: Awaited<ReturnType<typeof startBroker>>;

  beforeEach(async () => {
    broker = await startBroker();
  });

  afterEach(async () => {
    await broker.close();
  });

  it('delivers exactly 20 × 10 readings at QoS 1, in order per container, and reports each acknowledgement', async () => {
    const acked: { reading: ReeferReading; containerId: string }[] = [];
    const fleet = createFleet(
      baseOptions(broker.url, { onSent: (reading, containerId) => acked.push({ reading, containerId }) }),
    );

    const summary = await fleet.run();

    expect(summary).toMatchObject({ devices: 20, connected: 20, sent: 200, errors: 0 });
    expect(acked).toHaveLength(200);
    expect(broker.received).toHaveLength(200);

    const byContainer = new Map<string, number[]>();
    for (const r of broker.received) {
      const { containerId, timeMs } = decodeCanonical(r);
      byContainer.set(containerId, [...(byContainer.get(containerId) ?? []), timeMs]);
    }
    expect(byContainer.size).toBe(20);
    for (const [containerId, times] of byContainer) {
      expect(times, containerId).toHaveLength(10);
      expect(times, containerId).toEqual([...times].sort((a, b) => a - b));
      expect(new Set(times).size, containerId).toBe(10);
    }

    const ackedKeys = acked.map(({ reading, containerId }) => {
      expect(reading.container_id).toBe(containerId);
      return `${containerId}@${reading.measurement_time}`;
    });
    const receivedKeys = broker.received.map((r) => {
      const { containerId, timeMs } = decodeCanonical(r);
      return `${containerId}@${timeMs}`;
    });
    expect(new Set(ackedKeys).size).toBe(200);
    expect([...ackedKeys].sort()).toEqual([...receivedKeys].sort());
    expect(broker.broker.connectedClients).toBe(0);
  });

  it('sends exactly countPerDevice readings per device when paced by a fleet-wide rate', async () => {
    const fleet = createFleet(baseOptions(broker.url, { devices: 5, countPerDevice: 7, ratePerSecond: 500, maxInFlightPerDevice: 2 }));

    const summary = await fleet.run();

    expect(summary).toMatchObject({ devices: 5, connected: 5, sent: 35, errors: 0 });
    const perContainer = new Map<string, number>();
    for (const r of broker.received) perContainer.set(r.topicContainerId, (perContainer.get(r.topicContainerId) ?? 0) + 1);
    expect([...perContainer.values()]).toEqual([7, 7, 7, 7, 7]);
  });

  it('stops on stop(): every acknowledged reading reached the broker and every connection is closed', async () => {
    let acked = 0;
    const fleet = createFleet(
      baseOptions(broker.url, { devices: 4, countPerDevice: undefined, ratePerSecond: 400, onSent: () => (acked += 1) }),
    );
    const running = fleet.run();
    await expect.poll(() => fleet.progress().sent, { timeout: 10_000 }).toBeGreaterThan(20);

    await fleet.stop();
    await fleet.stop();
    const summary = await running;

    expect(summary.sent).toBe(acked);
    expect(summary.errors).toBe(0);
    expect(broker.received.length).toBe(summary.sent);
    await expect.poll(() => broker.broker.connectedClients).toBe(0);
  });

  it('stops when the duration ends', async () => {
    const fleet = createFleet(baseOptions(broker.url, { devices: 2, countPerDevice: undefined, ratePerSecond: 50, durationMs: 300 }));

    const summary = await fleet.run();

    expect(summary.sent).toBeGreaterThan(0);
    expect(summary.errors).toBe(0);
    expect(broker.received.length).toBe(summary.sent);
  });

  it('publishes Avro single-object payloads at QoS 0', async () => {
    const fleet = createFleet(baseOptions(broker.url, { devices: 2, countPerDevice: 3, qos: 0, form: 'avro' }));

    const summary = await fleet.run();

    expect(summary).toMatchObject({ sent: 6, errors: 0 });
    await expect.poll(() => broker.received.length).toBe(6);
    for (const r of broker.received) expect(r.payload.subarray(0, 2)).toEqual(SINGLE_OBJECT_MAGIC);
  });

  it('counts failed connections as errors instead of throwing when no broker listens', async () => {
    const port = await freePort();
    const fleet = createFleet(baseOptions(`mqtt://127.0.0.1:${port}`, { devices: 3, connectAttempts: 2 }));

    const summary = await fleet.run();

    expect(summary).toMatchObject({ devices: 3, connected: 0, sent: 0, errors: 6 });
    expect(summary.lastError).toMatch(/ECONNREFUSED|closed before CONNACK/);
  });
});
