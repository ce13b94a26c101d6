import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { connectDevice } from '../../device-sim/mqtt-transport.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A real aedes broker that drops a device's connection instead of acknowledging its publish. */
async function brokerThatDropsPublishers(): Promise<string> {
  const broker = await Aedes.createBroker({
    authorizePublish: (client, _packet, _callback) => client?.conn.destroy(),
  });
  const server = createServer(broker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(
    () => new Promise<void>((resolve) => broker.close(() => resolve())),
    () => new Promise<void>((resolve) => server.close(() => resolve())),
  );
  return `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('connectDevice', () => {
  // Found by the reconnect storm: a flooding device the gateway disconnected waited for ever.
  it('rejects the publishes still waiting for their acknowledgement when the broker drops a device that does not reconnect', async () => {
    const url = await brokerThatDropsPublishers();
    const device = await connectDevice({ url, clientId: 'C01', qos: 1, reconnectPeriodMs: 0 });
    cleanups.push(() => device.close());

    const publishes = [1, 2, 3].map((n) => device.publish('reefer/C01/telemetry', Buffer.from(`{"n": ${n}}`)));

    const outcomes = await Promise.allSettled(publishes);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(String((outcome as PromiseRejectedResult).reason)).toContain('C01: connection closed before the broker acknowledged');
    }
    expect(device.connected).toBe(false);
  });
});
