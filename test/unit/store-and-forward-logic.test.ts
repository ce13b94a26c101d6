import { describe, expect, it } from 'vitest';
import { createGapTracker } from '../../gateway/pipeline/gap-tracker.js';
import { laneOf } from '../../gateway/pipeline/lanes.js';
import { decodeMarker, encodeMarker } from '../../gateway/uplink/kafka-uplink.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { sampleReading } from '../harness/reference-reading.js';

const base: ReeferReading = sampleReading({ measurement_time: 0, temperature: 4.2, latitude: null, longitude: null });

describe('lanes', () => {
  const rules = { temperatureExcursionC: 3 };
  it('puts a normal reading in the routine lane', () => expect(laneOf(base, rules)).toBe('routine'));
  it.each([
    ['an open door', { time_door_open: 2 }],
    ['power off', { kilowatts: 0 }],
    ['a stopped fan', { fan_2: false }],
    ['a maintenance flag', { maintenance_required: true }],
    ['a temperature excursion', { temperature: 7.5 }],
  ])('puts %s in the alarm lane', (_, change) => expect(laneOf({ ...base, ...change }, rules)).toBe('alarm'));
});

describe('gap tracker', () => {
  const min = 60_000;
  it('counts the readings missing between two far-apart readings once the usual interval is known', () => {
    const gaps = createGapTracker({ toleranceIntervals: 1.5, maxContainers: 10 });
    const missing = [0, 5, 10, 15, 35, 40].map((m) => gaps.observe('C1', m * min));
    expect(missing).toEqual([0, 0, 0, 0, 3, 0]);
  });
  it('ignores late and repeated readings and keeps containers apart', () => {
    const gaps = createGapTracker({ toleranceIntervals: 1.5, maxContainers: 10 });
    for (const m of [0, 5, 10]) gaps.observe('C1', m * min);
    expect(gaps.observe('C1', 5 * min)).toBe(0);
    expect(gaps.observe('C2', 100 * min)).toBe(0);
    expect(gaps.observe('C1', 15 * min)).toBe(0);
  });
});

describe('progress marker', () => {
  it('round-trips the outbox epoch and the committed ranges', () => {
    const text = encodeMarker('3f2c-epoch', [[1, 500], [9001, 9100]]);
    expect(text).toBe('3f2c-epoch:1-500,9001-9100');
    expect(decodeMarker(text)).toEqual({ epoch: '3f2c-epoch', ranges: [[1, 500], [9001, 9100]] });
  });
  it('round-trips a committed dead-letter range beside the reading ranges, or alone', () => {
    expect(decodeMarker(encodeMarker('e', [[1, 2]], [17, 20]))).toEqual({ epoch: 'e', ranges: [[1, 2]], deadLetters: [17, 20] });
    expect(decodeMarker(encodeMarker('e', [], [3, 3]))).toEqual({ epoch: 'e', ranges: [], deadLetters: [3, 3] });
  });
  it('rejects marker text it did not write', () => {
    expect(decodeMarker('')).toBeNull();
    expect(decodeMarker('epoch:1-x')).toBeNull();
  });
});
