import { afterEach, describe, expect, inject, it } from 'vitest';
import type { ReeferAlert } from '../../cloud-bridge/alerts.js';
import type { AnalyticsService } from '../../cloud-bridge/analytics-service.js';
import type { KafkaRecord } from '../../cloud-bridge/kafka-client.js';
import { encodeTelemetryVersionSingleObject } from '../../schemas/avro.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';
import { readRawTopic } from '../harness/topic-reader.js';
import { analyticsTopics, asTelemetry, produce, readAlerts, readingsDone, startAnalytics, telemetryRecord } from '../harness/analytics-harness.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const T0 = Date.UTC(2024, 4, 1);
const STEP_MS = 5 * 60_000;
let seq = 0;

/** A healthy reading of a container at step n, with what the test changes. */
function reading(containerId: string, n: number, overrides: Partial<ReeferTelemetry> = {}): ReeferTelemetry {
  seq += 1;
  return {
    ...asTelemetry({ ...REFERENCE_READING, container_id: containerId, measurement_time: T0 + n * STEP_MS, target_temperature: 5, temperature: 5.2, kilowatts: 2.7, oxygen_level: 21, carbon_dioxide_level: 4 }, 'gw-a', seq),
    ...overrides,
  };
}

function launch(topics: ReturnType<typeof analyticsTopics>) {
  const run = startAnalytics(bootstrap, topics);
  cleanups.push(() => run.service.close());
  return run;
}

async function processed(services: readonly AnalyticsService[], count: number): Promise<void> {
  await expect.poll(() => readingsDone(services), { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(count);
}

const summary = (alerts: readonly ReeferAlert[]) =>
  alerts.map((a) => (a.type === 'ContainerAnomaly' ? `${a.containerId} ${a.rule} #${a.anomalyCount}` : `${a.containerId} maintenance after ${a.anomalyCount}`)).sort();

describe('analytics state across restarts, rebalances and redelivery', () => {
  it('keeps counting across a restart: 2 anomalies before, 1 after → MaintenanceNeeded; a power-off pair split by the restart is caught', async () => {
    const topics = analyticsTopics();
    const first = launch(topics);
    await first.started;
    const before = [reading('C-O2', 0, { oxygen_level: 9 }), reading('C-O2', 1, { oxygen_level: 9.5 }), reading('C-PWR', 0), reading('C-PWR', 1, { kilowatts: 0 })];
    await produce(bootstrap, topics.telemetryTopic, before.map(telemetryRecord));
    await processed([first.service], 4);
    await first.service.close();
    expect(first.alerts.filter((a) => a.type === 'MaintenanceNeeded')).toEqual([]);

    const second = launch(topics);
    await second.started;
    const after = [reading('C-O2', 2, { oxygen_level: 8 }), reading('C-PWR', 2, { kilowatts: 0 })];
    await produce(bootstrap, topics.telemetryTopic, after.map(telemetryRecord));
    await processed([second.service], 2);
    expect(second.service.stats().statesRestored).toBe(2);
    expect(summary(second.alerts)).toEqual(['C-O2 maintenance after 3', 'C-O2 o2 #3', 'C-PWR power-off #1']);

    const reader = await readAlerts(bootstrap, topics.alertsTopic);
    cleanups.push(() => reader.close());
    await expect.poll(() => reader.alerts().length, { timeout: 10_000 }).toBe(5);
    expect(summary(reader.alerts())).toEqual(['C-O2 maintenance after 3', 'C-O2 o2 #1', 'C-O2 o2 #2', 'C-O2 o2 #3', 'C-PWR power-off #1']);
  });

  it('moves state with the partitions when one of two instances in the group leaves', async () => {
    const topics = analyticsTopics();
    const a = launch(topics);
    const b = launch(topics);
    await Promise.all([a.started, b.started]);
    await expect
      .poll(() => [a.service.stats().assigned.length, b.service.stats().assigned.length], { timeout: 20_000 })
      .toSatisfy(([na, nb]: number[]) => na! > 0 && nb! > 0 && na! + nb! === 3);

    const containers = Array.from({ length: 12 }, (_, i) => `C-R${i}`);
    const phase1 = containers.flatMap((c) => [reading(c, 0, { temperature: 30 }), reading(c, 1, { temperature: 31 })]);
    await produce(bootstrap, topics.telemetryTopic, phase1.map(telemetryRecord));
    await processed([a.service, b.service], phase1.length);
    // Each instance held some of the containers.
    expect(a.service.stats().readings.evaluated).toBeGreaterThan(0);
    expect(b.service.stats().readings.evaluated).toBeGreaterThan(0);
    expect([...a.alerts, ...b.alerts].filter((x) => x.type === 'MaintenanceNeeded')).toEqual([]);

    await a.service.close();
    await expect.poll(() => b.service.stats().assigned, { timeout: 20_000 }).toEqual([0, 1, 2]);
    const phase2 = containers.map((c) => reading(c, 2, { temperature: 29 }));
    const bBefore = readingsDone([b.service]);
    await produce(bootstrap, topics.telemetryTopic, phase2.map(telemetryRecord));
    await processed([b.service], bBefore + phase2.length);

    expect(summary(b.alerts.filter((x) => x.type === 'MaintenanceNeeded'))).toEqual(containers.map((c) => `${c} maintenance after 3`).sort());
    const reader = await readAlerts(bootstrap, topics.alertsTopic);
    cleanups.push(() => reader.close());
    await expect.poll(() => reader.alerts().length, { timeout: 10_000 }).toBe(12 * 4);
    const ids = reader.alerts().map((x) => x.alertId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(summary(reader.alerts())).toEqual(
      containers.flatMap((c) => [`${c} maintenance after 3`, `${c} temperature #1`, `${c} temperature #2`, `${c} temperature #3`]).sort(),
    );
  });

  it('counts each reading once when the same readings reach the topic twice, or again through another gateway; bad records are skipped; v1 and v2 records alike', async () => {
    const topics = analyticsTopics();
    const run = launch(topics);
    await run.started;
    const containers = ['C-D1', 'C-D2', 'C-D3', 'C-D4'];
    const originals = containers.flatMap((c, i) =>
      Array.from({ length: 30 }, (_, n) => reading(c, n, n % (i + 2) === 0 ? { carbon_dioxide_level: 13 } : {})),
    );
    const viaOtherGateway = originals.slice(0, 40).map((r) => ({ ...r, gateway_id: 'gw-b', seq: r.seq + 1_000_000 }));
    const garbage: KafkaRecord[] = [
      { key: 'C-D1', value: Buffer.from('not avro') },
      { key: 'C-D2', value: Buffer.from([0xc3, 0x01, 1, 2, 3]) },
      { key: 'C-D3', value: Buffer.from([0, 0, 0, 0, 7, 2, 4]) },
    ];
    // Gateways on either schema version feed the topic: container C-D4's readings are written as v2.
    const asRecord = (r: ReeferTelemetry): KafkaRecord =>
      r.container_id === 'C-D4'
        ? { ...telemetryRecord(r), value: encodeTelemetryVersionSingleObject({ ...r, lane: 'alarm', replayed: false, failure_label: null }, 2) }
        : telemetryRecord(r);
    await produce(bootstrap, topics.telemetryTopic, originals.map(asRecord));
    await produce(bootstrap, topics.telemetryTopic, [...garbage, ...originals.map(asRecord), ...viaOtherGateway.map(telemetryRecord)]);
    const total = originals.length * 2 + viaOtherGateway.length + garbage.length;
    await processed([run.service], total);

    const stats = run.service.stats();
    expect(stats.readings).toEqual({ evaluated: originals.length, late: 0, duplicate: originals.length + viaOtherGateway.length, 'too-late': 0 });
    expect(stats.undecodable).toEqual({ 'unknown-framing': 1, 'bad-avro': 1, 'no-registry': 1 });

    // What a single delivery raises: one anomaly per CO2 reading.
    const expectedAnomalies = containers.reduce((sum, _c, i) => sum + Math.ceil(30 / (i + 2)), 0);
    const reader = await readAlerts(bootstrap, topics.alertsTopic);
    cleanups.push(() => reader.close());
    await expect.poll(() => reader.alerts().filter((a) => a.type === 'ContainerAnomaly').length, { timeout: 10_000 }).toBe(expectedAnomalies);
    const alerts = reader.alerts();
    const ids = alerts.map((a) => a.alertId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(alerts.filter((a) => a.type === 'MaintenanceNeeded').map((a) => a.containerId).sort()).toEqual(containers);
    // Ids follow from the reading that raised them, so a reprocessing would give the same ones.
    for (const a of alerts) {
      if (a.type === 'ContainerAnomaly') expect(a.alertId).toBe(`gw-a/${a.seq}/${a.rule}`);
    }
    const deadLetters = await readRawTopic(bootstrap, topics.deadLetterTopic);
    cleanups.push(() => deadLetters.close());
    await expect.poll(() => deadLetters.records().map((r) => r.headers.reason).sort(), { timeout: 10_000 }).toEqual(['bad-avro', 'no-registry', 'unknown-framing']);
  });
});
