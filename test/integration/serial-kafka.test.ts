import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createFleetModel } from '../../device-sim/reefer-model.js';
import { createSerialFleet } from '../../device-sim/serial-fleet.js';
import { nmeaSentence, type SerialFraming } from '../../device-sim/serial-forms.js';
import { openSerialDevice, type SerialDevice } from '../../device-sim/serial-transport.js';
import type { SerialPortStatus } from '../../gateway/ingest/serial-port.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { checkDelivery, readingKey } from '../harness/delivery-check.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { openPtyPair, type PtyPair } from '../harness/pty-pair.js';
import { readTopic, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Setup {
  gw: GatewayUnderTest;
  reader: TopicReader;
  pty: PtyPair;
  logs: Record<string, unknown>[];
  port(): SerialPortStatus;
}

async function setup(framing: SerialFraming, portOptions: Record<string, unknown> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'reefer-serial-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const pty = await openPtyPair(dir);
  cleanups.push(() => pty.close());
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const gw = await startTestGateway(
    bootstrap,
    { serial: { ports: [{ path: pty.a, framing, ...portOptions }], reopenMinMs: 50, reopenMaxMs: 400, presenceCheckMs: 100 } },
    { logger },
  );
  cleanups.push(() => gw.close());
  const reader = await readTopic(bootstrap, gw.topic);
  cleanups.push(() => reader.close());
  return { gw, reader, pty, logs, port: () => gw.gateway.status().serial[0]! };
}

async function openDevice(path: string, framing: SerialFraming): Promise<SerialDevice> {
  const device = await openSerialDevice({ path, framing });
  cleanups.push(() => device.close());
  return device;
}

/** Readings of `devices` simulated reefers, in the order they take turns. */
function readings(devices: number, perDevice: number, seed: number): ReeferReading[] {
  const reefers = createFleetModel({ devices, seed, containerPrefix: `S${seed}-`, startTimeMs: Date.now() - perDevice * 300_000, intervalMs: 300_000 });
  const out: ReeferReading[] = [];
  for (let i = 0; i < perDevice; i++) for (const reefer of reefers) out.push(reefer.next());
  return out;
}

describe('serial lines to Kafka', () => {
  it.each(['json', 'csv', 'nmea'] as const)(
    '%s: every line the simulator writes reaches Kafka once, intact, as a serial reading of the port',
    async (framing) => {
      const { gw, reader, pty, port } = await setup(framing);
      expect(port().state).toBe('up');
      const written: ReeferReading[] = [];
      const fleet = createSerialFleet({
        paths: [pty.b],
        framing,
        devices: 3,
        countPerDevice: 40,
        ratePerSecond: 0,
        seed: 5,
        onSent: (reading) => written.push(reading),
      });
      cleanups.push(() => fleet.stop());
      const summary = await fleet.run();
      expect(summary).toMatchObject({ sent: 120, errors: 0, connected: 3 });

      await reader.waitFor(120, 60_000);
      const delivered = await reader.settle(1500);
      const report = checkDelivery(written, delivered);
      expect(report).toMatchObject({ acknowledged: 120, delivered: 120, duplicated: 0, lost: 0, unexpected: 0, wrongKey: 0 });
      expect(report.altered).toEqual([]);
      expect(report.outOfOrder).toEqual([]);
      for (const r of delivered) expect(r.value.transport).toBe('serial');

      // The simulator starts a CSV stream with the header row, which is skipped, not rejected.
      expect(port()).toMatchObject({ state: 'up', lines: framing === 'csv' ? 121 : 120, accepted: 120, rejected: {}, skipped: framing === 'csv' ? 1 : 0 });
      expect(gw.gateway.status().deadLetters).toBe(0);
    },
  );

  it('rejects noise, bad checksums, other talkers and overlong lines with their reasons, joins a line written in two parts, and keeps reading', async () => {
    const { gw, reader, pty, port } = await setup('nmea', { maxLineBytes: 512 });
    const device = await openDevice(pty.b, 'nmea');
    const [r1, r2, r3] = readings(1, 3, 9) as [ReeferReading, ReeferReading, ReeferReading];

    await device.send(r1);
    await device.write(Buffer.concat([Buffer.from([0x00, 0xff, 0x13, 0x8a, 0x41]), Buffer.from('\r\n')]));
    await device.write(`${nmeaSentence(r2).replace(/\*[0-9A-F]{2}$/, '*00')}\r\n`);
    await device.write('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n');
    // An overlong line and, in the same write, the good line after it.
    await device.write(`${'X'.repeat(2000)}\r\n${nmeaSentence(r2)}\r\n\r\n`);
    const third = `${nmeaSentence(r3)}\r\n`;
    const half = Math.floor(third.length / 2);
    await device.write(third.slice(0, half));
    await expect.poll(() => port().pendingBytes, { timeout: 10_000 }).toBe(half);
    await device.write(third.slice(half));

    await reader.waitFor(3, 30_000);
    const delivered = await reader.settle(1500);
    const report = checkDelivery([r1, r2, r3], delivered);
    expect(report).toMatchObject({ acknowledged: 3, delivered: 3, duplicated: 0, lost: 0, unexpected: 0 });
    expect(report.altered).toEqual([]);

    await expect.poll(() => port().rejected, { timeout: 10_000 }).toEqual({ 'line-noise': 1, 'bad-checksum': 1, 'unknown-form': 1, oversized: 1 });
    expect(port()).toMatchObject({ state: 'up', lines: 8, accepted: 3, skipped: 1, pendingBytes: 0 });
    const status = gw.gateway.status();
    expect(status.stats.rejected.serial).toEqual({ 'line-noise': 1, 'bad-checksum': 1, 'unknown-form': 1, oversized: 1 });
    // Each rejected line is dead-lettered with its reason, per the port it came from.
    const ledgered = status.ledger.filter((e) => e.containerId === pty.a).map((e) => [e.reason, e.count]);
    expect(Object.fromEntries(ledgered)).toEqual({ 'line-noise': 1, 'bad-checksum': 1, 'unknown-form': 1, oversized: 1 });
  });

  it('opens a port that appears after the gateway started, keeps retrying one that never does, and closes cleanly twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reefer-serial-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    const late = join(dir, 'dev-a');
    const never = join(dir, 'never');
    const gw = await startTestGateway(
      bootstrap,
      {
        serial: {
          ports: [
            { path: late, framing: 'json' },
            { path: never, framing: 'csv' },
          ],
          reopenMinMs: 50,
          reopenMaxMs: 200,
          presenceCheckMs: 100,
        },
      },
      { logger },
    );
    cleanups.push(() => gw.close());
    const reader = await readTopic(bootstrap, gw.topic);
    cleanups.push(() => reader.close());
    expect(gw.gateway.status().serial.map((p) => p.state)).toEqual(['down', 'down']);
    expect(gw.gateway.status().serial[0]!.lastError).toMatch(/No such file or directory/);

    const pty = await openPtyPair(dir);
    cleanups.push(() => pty.close());
    await expect.poll(() => gw.gateway.status().serial[0]!.state, { timeout: 20_000 }).toBe('up');
    const device = await openDevice(pty.b, 'json');
    const sent = readings(1, 5, 31);
    for (const r of sent) await device.send(r);
    await reader.waitFor(5, 30_000);
    expect(checkDelivery(sent, await reader.settle(1000))).toMatchObject({ acknowledged: 5, delivered: 5, duplicated: 0, lost: 0 });

    const [up, away] = gw.gateway.status().serial as [SerialPortStatus, SerialPortStatus];
    expect(up).toMatchObject({ state: 'up', reopens: 0, accepted: 5 });
    expect(away.state).toBe('down');
    expect(away.openErrors).toBeGreaterThanOrEqual(1);
    // The first failure of a port that stays away is a warning; the retries after it are not.
    expect(logs.filter((l) => l.path === never && l.level === 40)).toHaveLength(1);

    await Promise.all([gw.close(), gw.close()]);
    await gw.close();
    expect(logs.filter((l) => l.msg === 'serial port closed').map((l) => l.path)).toEqual(expect.arrayContaining([late, never]));
  });

  it('survives unplug and replug mid-stream: every line it read reaches Kafka once, the reconnect is logged and counted, and the port is up again', async () => {
    const { reader, pty, logs, port } = await setup('nmea');
    const [a, c, d] = [readings(2, 15, 21), readings(2, 10, 22), readings(2, 10, 23)];
    const fromWriter = readings(2, 5000, 24);
    const written: ReeferReading[] = [];
    const send = async (device: SerialDevice, batch: readonly ReeferReading[]): Promise<void> => {
      for (const r of batch) {
        await device.send(r);
        written.push(r);
      }
    };

    // A: lines the gateway has read before anything goes wrong.
    const first = await openDevice(pty.b, 'nmea');
    await send(first, a);
    await expect.poll(() => port().accepted, { timeout: 20_000 }).toBe(30);

    // B: the device keeps writing while the cable is pulled; the writes fail once its end is gone.
    let writerError: unknown;
    // The line being written when the cable went: its bytes may have crossed before the write failed,
    // so the gateway may have read it whole. It may arrive; it need not.
    let inDoubt: ReeferReading | undefined;
    const writer = (async () => {
      for (const r of fromWriter) {
        try {
          await first.send(r);
        } catch (error) {
          writerError = error;
          inDoubt = r;
          return;
        }
        written.push(r);
      }
    })();
    await expect.poll(() => port().accepted, { timeout: 20_000 }).toBeGreaterThanOrEqual(60);
    await pty.unplug();
    await writer;
    expect(writerError).toBeDefined();
    expect(existsSync(pty.a)).toBe(false);
    await expect.poll(() => port().state, { timeout: 20_000 }).toBe('down');

    await pty.replug();
    await expect.poll(() => port(), { timeout: 20_000 }).toMatchObject({ state: 'up', reopens: 1 });

    // C, then half a line when the cable is pulled again: that half is rejected as partial-line.
    const second = await openDevice(pty.b, 'nmea');
    await send(second, c);
    const half = nmeaSentence(readings(1, 1, 25)[0]!).slice(0, 40);
    await second.write(half);
    await expect.poll(() => port().pendingBytes, { timeout: 20_000 }).toBe(40);
    const partialBefore = port().rejected['partial-line'] ?? 0;
    await pty.unplug();
    await expect.poll(() => port().rejected['partial-line'], { timeout: 20_000 }).toBe(partialBefore + 1);
    expect(port().state).toBe('down');

    // D: after the second replug.
    await pty.replug();
    await expect.poll(() => port(), { timeout: 20_000 }).toMatchObject({ state: 'up', reopens: 2 });
    const third = await openDevice(pty.b, 'nmea');
    await send(third, d);

    const mustArrive = [...a, ...c, ...d];
    const missing = (): ReeferReading[] => {
      const arrived = new Set(reader.records().map((r) => readingKey(r.value.container_id, r.value.measurement_time)));
      return mustArrive.filter((r) => !arrived.has(readingKey(r.container_id, r.measurement_time)));
    };
    await expect.poll(missing, { timeout: 60_000, interval: 250 }).toEqual([]);
    const delivered = await reader.settle(1500);
    const final = port();

    // Every line the gateway read is in Kafka once; the only lines missing are ones the cable lost.
    const report = checkDelivery(inDoubt ? [...written, inDoubt] : written, delivered);
    expect(report).toMatchObject({ duplicated: 0, unexpected: 0, wrongKey: 0, delivered: final.accepted });
    expect(report.altered).toEqual([]);
    // A line cut at the first unplug is a partial-line too; nothing else is rejected.
    expect(Object.keys(final.rejected)).toEqual(['partial-line']);
    expect(final.lines).toBe(final.accepted);

    expect(logs.filter((l) => l.msg === 'serial port went away; reopening when it is back')).toHaveLength(2);
    expect(logs.filter((l) => l.msg === 'serial port back').map((l) => l.reopens)).toEqual([1, 2]);
    expect(logs.every((l) => l.component !== 'serial' || l.path === pty.a)).toBe(true);
  });
});
