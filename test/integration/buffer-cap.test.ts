import { afterEach, describe, expect, it } from 'vitest';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { freePort } from '../harness/free-port.js';
import { startTestGateway } from '../harness/gateway-under-test.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('bounded outbox', () => {
  it('past its cap keeps every alarm, thins routine readings before dropping any, and ledgers exactly what it shed', async () => {
    // Nothing listens on this port: Kafka stays unreachable and everything waits in the outbox.
    const deadKafka = `127.0.0.1:${await freePort()}`;
    const gw = await startTestGateway(deadKafka, {
      outbox: { maxBytes: 64 * 1024, thinKeepEvery: 2 },
      kafka: { brokers: [deadKafka], topic: 'unreachable', connectionTimeoutMs: 200, requestTimeoutMs: 500, createTopics: false },
      uplink: { minBackoffMs: 1000, maxBackoffMs: 5000 },
    });
    cleanups.push(() => gw.close());
    const devices = await Promise.all(['C1', 'C2', 'C3', 'C4'].map((id) => connectDevice({ url: gw.mqttUrl, clientId: id, qos: 1 })));
    cleanups.push(async () => {
      await Promise.all(devices.map((d) => d.close()));
    });

    const start = Date.UTC(2026, 5, 1);
    let alarmsSent = 0;
    for (let i = 0; i < 400; i++) {
      await Promise.all(
        devices.map((device, d) => {
          const alarm = i % 10 === 0;
          if (alarm) alarmsSent += 1;
          const reading = {
            container_id: `C${d + 1}`,
            measurement_time: new Date(start + i * 60_000).toISOString(),
            product_id: 'P02',
            temperature: 6.1,
            target_temperature: 6,
            time_door_open: alarm ? 4 : 0,
            kilowatts: 2.6,
          };
          return device.publish(`reefer/C${d + 1}/telemetry`, Buffer.from(JSON.stringify(reading)));
        }),
      );
    }

    const status = gw.gateway.status();
    expect(status.stats.acceptedTotal).toBe(1600);
    expect(status.outbox.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(status.outbox.alarms).toBe(alarmsSent);
    const { thinned, droppedRoutine, droppedAlarm, expired } = status.stats.shed;
    expect(thinned).toBeGreaterThan(0);
    expect(droppedAlarm).toBe(0);
    expect(expired).toBe(0);
    expect(status.outbox.count + thinned + droppedRoutine).toBe(1600);

    const ledgered = (reason: string) => status.ledger.filter((e) => e.reason === reason).reduce((n, e) => n + e.count, 0);
    expect(ledgered('thinned')).toBe(thinned);
    expect(ledgered('shed-routine')).toBe(droppedRoutine);
    expect(ledgered('shed-alarm')).toBe(0);
    // Each container lost its share: thinning works per container.
    expect(new Set(status.ledger.filter((e) => e.reason === 'thinned').map((e) => e.containerId))).toEqual(new Set(['C1', 'C2', 'C3', 'C4']));
    process.stdout.write(`[buffer cap] kept ${status.outbox.count} (${status.outbox.alarms} alarms), thinned ${thinned}, dropped routine ${droppedRoutine}, dropped alarms ${droppedAlarm}\n`);
  });
});
