/**
 * Scores the anomaly detector on simulated fleets. For each reference failure mode, a fleet of
 * reefers half of which run that failure, once for 5 hours and once for 1 hour; and a healthy
 * fleet over a day. Their readings go through a real gateway (MQTT QoS 1 → outbox → Kafka) into the
 * telemetry topic, the detector reads them from there, and what it wrote to the alerts topic is
 * compared with the simulator's labels, container by container: a container is flagged when it got
 * MaintenanceNeeded, or (second figure) at least one ContainerAnomaly.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import { FAILURE_MODES, fleetContainerIds, type ReferenceFailureMode } from '../../device-sim/reefer-model.js';
import { analyticsTopics, readAlerts, readingsDone, startAnalytics } from '../harness/analytics-harness.js';
import { startTestGateway } from '../harness/gateway-under-test.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface FleetSpec {
  name: string;
  prefix: string;
  mode: ReferenceFailureMode | null;
  devices: number;
  readings: number;
  /** Length of the failure, in 5-minute readings, from reading 20, in half of the fleet. */
  failureReadings: number;
}

const PREFIX: Readonly<Record<ReferenceFailureMode, string>> = { poweroff: 'PW', co2sensor: 'CO', o2sensor: 'OX', temperature: 'TE', tempgrowth: 'TG' };
const FLEETS: readonly FleetSpec[] = [
  ...FAILURE_MODES.map((mode) => ({ name: `${mode} 5 h`, prefix: `${PREFIX[mode]}L`, mode, devices: 20, readings: 100, failureReadings: 60 })),
  ...FAILURE_MODES.map((mode) => ({ name: `${mode} 1 h`, prefix: `${PREFIX[mode]}S`, mode, devices: 20, readings: 100, failureReadings: 12 })),
  { name: 'normal 1 day', prefix: 'NO', mode: null, devices: 50, readings: 288, failureReadings: 0 },
];

interface Score {
  flagged: number;
  precision: number | null;
  recall: number | null;
}

function score(flagged: ReadonlySet<string>, containers: readonly string[], failing: ReadonlySet<string>): Score {
  const inFleet = containers.filter((c) => flagged.has(c));
  const truePositives = inFleet.filter((c) => failing.has(c)).length;
  return {
    flagged: inFleet.length,
    precision: inFleet.length === 0 ? null : truePositives / inFleet.length,
    recall: failing.size === 0 ? null : truePositives / failing.size,
  };
}

const pct = (x: number | null) => (x === null ? '     –' : `${(x * 100).toFixed(1).padStart(5)}%`);

/** Runs every fleet through one gateway into the detector; returns the alerts topic's content and the labels. */
async function runFleets() {
  const gw = await startTestGateway(bootstrap);
  cleanups.push(() => gw.close());
  const topics = { ...analyticsTopics(), telemetryTopic: gw.topic };
  const analytics = startAnalytics(bootstrap, topics);
  cleanups.push(() => analytics.service.close());
  await analytics.started;

  const failing = new Map<string, Set<string>>();
  let sent = 0;
  await Promise.all(
    FLEETS.map(async (spec, i) => {
      const labelled = new Set<string>();
      failing.set(spec.name, labelled);
      const fleet = createFleet({
        mqttUrl: gw.mqttUrl,
        devices: spec.devices,
        countPerDevice: spec.readings,
        ratePerSecond: 0,
        seed: 100 + i,
        qos: 1,
        form: 'canonical-json',
        containerPrefix: spec.prefix,
        scenario: spec.mode
          ? { failures: [{ target: { fraction: 0.5 }, mode: spec.mode, start: { reading: 20 }, readings: spec.failureReadings, origin: spec.name }] }
          : undefined,
        onSent: (_reading, containerId, label) => {
          if (label.failure !== 'none') labelled.add(containerId);
        },
      });
      cleanups.push(() => fleet.stop());
      const summary = await fleet.run();
      expect(summary.errors).toBe(0);
      sent += summary.sent;
    }),
  );
  expect(sent).toBe(FLEETS.reduce((n, f) => n + f.devices * f.readings, 0));
  await expect.poll(() => readingsDone([analytics.service]), { timeout: 60_000, interval: 200 }).toBe(sent);

  const reader = await readAlerts(bootstrap, topics.alertsTopic);
  cleanups.push(() => reader.close());
  await expect.poll(() => reader.alerts().length, { timeout: 20_000 }).toBe(analytics.alerts.length);
  return { alerts: reader.alerts(), failing, stats: analytics.service.stats(), sent };
}

describe('anomaly detector scored on simulated fleets through a real gateway', () => {
  it('flags the reefers of every failure mode and spares the healthy fleet (table printed)', async () => {
    const { alerts, failing, stats, sent } = await runFleets();
    const maintained = new Set(alerts.filter((a) => a.type === 'MaintenanceNeeded').map((a) => a.containerId));
    const anomalous = new Set(alerts.filter((a) => a.type === 'ContainerAnomaly').map((a) => a.containerId));
    const scores = new Map<string, { maintenance: Score; anomaly: Score }>();
    const rows: string[] = [];
    for (const spec of FLEETS) {
      const containers = fleetContainerIds(spec.devices, spec.prefix);
      const labelled = failing.get(spec.name)!;
      const s = { maintenance: score(maintained, containers, labelled), anomaly: score(anomalous, containers, labelled) };
      scores.set(spec.name, s);
      rows.push(
        `${spec.name.padEnd(16)} ${String(spec.devices).padStart(7)} ${String(labelled.size).padStart(7)}   ` +
          `${String(s.maintenance.flagged).padStart(7)} ${pct(s.maintenance.precision)} ${pct(s.maintenance.recall)}   ` +
          `${String(s.anomaly.flagged).padStart(7)} ${pct(s.anomaly.precision)} ${pct(s.anomaly.recall)}`,
      );
    }
    console.log(
      [
        `[analytics scoring] ${sent} readings of ${FLEETS.length} simulated fleets through a gateway into the detector; failures from reading 20 in half of each fleet`,
        '                                          MaintenanceNeeded          any ContainerAnomaly',
        'fleet            reefers failing   flagged precision recall   flagged precision recall',
        ...rows,
        `readings ${JSON.stringify(stats.readings)}, ContainerAnomaly ${stats.anomalies}, MaintenanceNeeded ${stats.maintenanceNeeded}, transactions ${stats.transactions}`,
      ].join('\n'),
    );

    for (const spec of FLEETS) {
      const s = scores.get(spec.name)!;
      if (spec.mode === null) {
        expect(s.maintenance.flagged, `${spec.name}: MaintenanceNeeded`).toBe(0);
        expect(s.anomaly.flagged, `${spec.name}: reefers with an anomaly`).toBeLessThanOrEqual(spec.devices * 0.1);
        continue;
      }
      expect(failing.get(spec.name)!.size, spec.name).toBeGreaterThanOrEqual(spec.devices * 0.3);
      // Every failure, long or short, breaks its rule at least once.
      expect(s.anomaly.recall, `${spec.name}: anomaly recall`).toBeGreaterThanOrEqual(0.9);
      expect(s.anomaly.precision, `${spec.name}: anomaly precision`).toBeGreaterThanOrEqual(0.8);
      expect(s.maintenance.precision ?? 1, `${spec.name}: maintenance precision`).toBeGreaterThanOrEqual(0.9);
      // An hour of slow warming is one cold-chain violation, short of the three that call for maintenance.
      if (spec.mode !== 'tempgrowth' || spec.failureReadings >= 30) {
        expect(s.maintenance.recall, `${spec.name}: maintenance recall`).toBeGreaterThanOrEqual(0.9);
      }
    }
    expect(stats.readings.duplicate + stats.readings['too-late']).toBe(0);
  });
});
