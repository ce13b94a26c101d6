import { describe, expect, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { ownBroker } from '../harness/own-broker.js';
import { readTopic } from '../harness/topic-reader.js';

// This test stops Kafka, so it has a broker of its own.
const own = ownBroker();

describe('live-first replay', () => {
  it('after an outage sends fresh readings ahead of a rate-limited backlog, which keeps its order and event times and is marked replayed', async () => {
    const broker = own.broker();
    const gw = await own.startGateway({
      uplink: { minBackoffMs: 100, maxBackoffMs: 1000, replayRatePerSecond: 500, batchSize: 200, liveFirstAfterMs: 1000 },
    });
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
    await broker.stop();

    const fleet = createFleet({ mqttUrl: gw.mqttUrl, devices: 10, countPerDevice: 300, ratePerSecond: 0, seed: 5, qos: 1, form: 'canonical-json' });
    await fleet.run();
    await fleet.stop();
    expect(gw.gateway.status().outbox.count).toBe(3000);

    await broker.start();
    const reader = await readTopic(broker.bootstrap, gw.topic);
    try {
      await reader.waitFor(1, 60_000);
      // The link is back and the backlog is draining: a fresh reading now must not wait behind it.
      const fresh = await connectDevice({ url: gw.mqttUrl, clientId: 'fresh', qos: 1 });
      const freshTime = Date.now() - 1000;
      await fresh.publish('reefer/F1/telemetry', Buffer.from(JSON.stringify({ container_id: 'F1', measurement_time: freshTime, temperature: 5 })));
      await fresh.close();

      const all = await reader.waitFor(3001, 60_000);
      const freshIndex = all.findIndex((r) => r.value.container_id === 'F1');
      const replayedBeforeFresh = all.slice(0, freshIndex).length;
      expect(replayedBeforeFresh).toBeLessThan(3000);
      expect(all[freshIndex]!.headers.replayed).toBeUndefined();
      expect(all[freshIndex]!.value.measurement_time).toBe(freshTime);

      const backlog = all.filter((r) => r.value.container_id !== 'F1');
      expect(backlog.every((r) => r.headers.replayed === 'true')).toBe(true);
      // Per container, the backlog arrives in measurement order, with its original event times.
      const byContainer = new Map<string, number[]>();
      for (const r of backlog) byContainer.set(r.value.container_id, [...(byContainer.get(r.value.container_id) ?? []), r.value.measurement_time]);
      for (const times of byContainer.values()) expect(times).toEqual([...times].sort((a, b) => a - b));
      process.stdout.write(`[live-first] fresh reading arrived after ${replayedBeforeFresh} of 3000 backlog readings\n`);
    } finally {
      await reader.close();
    }
  });
});
