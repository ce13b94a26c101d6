import { describe, expect, it } from 'vitest';
import { decodeAlert, encodeAlert, type ReeferAlert } from '../../cloud-bridge/alerts.js';
import {
  DEFAULT_DETECTOR_OPTIONS,
  decodeContainerState,
  encodeContainerState,
  processReading,
  type ContainerState,
  type DetectorOptions,
  type ReadingOutcome,
} from '../../cloud-bridge/anomaly-detector.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';

const T0 = Date.UTC(2024, 4, 1);
const STEP_MS = 5 * 60_000;

function reading(n: number, overrides: Partial<ReeferTelemetry> = {}): ReeferTelemetry {
  return {
    ...REFERENCE_READING,
    measurement_time: T0 + n * STEP_MS,
    gateway_id: 'gw-1',
    seq: 100 + n,
    transport: 'mqtt',
    received_time: T0 + n * STEP_MS + 1000,
    ...overrides,
  };
}

function run(readings: readonly ReeferTelemetry[], options?: Partial<DetectorOptions>, start?: ContainerState) {
  let state = start;
  const alerts: ReeferAlert[] = [];
  const outcomes: ReadingOutcome[] = [];
  for (const r of readings) {
    const result = processReading(r, state, 42, { ...DEFAULT_DETECTOR_OPTIONS, ...options });
    state = result.state;
    alerts.push(...result.alerts);
    outcomes.push(result.outcome);
  }
  return { state: state!, alerts, outcomes };
}

const anomalies = (alerts: readonly ReeferAlert[]) => alerts.filter((a) => a.type === 'ContainerAnomaly');
const maintenance = (alerts: readonly ReeferAlert[]) => alerts.filter((a) => a.type === 'MaintenanceNeeded');

describe('anomaly detector', () => {
  it('emits one ContainerAnomaly per broken rule and MaintenanceNeeded once, at the third anomaly', () => {
    const readings = [0, 1, 2, 3, 4].map((n) => reading(n, { carbon_dioxide_level: 12.5 }));
    const { alerts, state } = run(readings);
    expect(anomalies(alerts).map((a) => a.type === 'ContainerAnomaly' && a.anomalyCount)).toEqual([1, 2, 3, 4, 5]);
    expect(maintenance(alerts)).toEqual([
      { type: 'MaintenanceNeeded', alertId: 'gw-1/102/maintenance', containerId: 'C01', gatewayId: 'gw-1', timeMs: 42, anomalyCount: 3, rules: ['co2', 'co2', 'co2'] },
    ]);
    expect(alerts[0]).toMatchObject({ alertId: 'gw-1/100/co2', rule: 'co2', seq: 100, measurementTimeMs: T0, detail: 'carbon_dioxide_level 12.5 % outside 0 to 10.8 %' });
    expect(state).toMatchObject({ anomalyCount: 5, maintenanceRaised: true });
    // What the actions consumer reads back.
    for (const a of alerts) expect(decodeAlert(encodeAlert(a))).toEqual(a);
  });

  it('flags power off only on the second consecutive reading at 0 kW', () => {
    const { alerts } = run([reading(0), reading(1, { kilowatts: 0 }), reading(2), reading(3, { kilowatts: 0 }), reading(4, { kilowatts: 0 })]);
    expect(anomalies(alerts).map((a) => a.type === 'ContainerAnomaly' && [a.rule, a.seq])).toEqual([['power-off', 104]]);
  });

  it('flags a cold-chain break at every tenth consecutive reading above the threshold', () => {
    const warm = Array.from({ length: 25 }, (_, n) => reading(n, { temperature: 9.5 }));
    expect(anomalies(run(warm).alerts).map((a) => a.type === 'ContainerAnomaly' && [a.rule, a.seq])).toEqual([
      ['cold-chain', 109],
      ['cold-chain', 119],
    ]);
  });

  it('counts a reading once: a repeat by (gateway_id, seq) or by measurement time is skipped', () => {
    const bad = reading(0, { oxygen_level: 9 });
    const sameSeq = { ...bad, measurement_time: bad.measurement_time + 1 };
    const sameTime = { ...bad, gateway_id: 'gw-2', seq: 7 };
    const { alerts, outcomes, state } = run([bad, sameSeq, sameTime, bad]);
    expect(outcomes).toEqual(['evaluated', 'duplicate', 'duplicate', 'duplicate']);
    expect(anomalies(alerts)).toHaveLength(1);
    expect(state.anomalyCount).toBe(1);
  });

  it('a whole run repeated raises nothing more, with the same alert ids the first time', () => {
    const readings = Array.from({ length: 40 }, (_, n) => reading(n, n % 3 === 0 ? { oxygen_level: 10 } : {}));
    const first = run(readings);
    const second = run(readings, {}, first.state);
    expect(second.alerts).toEqual([]);
    expect(second.outcomes.every((o) => o === 'duplicate')).toBe(true);
    expect(second.state).toBe(first.state);
    expect(run(readings).alerts.map((a) => a.alertId)).toEqual(first.alerts.map((a) => a.alertId));
  });

  it('skips what is older than the window remembers, so an old repeat cannot count twice', () => {
    const readings = Array.from({ length: 10 }, (_, n) => reading(n, { oxygen_level: 10 }));
    const { state, outcomes } = run(readings, { seenWindow: 4 });
    expect(outcomes.every((o) => o === 'evaluated')).toBe(true);
    expect(state.seenTimes).toHaveLength(4);
    const again = run([readings[2]!, readings[7]!], { seenWindow: 4 }, state);
    expect(again.outcomes).toEqual(['too-late', 'duplicate']);
    expect(again.alerts).toEqual([]);
  });

  it('checks a late reading against the per-reading rules only, leaving the sequence rules to the newest', () => {
    const fresh = [reading(10, { kilowatts: 0 })];
    const late = [reading(5, { kilowatts: 0, carbon_dioxide_level: 13 })];
    const { alerts, outcomes, state } = run([...fresh, ...late, reading(11, { kilowatts: 0 })]);
    expect(outcomes).toEqual(['evaluated', 'late', 'evaluated']);
    expect(anomalies(alerts).map((a) => a.type === 'ContainerAnomaly' && [a.rule, a.seq])).toEqual([
      ['co2', 105],
      ['power-off', 111],
    ]);
    expect(state.newestMs).toBe(T0 + 11 * STEP_MS);
  });

  it('ends an episode after enough quiet readings, so a later failure calls for maintenance again', () => {
    const failing = (from: number) => [0, 1, 2].map((n) => reading(from + n, { temperature: 30 }));
    const quiet = Array.from({ length: 5 }, (_, n) => reading(3 + n));
    const { alerts } = run([...failing(0), ...quiet, ...failing(8)], { quietReadingsToReset: 5 });
    expect(maintenance(alerts).map((a) => a.alertId)).toEqual(['gw-1/102/maintenance', 'gw-1/110/maintenance']);
    const short = run([...failing(0), ...quiet.slice(0, 4), ...failing(8)], { quietReadingsToReset: 5 });
    expect(maintenance(short.alerts)).toHaveLength(1);
  });

  it('does not mutate the state it is given', () => {
    const { state } = run([reading(0)]);
    const copy = structuredClone(state);
    processReading(reading(1, { oxygen_level: 3 }), state, 1);
    expect(state).toEqual(copy);
  });

  it('round-trips the state through the changelog encoding and refuses what is not a state', () => {
    const { state } = run([reading(0, { oxygen_level: 3 }), reading(1)]);
    expect(decodeContainerState(encodeContainerState(state))).toEqual(state);
    expect(decodeContainerState(Buffer.from('{"v":99}'))).toBeNull();
    expect(decodeContainerState(Buffer.from('not json'))).toBeNull();
    expect(decodeContainerState(null)).toBeNull();
  });
});
