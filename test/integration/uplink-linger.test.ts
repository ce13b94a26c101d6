/**
 * uplink.lingerMs: while the uplink keeps up, readings gather into fewer transactions; a backlog is
 * sent without waiting, and a stop does not wait for the linger. Against the suite's Kafka, counting
 * the transactions with the gateway's own metric.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import { gatewayMetric, startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';

const bootstrap = inject('kafkaBootstrap');
const gateways: GatewayUnderTest[] = [];
afterEach(async () => {
  while (gateways.length > 0) await gateways.pop()!.close();
});

async function gateway(uplink: Record<string, unknown>): Promise<GatewayUnderTest> {
  const gw = await startTestGateway(bootstrap, { uplink: { minBackoffMs: 100, maxBackoffMs: 1000, ...uplink } });
  gateways.push(gw);
  await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
  return gw;
}

/** Transactions that carried readings, from the gateway's Prometheus metrics. */
async function transactions(gw: GatewayUnderTest): Promise<number> {
  const count = await gatewayMetric(gw, 'reefer_uplink_batch_readings_count');
  if (count === undefined) throw new Error('no reefer_uplink_batch_readings_count in the metrics');
  return count;
}

/** 4 devices, 240 readings at 120 a second: two seconds of a steady stream. Resolves with the ms until all were sent. */
async function steadyStream(gw: GatewayUnderTest, prefix: string): Promise<number> {
  const startedMs = Date.now();
  const fleet = createFleet({ mqttUrl: gw.mqttUrl, devices: 4, countPerDevice: 60, ratePerSecond: 120, seed: 3, qos: 1, form: 'canonical-json', containerPrefix: prefix });
  await fleet.run();
  await fleet.stop();
  await expect.poll(() => gw.gateway.status().stats.sent, { timeout: 30_000, interval: 20 }).toBe(240);
  return Date.now() - startedMs;
}

describe('uplink.lingerMs', () => {
  it('gathers a steady stream into a transaction per linger instead of one per commit', async () => {
    const eager = await gateway({ lingerMs: 0 });
    await steadyStream(eager, 'E');
    const eagerTransactions = await transactions(eager);

    const lingering = await gateway({ lingerMs: 500 });
    const streamMs = await steadyStream(lingering, 'L');
    const lingeringTransactions = await transactions(lingering);

    process.stdout.write(`[linger] 240 readings in ~2 s: ${eagerTransactions} transactions at lingerMs 0, ${lingeringTransactions} at 500 (${streamMs} ms)\n`);
    expect(eagerTransactions).toBeGreaterThan(15);
    // A transaction at most every 500 ms while the stream lasted, and the stream's first.
    expect(lingeringTransactions).toBeGreaterThanOrEqual(2);
    expect(lingeringTransactions).toBeLessThanOrEqual(Math.ceil(streamMs / 500) + 1);
  });

  it('sends the full batches of a backlog without waiting', async () => {
    const gw = await gateway({ lingerMs: 6000, batchSize: 50 });
    const fleet = createFleet({ mqttUrl: gw.mqttUrl, devices: 3, countPerDevice: 105, ratePerSecond: 0, seed: 4, qos: 1, form: 'canonical-json' });
    await fleet.run();
    await fleet.stop();
    // Five full batches at least go one after another: lingering before each would take 30 s. What
    // is left of the last (fewer than 50) may wait the 6 s, as a live stream's readings do.
    await expect.poll(() => gw.gateway.status().outbox.count, { timeout: 5000, interval: 50 }).toBeLessThan(50);
    await expect.poll(() => gw.gateway.status().stats.sent, { timeout: 30_000 }).toBe(315);
  });

  it('lets a stop end the linger', async () => {
    const gw = await gateway({ lingerMs: 60_000 });
    const fleet = createFleet({ mqttUrl: gw.mqttUrl, devices: 1, countPerDevice: 3, ratePerSecond: 10, seed: 5, qos: 1, form: 'canonical-json' });
    await fleet.run();
    await fleet.stop();
    // The gateway's status went to Kafka when it started: the readings wait a minute after that.
    expect(gw.gateway.status().outbox.count).toBeGreaterThan(0);
    const closed = await Promise.race([
      gateways.pop()!.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still lingering'), 5000)),
    ]);
    expect(closed).toBe('closed');
  });
});
