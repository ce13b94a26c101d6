import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createMqttTransport } from '../../device-sim/device-transport.js';
import { createFleet } from '../../device-sim/fleet.js';
import { createSerialTransport } from '../../device-sim/serial-transport.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { checkDelivery } from '../harness/delivery-check.js';
import { startTestGateway } from '../harness/gateway-under-test.js';
import { openPtyPair } from '../harness/pty-pair.js';
import { readTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('a mixed fleet', () => {
  it('sends MQTT and serial devices through one run, and Kafka holds exactly the readings the simulator sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reefer-mixed-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ptys = [await openPtyPair(mkdtempSync(join(dir, 'p1-'))), await openPtyPair(mkdtempSync(join(dir, 'p2-')))];
    for (const pty of ptys) cleanups.push(() => pty.close());

    const gw = await startTestGateway(bootstrap, {
      serial: { ports: ptys.map((p, i) => ({ path: p.a, framing: i === 0 ? 'csv' : 'nmea' })), reopenMinMs: 50, reopenMaxMs: 400 },
    });
    cleanups.push(() => gw.close());
    const reader = await readTopic(bootstrap, gw.topic);
    cleanups.push(() => reader.close());
    await expect.poll(() => gw.gateway.status().serial.map((s) => s.state), { timeout: 20_000 }).toEqual(['up', 'up']);

    const sent: { reading: ReeferReading; containerId: string }[] = [];
    const fleet = createFleet(
      { mqttUrl: gw.mqttUrl, devices: 10, countPerDevice: 20, ratePerSecond: 0, seed: 21, qos: 1, form: 'canonical-json', onSent: (reading, containerId) => sent.push({ reading, containerId }) },
      {
        transports: [
          { transport: createMqttTransport({ url: gw.mqttUrl, qos: 1, form: 'envelope-tuple' }), devices: 8 },
          // One line each: csv for the first, checksummed sentences for the second, as the gateway's ports are set up.
          { transport: createSerialTransport({ paths: [ptys[0]!.b], framing: 'csv' }), devices: 1 },
          { transport: createSerialTransport({ paths: [ptys[1]!.b], framing: 'nmea' }), devices: 1 },
        ],
      },
    );
    cleanups.push(() => fleet.stop());
    const summary = await fleet.run();
    expect(summary.lastError ?? "").toBe("");
    expect(summary.errors).toBe(0);
    expect(summary.sent).toBe(200);

    await reader.waitFor(200, 60_000);
    const delivered = await reader.settle(1500);
    const report = checkDelivery(sent.map((s) => s.reading), delivered);
    expect(report).toMatchObject({ acknowledged: 200, delivered: 200, duplicated: 0, lost: 0, unexpected: 0 });
    expect(report.altered).toEqual([]);
    const transports = new Map<string, number>();
    for (const r of delivered) transports.set(r.value.transport, (transports.get(r.value.transport) ?? 0) + 1);
    expect(Object.fromEntries(transports)).toEqual({ mqtt: 160, serial: 40 });
  });
});
