import { describe, expect, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import { ownBroker } from '../harness/own-broker.js';
import { readTopic } from '../harness/topic-reader.js';

// This test stops Kafka, so it has a broker of its own.
const own = ownBroker();

describe('draining a backlog in full batches', () => {
  it('reads each next batch ahead, and with Kafka stopped mid-drain still delivers every reading once, in outbox order per partition', async () => {
    const batchSize = 250;
    const broker = own.broker();
    const gw = await own.startGateway({
      // In outbox order (no live-first replay), so the order in Kafka shows whether a batch read ahead was skipped or repeated.
      uplink: { minBackoffMs: 100, maxBackoffMs: 500, batchSize, liveFirst: false, operationTimeoutMs: 4000 },
    });
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
    await broker.stop();

    const fleet = createFleet({ mqttUrl: gw.mqttUrl, devices: 12, countPerDevice: 250, ratePerSecond: 0, seed: 9, qos: 1, form: 'canonical-json' });
    await fleet.run();
    await fleet.stop();
    const total = 12 * 250;
    expect(gw.gateway.status().outbox.count).toBe(total);

    await broker.start();
    // A few full batches in, Kafka goes away while the next ones are in flight and read ahead.
    await expect.poll(() => gw.gateway.status().outbox.count, { timeout: 60_000, interval: 20 }).toBeLessThanOrEqual(total - 2 * batchSize);
    await broker.stop();
    await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('down');
    const left = gw.gateway.status().outbox.count;
    expect(left).toBeGreaterThan(0);
    await broker.start();
    await expect.poll(() => gw.gateway.status().outbox.count, { timeout: 90_000 }).toBe(0);

    // Read once the drain is over, by a consumer that never saw the outage (a consumer that did may
    // read again what it had not committed).
    const reader = await readTopic(broker.bootstrap, gw.topic);
    try {
      await reader.waitFor(total, 60_000);
      const all = await reader.settle(1000);
      const keys = all.map((r) => `${r.value.container_id}@${r.value.measurement_time}`);
      expect(new Set(keys).size).toBe(total);
      expect(all.length).toBe(total);
      // Within a partition, records sit in the order the uplink sent them: the outbox's.
      for (const partition of [0, 1, 2]) {
        const seqs = all.filter((r) => r.partition === partition).sort((a, b) => a.offset - b.offset).map((r) => Number(r.headers.seq));
        expect(seqs.length).toBeGreaterThan(0);
        for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      }
      process.stdout.write(`[read-ahead] ${total} readings in batches of ${batchSize}, Kafka stopped with ${left} waiting: ${all.length} delivered, ${new Set(keys).size} distinct\n`);
    } finally {
      await reader.close();
    }
  });
});
