import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMqttTransport, type DeviceTransport } from '../../device-sim/device-transport.js';
import { createFleet, type FleetOptions } from '../../device-sim/fleet.js';
import { fleetContainerIds, type FailureMode, type ReadingLabel } from '../../device-sim/reefer-model.js';
import { parseScenario, resolveScenario } from '../../device-sim/scenario.js';
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
  it('labels each acknowledged reading via onSent with the failure the scenario scheduled for it', async () => {
    const intervalMs = 5 * 60_000;
    const startTimeMs = Math.floor(Date.now() / 1000) * 1000 - 2 * 86_400_000;
    const scenario = parseScenario(
      [
        'failures:',
        '  - { container: C0002, mode: poweroff, startReading: 3, readings: 4 }',
        '  - { fraction: 0.4, mode: co2sensor, startAfter: 30m, readings: 2 }',
        '  - { container: [C0004, C0005], mode: tempgrowth, startTime: "' + new Date(startTimeMs + 50 * 60_000).toISOString() + '" }',
      ].join('\n'),
    );
    const acked: { reading: ReeferReading; containerId: string; label: ReadingLabel }[] = [];
    const options = baseOptions(broker.url, { devices: 5, countPerDevice: 12, seed: 3, startTimeMs, intervalMs, scenario });
    const fleet = createFleet({ ...options, onSent: (reading, containerId, label) => acked.push({ reading, containerId, label }) });

    const summary = await fleet.run();

    expect(summary).toMatchObject({ sent: 60, errors: 0 });
    expect(acked).toHaveLength(60);
    const { failures } = resolveScenario(scenario, { containerIds: fleetContainerIds(5), seed: 3, startTimeMs, intervalMs });
    const expected = (containerId: string, index: number): FailureMode =>
      failures.get(containerId)?.find((w) => index >= w.startReading && index < w.startReading + w.readings)?.mode ?? 'none';
    const counts: Record<string, number> = {};
    for (const { reading, containerId, label } of acked) {
      const index = (reading.measurement_time - startTimeMs) / intervalMs;
      expect(label.failure, `${containerId} reading ${index}`).toBe(expected(containerId, index));
      expect(reading.maintenance_required).toBe(label.failure !== 'none');
      if (label.failure === 'poweroff') expect(reading.kilowatts).toBe(0);
      if (label.failure !== 'none') counts[label.failure] = (counts[label.failure] ?? 0) + 1;
    }
    // C0002 is off for readings 3–6; two containers misread CO2 at 6–7 (C0002 stays off at 6 if picked);
    // C0004 and C0005 warm from reading 10 to the end.
    expect(counts.tempgrowth).toBe(4);
    expect(counts.poweroff).toBe(4);
    expect(counts.co2sensor).toBeGreaterThanOrEqual(3);
    expect(summary.failureReadings).toEqual(counts);
    // What the broker got says the same: the label travels as maintenance_required.
    const flagged = broker.received.filter((r) => (JSON.parse(r.payload.toString('utf8')) as ReeferReading).maintenance_required);
    expect(flagged).toHaveLength(Object.values(counts).reduce((a, b) => a + b, 0));
  });

  it('runs a mixed fleet: some devices over MQTT, others on another transport, in one run', async () => {
    const elsewhere: ReeferReading[] = [];
    const inMemory: DeviceTransport = {
      kind: 'memory',
      open: async () => ({
        send: async (reading) => {
          elsewhere.push(reading);
        },
        close: async () => {},
        connected: true,
      }),
    };
    const options = baseOptions(broker.url, { devices: 5, countPerDevice: 4 });
    const fleet = createFleet(options, {
      transports: [
        { transport: createMqttTransport({ url: broker.url, qos: 1, form: 'canonical-json' }), devices: 3 },
        { transport: inMemory, devices: 2 },
      ],
    });

    const summary = await fleet.run();

    expect(summary).toMatchObject({ devices: 5, connected: 5, sent: 20, errors: 0 });
    expect(new Set(broker.received.map((r) => r.topicContainerId))).toEqual(new Set(['C0001', 'C0002', 'C0003']));
    expect(broker.received).toHaveLength(12);
    expect(new Set(elsewhere.map((r) => r.container_id))).toEqual(new Set(['C0004', 'C0005']));
    expect(elsewhere).toHaveLength(8);
    expect(() => createFleet(options, { transports: [{ transport: inMemory, devices: 4 }] })).toThrow(
      /transports: expected groups of positive device counts adding up to devices \(5\)/,
    );
  });
});
