/**
 * The MQTT listener takes telemetry itself and routes it on to subscribers only once something other
 * than a device's commands is subscribed to: what a local monitor subscribing to the gateway's broker
 * must still receive, against a real aedes on a real socket.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { createMqttListener, type MqttListener, type TelemetryPublish } from '../../gateway/ingest/mqtt-listener.js';
import { resolveConfig } from '../../gateway/config.js';
import { createLogger } from '../../gateway/ops/logger.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function startListener(): Promise<{ url: string; taken: TelemetryPublish[] }> {
  const taken: TelemetryPublish[] = [];
  const defaults = resolveConfig({ file: {} });
  const listener: MqttListener = createMqttListener(
    { host: '127.0.0.1', port: 0, auth: { allowAnonymous: true, users: [] }, limits: { ...defaults.mqtt.limits, readingsPerSecond: 0 } },
    {
      logger: createLogger('error'),
      onTelemetry: async (publish) => {
        taken.push(publish);
      },
    },
  );
  await listener.start();
  cleanups.push(() => listener.close());
  return { url: `mqtt://127.0.0.1:${listener.port()}`, taken };
}

async function connect(url: string, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId, reconnectPeriod: 0, protocolVersion: 4 });
  cleanups.push(() => client.endAsync(true));
  return client;
}

function received(client: MqttClient): { topic: string; payload: string; retain: boolean }[] {
  const messages: { topic: string; payload: string; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return messages;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('telemetry routing on the gateway broker', () => {
  it('acknowledges every reading of a device with many in flight, each once taken', async () => {
    const { url, taken } = await startListener();
    const device = await connect(url, 'C01');
    const publishes = Array.from({ length: 200 }, (_, n) => device.publishAsync('reefer/C01/telemetry', `{"n":${n}}`, { qos: 1 }));
    const acks = await Promise.all(publishes);
    expect(acks.every((ack) => ack?.cmd === 'publish')).toBe(true);
    expect(taken.map((t) => JSON.parse(t.payload.toString()).n)).toEqual(Array.from({ length: 200 }, (_, n) => n));
  });

  it('still delivers telemetry to a monitor that subscribes to it, after readings went unrouted', async () => {
    const { url, taken } = await startListener();
    const device = await connect(url, 'C01');
    await device.subscribeAsync('reefer/C01/commands', { qos: 1 });
    await device.publishAsync('reefer/C01/telemetry', 'before', { qos: 1 });

    const monitor = await connect(url, 'monitor');
    const messages = received(monitor);
    await monitor.subscribeAsync('reefer/+/telemetry', { qos: 1 });
    await device.publishAsync('reefer/C01/telemetry', 'after', { qos: 1 });
    await device.publishAsync('reefer/C01/telemetry', 'at most once', { qos: 0 });

    await until(() => messages.length === 2, 'the monitor to receive two readings');
    expect(messages.map((m) => m.payload)).toEqual(['after', 'at most once']);
    await until(() => taken.length === 3, 'the listener to take three readings');
  });

  it('keeps a retained reading for a subscriber that comes later', async () => {
    const { url, taken } = await startListener();
    const device = await connect(url, 'C02');
    await device.publishAsync('reefer/C02/telemetry', 'last known', { qos: 1, retain: true });
    await device.publishAsync('reefer/C02/telemetry', 'not retained', { qos: 1 });

    const monitor = await connect(url, 'monitor');
    const messages = received(monitor);
    await monitor.subscribeAsync('#', { qos: 1 });
    await until(() => messages.length === 1, 'the retained reading');
    expect(messages).toEqual([{ topic: 'reefer/C02/telemetry', payload: 'last known', retain: true }]);
    expect(taken.map((t) => t.payload.toString())).toEqual(['last known', 'not retained']);
  });
});
