/**
 * The benchmark's lean QoS 1 publisher against the gateway's real MQTT listener (aedes on a socket):
 * its figures count only if it speaks MQTT as a device does and waits for the gateway's own PUBACKs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../gateway/config.js';
import { createMqttListener, type TelemetryPublish } from '../../gateway/ingest/mqtt-listener.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { connectLeanDevice } from '../bench/lean-mqtt-device.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A listener whose sink holds each reading until `release` is called. */
async function startListener(options: { anonymous: boolean }): Promise<{ url: string; taken: TelemetryPublish[]; release(): void }> {
  const taken: TelemetryPublish[] = [];
  let held: (() => void)[] = [];
  let releasing = false;
  const defaults = resolveConfig({ file: {} });
  const listener = createMqttListener(
    {
      host: '127.0.0.1',
      port: 0,
      auth: { allowAnonymous: options.anonymous, users: [] },
      limits: { ...defaults.mqtt.limits, readingsPerSecond: 0 },
    },
    {
      logger: createLogger('error'),
      onTelemetry: (publish) => {
        taken.push(publish);
        return releasing ? Promise.resolve() : new Promise<void>((resolve) => held.push(resolve));
      },
    },
  );
  await listener.start();
  cleanups.push(() => listener.close());
  return {
    url: `mqtt://127.0.0.1:${listener.port()}`,
    taken,
    release() {
      releasing = true;
      for (const resolve of held) resolve();
      held = [];
    },
  };
}

describe('the benchmark lean MQTT publisher', () => {
  it('publishes at QoS 1 and settles each publish only with the gateway PUBACK', async () => {
    const gateway = await startListener({ anonymous: true });
    const device = await connectLeanDevice(gateway.url, 'C0001', 5000);
    cleanups.push(() => device.close());
    const settled: number[] = [];
    const payloads = Array.from({ length: 300 }, (_, n) => `{"n":${n},"pad":"${'x'.repeat(n)}"}`);
    const publishes = payloads.map((p, n) => device.publish('reefer/C0001/telemetry', Buffer.from(p)).then(() => settled.push(n)));
    const deadline = Date.now() + 5000;
    while (gateway.taken.length < payloads.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(gateway.taken.map((t) => t.payload.toString())).toEqual(payloads);
    expect(gateway.taken.every((t) => t.topic === 'reefer/C0001/telemetry' && t.clientId === 'C0001')).toBe(true);
    // Taken but not acknowledged by the gateway yet: nothing may count as delivered.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(settled).toEqual([]);
    gateway.release();
    await Promise.all(publishes);
    expect(settled.sort((a, b) => a - b)).toEqual(payloads.map((_, n) => n));
  });

  it('fails to connect when the broker refuses it', async () => {
    const gateway = await startListener({ anonymous: false });
    await expect(connectLeanDevice(gateway.url, 'C0002', 5000)).rejects.toThrow(/CONNACK refused/);
  });

  it('rejects the publishes in flight when the connection ends', async () => {
    const gateway = await startListener({ anonymous: true });
    const device = await connectLeanDevice(gateway.url, 'C0003', 5000);
    const publish = device.publish('reefer/C0003/telemetry', Buffer.from('{"n":1}'));
    while (gateway.taken.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await cleanups.pop()!(); // the listener closes with the reading unacknowledged
    await expect(publish).rejects.toThrow(/closed/);
  });
});
