import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createFleet, type Fleet, type FleetOptions } from '../../device-sim/fleet.js';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { startGateway } from '../../gateway/main.js';
import { createLogger } from '../../gateway/ops/logger.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { checkDelivery, type DeliveryReport } from '../harness/delivery-check.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.js';
import { readTopic, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function broker(): Promise<Mosquitto> {
  const mosquitto = await startMosquitto();
  cleanups.push(() => mosquitto.close());
  return mosquitto;
}

async function gatewayUpstreamOf(mosquitto: Mosquitto, protocolVersion: 4 | 5): Promise<{ gw: GatewayUnderTest; reader: TopicReader }> {
  const gw = await startTestGateway(bootstrap, {
    upstream: { brokers: [{ url: mosquitto.url, protocolVersion, reconnectMinMs: 50, reconnectMaxMs: 500 }] },
  });
  cleanups.push(() => gw.close());
  const reader = await readTopic(bootstrap, gw.topic);
  cleanups.push(() => reader.close());
  // Readings published before the gateway's first subscription have no session to wait in.
  await expect.poll(() => gw.gateway.status().upstream[0]?.state, { timeout: 30_000 }).toBe('up');
  return { gw, reader };
}

/** A fleet of MQTT 5 devices publishing at QoS 1; `acked` collects what the broker acknowledged. */
function mqtt5Fleet(url: string, options: Partial<FleetOptions>): { fleet: Fleet; acked: ReeferReading[] } {
  const acked: ReeferReading[] = [];
  const fleet = createFleet(
    { mqttUrl: url, devices: 10, ratePerSecond: 0, seed: 5, qos: 1, form: 'canonical-json', onSent: (r) => acked.push(r), ...options },
    { connectDevice: (o) => connectDevice({ ...o, protocolVersion: 5 }) },
  );
  cleanups.push(() => fleet.stop());
  return { fleet, acked };
}

/**
 * Holds a write transaction on an SQLite database from another process, as an operator's tool might:
 * the gateway's commits fail (SQLITE_BUSY after its busy timeout) until release().
 */
async function lockDatabase(path: string): Promise<{ release(): Promise<void> }> {
  const script = [
    'import sqlite3, sys',
    'db = sqlite3.connect(sys.argv[1], isolation_level=None)',
    "db.execute('BEGIN IMMEDIATE')",
    "print('locked', flush=True)",
    'sys.stdin.readline()',
    "db.execute('ROLLBACK')",
  ].join('\n');
  const holder = spawn('python3', ['-c', script, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(holder, 'exit');
  const release = async (): Promise<void> => {
    if (holder.exitCode === null) {
      holder.stdin.end('\n');
      await exited;
    }
  };
  cleanups.push(release);
  await once(holder.stdout, 'data');
  return { release };
}

function expectExactlyOnce(report: DeliveryReport, count: number): void {
  expect(report).toMatchObject({ acknowledged: count, delivered: count, duplicated: 0, lost: 0, unexpected: 0, wrongKey: 0 });
  expect(report.altered).toEqual([]);
  expect(report.outOfOrder).toEqual([]);
}

describe('gateway subscribed to an upstream mosquitto', () => {
  it.each([4, 5] as const)(
    'delivers every reading MQTT 5 devices got a QoS 1 acknowledgement for to Kafka exactly once, intact (upstream session MQTT %s)',
    async (protocolVersion) => {
      const mosquitto = await broker();
      const { gw, reader } = await gatewayUpstreamOf(mosquitto, protocolVersion);
      const { fleet, acked } = mqtt5Fleet(mosquitto.url, { devices: 20, countPerDevice: 25 });

      const summary = await fleet.run();
      expect(summary.errors).toBe(0);
      expect(acked).toHaveLength(500);

      await reader.waitFor(500, 60_000);
      const delivered = await reader.settle(1500);
      expectExactlyOnce(checkDelivery(acked, delivered), 500);
      for (const r of delivered) expect(r.value.transport).toBe('upstream');
      expect(gw.gateway.status().upstream).toEqual([
        { broker: mosquitto.url, clientId: 'gw-test-upstream', state: 'up', messagesIn: 500, storeFailures: 0, redelivered: 0, reconnects: 0, lastError: null },
      ]);
    },
  );

  it('loses no acknowledged reading and duplicates none when mosquitto restarts mid-stream', async () => {
    const mosquitto = await broker();
    const { gw, reader } = await gatewayUpstreamOf(mosquitto, 4);
    const { fleet, acked } = mqtt5Fleet(mosquitto.url, { devices: 10, countPerDevice: 80, ratePerSecond: 200 });

    const running = fleet.run();
    await expect.poll(() => gw.gateway.status().upstream[0]!.messagesIn, { timeout: 30_000 }).toBeGreaterThan(100);
    await mosquitto.stop();
    // Publishers keep reading and retrying; their connections are down until the broker is back.
    await expect.poll(() => gw.gateway.status().upstream[0]!.state).toBe('down');
    await expect.poll(() => fleet.progress().connected).toBe(0);
    const sentBeforeRestart = fleet.progress().sent;
    await mosquitto.start();

    const summary = await running;
    expect(summary.errors).toBe(0);
    expect(acked).toHaveLength(800);
    expect(sentBeforeRestart).toBeLessThan(800);

    await reader.waitFor(800, 60_000);
    expectExactlyOnce(checkDelivery(acked, await reader.settle(2000)), 800);
    const { upstream, stats } = gw.gateway.status();
    expect(upstream[0]).toMatchObject({ state: 'up', storeFailures: 0 });
    expect(upstream[0]!.reconnects).toBeGreaterThanOrEqual(1);
    // Messages stored but not yet acknowledged when the broker went down come again (marked DUP); the
    // outbox recognises each copy, which is what keeps Kafka free of duplicates here.
    const copies = upstream[0]!.messagesIn - 800;
    expect(stats.duplicates.upstream ?? 0).toBe(copies);
    expect(upstream[0]!.redelivered).toBeGreaterThanOrEqual(copies);
  });

  it.each([4, 5] as const)(
    'delivers readings published while the gateway was down once it is back, through its persistent session (MQTT %s)',
    async (protocolVersion) => {
      const mosquitto = await broker();
      const { gw, reader } = await gatewayUpstreamOf(mosquitto, protocolVersion);
      const before = mqtt5Fleet(mosquitto.url, { devices: 5, countPerDevice: 10, containerPrefix: 'A' });
      expect((await before.fleet.run()).errors).toBe(0);
      await reader.waitFor(50, 30_000);
      await gw.gateway.close();

      const whileDown = mqtt5Fleet(mosquitto.url, { devices: 5, countPerDevice: 20, containerPrefix: 'B' });
      expect((await whileDown.fleet.run()).errors).toBe(0);
      expect(whileDown.acked).toHaveLength(100);

      // The same configuration: same data folder, topic and client id, so the same session.
      const again = await startGateway(gw.config, { logger: createLogger(gw.config.log.level) });
      cleanups.push(() => again.close());
      await reader.waitFor(150, 60_000);
      expectExactlyOnce(checkDelivery([...before.acked, ...whileDown.acked], await reader.settle(1500)), 150);
      expect(again.status().upstream[0]).toMatchObject({ state: 'up', messagesIn: 100, storeFailures: 0 });
    },
  );

  it('leaves a reading it could not store unacknowledged, and stores it once when the broker delivers it again', async () => {
    const mosquitto = await broker();
    const { gw, reader } = await gatewayUpstreamOf(mosquitto, 4);
    const first = mqtt5Fleet(mosquitto.url, { devices: 1, countPerDevice: 1, containerPrefix: 'A' });
    await first.fleet.run();
    await reader.waitFor(1, 30_000);

    const lock = await lockDatabase(join(gw.dataDir, 'outbox.db'));
    const blocked = mqtt5Fleet(mosquitto.url, { devices: 1, countPerDevice: 1, containerPrefix: 'B' });
    expect((await blocked.fleet.run()).sent).toBe(1);
    await expect.poll(() => gw.gateway.status().upstream[0]!.storeFailures, { timeout: 30_000 }).toBeGreaterThanOrEqual(1);
    await lock.release();

    await reader.waitFor(2, 60_000);
    expectExactlyOnce(checkDelivery([...first.acked, ...blocked.acked], await reader.settle(1500)), 2);
    const status = gw.gateway.status().upstream[0]!;
    expect(status.state).toBe('up');
    expect(status.redelivered).toBeGreaterThanOrEqual(1);
    expect(status.reconnects).toBeGreaterThanOrEqual(1);
  });
});
