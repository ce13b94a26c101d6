/**
 * A reconnect storm against a real gateway and Kafka: 2,000 devices connect within two seconds, as
 * a ship's reefers do when their gateway comes back, and 200 of them misbehave meanwhile (garbage
 * payloads, oversized frames, bytes that are not MQTT, floods, connections cut mid-publish). The
 * devices run in a child process (test/harness/storm-devices.ts), so their work does not run on the
 * gateway's event loop. docs/testing.md describes the storm's shape.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { encodePayload, telemetryTopic } from '../../device-sim/payload-forms.js';
import { readingKey } from '../harness/delivery-check.js';
import { awaitDelivery } from '../harness/fault-report.js';
import { startTestGateway } from '../harness/gateway-under-test.js';
import { stormReading, type StormOptions, type StormTally } from '../harness/storm-devices.js';
import { readTopic, type DeliveredRecord, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');

const WELL_BEHAVED = 1_800;
const READINGS_PER_DEVICE = 5;
/** Each of the five misbehaviours gets this many devices: 200 in all. */
const PER_MISBEHAVIOUR = 40;
const DEVICES = WELL_BEHAVED + 5 * PER_MISBEHAVIOUR;
/** Each process holds one end of every connection, beside its Kafka clients and files. */
const OPEN_FILES_NEEDED = DEVICES + 500;

/** The soft limit on open files of this process and the children it forks (Linux). */
function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

/** Runs the storm's devices in a child process and resolves with what they report. */
function runStormDevices(options: StormOptions, started: (child: ChildProcess) => void): Promise<StormTally & { failures: string[] }> {
  const child = fork(fileURLToPath(new URL('../harness/storm-devices-child.ts', import.meta.url)), [JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  started(child);
  return new Promise((resolve, reject) => {
    child.once('message', (tally) => resolve(tally as StormTally & { failures: string[] }));
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`the storm's devices exited (${signal ?? code}) before reporting`)));
  });
}

/** Only the records of the given containers, for a delivery check that ignores the rest. */
function onlyContainers(reader: TopicReader, keep: (containerId: string) => boolean): TopicReader {
  const pick = (records: DeliveredRecord[]): DeliveredRecord[] => records.filter((r) => keep(r.value.container_id));
  return {
    records: () => pick(reader.records()),
    waitFor: async (count, timeoutMs) => pick(await reader.waitFor(count, timeoutMs)),
    settle: async (quietMs) => pick(await reader.settle(quietMs)),
    close: () => reader.close(),
  };
}

describe('reconnect storm', () => {
  it(
    '2,000 devices start connecting within 2 s, 200 of them misbehaving: every acknowledged reading reaches Kafka once, garbage is counted by reason, the gateway stays up',
    { timeout: 150_000 },
    async () => {
      const limit = openFileLimit();
      if (limit < OPEN_FILES_NEEDED) {
        throw new Error(`the open-file limit is ${limit}; this test needs ${OPEN_FILES_NEEDED} (raise it with ulimit -n, as .ci/run does)`);
      }
      const gw = await startTestGateway(bootstrap);
      let reader: TopicReader | undefined;
      let devices: ChildProcess | undefined;
      try {
        await expect.poll(() => gw.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
        reader = await readTopic(bootstrap, gw.topic);

        let peakConnections = 0;
        const monitor = setInterval(() => {
          peakConnections = Math.max(peakConnections, gw.gateway.status().security.connections);
        }, 250);
        const startMs = Math.floor(Date.now() / 1000) * 1000 - 2 * 86_400_000;
        const t0 = performance.now();
        let tally: StormTally & { failures: string[] };
        try {
          tally = await runStormDevices(
            {
              mqttUrl: gw.mqttUrl,
              maxPayloadBytes: gw.config.mqtt.maxPayloadBytes,
              maxPacketBytes: gw.config.mqtt.limits.maxPacketBytes,
              wellBehaved: WELL_BEHAVED,
              readingsPerDevice: READINGS_PER_DEVICE,
              perMisbehaviour: PER_MISBEHAVIOUR,
              connectWindowMs: 2_000,
              // Past the rate limiter's burst (500 by default), so floods are also held back.
              floodReadings: 600,
              startMs,
            },
            (child) => (devices = child),
          );
        } finally {
          clearInterval(monitor);
        }
        const stormMs = performance.now() - t0;

        // The gateway is still up: a device arriving after the storm gets its reading through.
        const late = await connectDevice({ url: gw.mqttUrl, clientId: 'L1', qos: 1 });
        const lateReading = stormReading('L1', 0, startMs);
        await late.publish(telemetryTopic('L1'), encodePayload(lateReading, 'canonical-json'));
        await late.close();

        // Well-behaved devices: every acknowledged reading once, in order. Floods and abrupt devices:
        // every acknowledged reading once; a publish sent but not acknowledged when the connection
        // went may have been stored, at most once.
        const acknowledged = [...tally.ackedWellBehaved, ...tally.ackedFlood, ...tally.ackedAbrupt, lateReading];
        const sentUnacknowledged = new Set([...tally.unackedFlood, ...tally.unackedAbrupt].map((r) => readingKey(r.container_id, r.measurement_time)));
        const validSender = (id: string): boolean => /^(C\d{4}|F\d+|A\d+|L1)$/.test(id);
        const report = await awaitDelivery('reconnect storm', onlyContainers(reader, validSender), acknowledged, { timeoutMs: 60_000, quietMs: 2_000 });
        const all = reader.records();
        const status = gw.gateway.status();
        const connectMs = [...tally.connectMs].sort((x, y) => x - y);
        const percentile = (p: number): string => `${Math.round(connectMs[Math.min(connectMs.length - 1, Math.floor(p * connectMs.length))] ?? 0)} ms`;
        process.stdout.write(
          `[reconnect storm] ${tally.connectedAtMs.length} devices connected within ${(Math.max(...tally.connectedAtMs) / 1000).toFixed(1)} s ` +
            `(connect time median ${percentile(0.5)}, p99 ${percentile(0.99)}, max ${percentile(1)}; peak ${peakConnections} open connections); ` +
            `storm over in ${(stormMs / 1000).toFixed(1)} s; acknowledged ${tally.ackedWellBehaved.length} well-behaved + ${tally.ackedFlood.length} flood ` +
            `(${tally.unackedFlood.length} not) + ${tally.ackedAbrupt.length} abrupt; rejected ${JSON.stringify(status.stats.rejected.mqtt ?? {})}; ` +
            `refused ${JSON.stringify(status.security.refused)}; throttled ${status.security.throttled}; ` +
            `delivered unacknowledged ${report.unexpected}; floods out of order ${report.outOfOrder.length}\n`,
        );

        expect(tally.failures).toEqual([]);
        expect(tally.connectedAtMs).toHaveLength(DEVICES);
        expect(tally.ackedWellBehaved).toHaveLength(WELL_BEHAVED * READINGS_PER_DEVICE);
        expect(tally.ackedAbrupt).toHaveLength(PER_MISBEHAVIOUR);
        expect(report).toMatchObject({ acknowledged: acknowledged.length, lost: 0, duplicated: 0, altered: [], wrongKey: 0 });
        // Per-container order holds for every device, floods included: a throttled publish is never overtaken.
        expect(report.outOfOrder).toEqual([]);
        const ackedKeys = new Set(acknowledged.map((r) => readingKey(r.container_id, r.measurement_time)));
        const deliveredUnacknowledged = all
          .map((r) => readingKey(r.value.container_id, r.value.measurement_time))
          .filter((key) => !ackedKeys.has(key));
        expect(deliveredUnacknowledged.filter((key) => !sentUnacknowledged.has(key))).toEqual([]);
        // What an abrupt device cut off halfway never became a reading, nor did anything from the
        // garbage, oversized or broken-frame devices.
        const halfWritten = new Set(tally.halfWritten.map((r) => readingKey(r.container_id, r.measurement_time)));
        expect(all.filter((r) => halfWritten.has(readingKey(r.value.container_id, r.value.measurement_time)))).toEqual([]);
        expect(all.filter((r) => /^[GOB]\d/.test(r.value.container_id))).toEqual([]);

        // Every rejection counted under its reason, and nothing else rejected.
        expect(status.stats.rejected.mqtt ?? {}).toEqual(tally.expectedRejections);
        expect(status.security.refused['packet-too-large'] ?? 0).toBe(tally.tooLargeFrames);
        expect(status.uplink).toBe('up');
        await expect.poll(() => gw.gateway.status().security.connections, { timeout: 10_000 }).toBe(0);
      } finally {
        if (devices && devices.exitCode === null && devices.signalCode === null) devices.kill();
        await reader?.close();
        await gw.close();
      }
    },
  );
});
