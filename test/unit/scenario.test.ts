import { describe, expect, it } from 'vitest';
import { fleetContainerIds } from '../../device-sim/reefer-model.js';
import {
  mergeScenario,
  parseDuration,
  parseFailureFlag,
  parseScenario,
  resolveScenario,
  ScenarioError,
  type FailureRule,
  type ScenarioRun,
} from '../../device-sim/scenario.js';

const START_MS = Date.UTC(2024, 4, 1, 12, 0, 0);
const RUN: ScenarioRun = { containerIds: fleetContainerIds(10), seed: 1, startTimeMs: START_MS, intervalMs: 5 * 60_000 };

function problems(text: string): readonly string[] {
  try {
    parseScenario(text, 'test.yaml');
  } catch (error) {
    if (error instanceof ScenarioError) return error.problems;
    throw error;
  }
  throw new Error('expected the scenario to be rejected');
}

function rule(raw: string): FailureRule {
  const parsed = parseFailureFlag(raw);
  if ('expected' in parsed) throw new Error(`expected ${raw} to parse: ${parsed.expected}`);
  return parsed;
}

describe('parseScenario', () => {
  it('reads every kind of rule from YAML, with defaults for what it leaves out', () => {
    const scenario = parseScenario(
      [
        'failures:',
        '  - { container: C0003, mode: co2sensor, startReading: 10, readings: 20 }',
        '  - { container: [C0001, C0002], mode: poweroff, startTime: "2024-05-01 13:00:00" }',
        '  - { fraction: 0.25, mode: tempgrowth, startAfter: 2h, readings: 6 }',
        '  - { fraction: 1, mode: temperature, startTime: "2024-05-01T14:00:00+02:00" }',
        'random:',
        '  rate: 0.001',
      ].join('\n'),
      'ship.yaml',
    );
    expect(scenario.failures).toEqual([
      { target: { containers: ['C0003'] }, mode: 'co2sensor', start: { reading: 10 }, readings: 20, origin: 'ship.yaml failures[0]' },
      { target: { containers: ['C0001', 'C0002'] }, mode: 'poweroff', start: { timeMs: Date.UTC(2024, 4, 1, 13) }, readings: undefined, origin: 'ship.yaml failures[1]' },
      { target: { fraction: 0.25 }, mode: 'tempgrowth', start: { afterMs: 2 * 3_600_000 }, readings: 6, origin: 'ship.yaml failures[2]' },
      { target: { fraction: 1 }, mode: 'temperature', start: { timeMs: Date.UTC(2024, 4, 1, 12) }, readings: undefined, origin: 'ship.yaml failures[3]' },
    ]);
    expect(scenario.random).toEqual({
      ratePerReading: 0.001,
      modes: ['poweroff', 'co2sensor', 'o2sensor', 'temperature', 'tempgrowth'],
      minReadings: 6,
      maxReadings: 36,
    });
  });

  it('reads JSON too, and a rule without a start starts at the first reading', () => {
    const scenario = parseScenario(
      JSON.stringify({ failures: [{ container: 'C0001', mode: 'o2sensor' }], random: { rate: 0.5, modes: ['poweroff'], readings: [2, 3] } }),
    );
    expect(scenario.failures[0]).toMatchObject({ start: { reading: 0 }, readings: undefined });
    expect(scenario.random).toEqual({ ratePerReading: 0.5, modes: ['poweroff'], minReadings: 2, maxReadings: 3 });
    expect(parseScenario('{}')).toEqual({ failures: [], random: undefined });
  });

  it.each([
    ['failures:\n  - { container: C1, mode: powerof }', 'test.yaml: failures[0].mode: expected one of poweroff, co2sensor, o2sensor, temperature, tempgrowth, got "powerof"'],
    ['failures:\n  - { container: C1, mode: poweroff, readings: 0 }', 'test.yaml: failures[0].readings: expected a positive number of readings, got 0'],
    ['failures:\n  - { container: C1, mode: poweroff, startReading: 1.5 }', 'test.yaml: failures[0].startReading: expected a reading index ≥ 0 (0 is the first reading), got 1.5'],
    ['failures:\n  - { container: C1, mode: poweroff, startAfter: 5 minutes }', 'test.yaml: failures[0].startAfter: expected a duration such as 90s, 30m, 2h or 1d, got "5 minutes"'],
    ['failures:\n  - { container: C1, mode: poweroff, startTime: yesterday }', 'test.yaml: failures[0].startTime: expected a time such as 2024-05-01T12:00:00Z, got "yesterday"'],
    ['failures:\n  - { container: "a/b", mode: poweroff }', `test.yaml: failures[0].container: expected a container id (letters, digits, '-' or '_'), got "a/b"`],
    ['failures:\n  - { fraction: 0, mode: poweroff }', 'test.yaml: failures[0].fraction: expected a number > 0 and ≤ 1, got 0'],
    ['failures:\n  - { mode: poweroff }', 'test.yaml: failures[0]: expected exactly one of container or fraction, got neither'],
    ['failures:\n  - { container: C1, fraction: 0.5, mode: poweroff }', 'test.yaml: failures[0]: expected exactly one of container or fraction, got both'],
    ['failures:\n  - { container: C1, mode: poweroff, startReading: 1, startAfter: 1h }', 'test.yaml: failures[0]: expected at most one of startReading, startTime or startAfter, got startReading and startAfter'],
    ['failures:\n  - { container: C1, mode: poweroff, duration: 3 }', 'test.yaml: failures[0].duration: unknown key; expected one of container, fraction, mode, startReading, startTime, startAfter, readings'],
    ['failure: []', 'test.yaml: failure: unknown key; expected one of failures, random'],
    ['failures: C1', 'test.yaml: failures: expected a list of failure rules, got "C1"'],
    ['random: { rate: 1.5 }', 'test.yaml: random.rate: expected a chance per reading from 0 to 1, got 1.5'],
    ['random: { rate: 0.1, modes: [] }', 'test.yaml: random.modes: expected at least one mode, got []'],
    ['random: { rate: 0.1, readings: [9, 3] }', 'test.yaml: random.readings: expected [min, max] readings with min ≤ max, got [9,3]'],
    ['- 1\n- 2', 'test.yaml: expected a mapping with "failures" and/or "random", got [1,2]'],
    ['', 'test.yaml: expected a mapping with "failures" and/or "random", got null'],
  ])('rejects %j naming the key, the value and what was expected', (text, expected) => {
    expect(problems(text)).toEqual([expected]);
  });

  it('reports every problem at once', () => {
    expect(problems('failures:\n  - { container: C1, mode: x }\n  - { fraction: 2, mode: poweroff }')).toHaveLength(2);
  });

  it('reports a YAML syntax error with its line', () => {
    const [problem] = problems('failures:\n  - container: C1\n   mode: poweroff\n');
    expect(problem).toMatch(/^test\.yaml: .*line 3, column \d+$/);
  });
});

describe('parseFailureFlag', () => {
  it('reads a container, a start reading and a length', () => {
    expect(parseFailureFlag('co2sensor:C0003@10+20')).toEqual({
      target: { containers: ['C0003'] },
      mode: 'co2sensor',
      start: { reading: 10 },
      readings: 20,
      origin: '--failure co2sensor:C0003@10+20',
    });
  });

  it('reads a share of the fleet, a start in simulated time, and leaves out what is optional', () => {
    expect(rule('poweroff:5%@2h+12')).toMatchObject({ target: { fraction: 0.05 }, start: { afterMs: 7_200_000 }, readings: 12 });
    expect(rule('tempgrowth:C1,C2')).toMatchObject({ target: { containers: ['C1', 'C2'] }, start: { reading: 0 }, readings: undefined });
    expect(rule('o2sensor:100%+3')).toMatchObject({ target: { fraction: 1 }, start: { reading: 0 }, readings: 3 });
    expect(rule('temperature:C1@90s')).toMatchObject({ start: { afterMs: 90_000 } });
  });

  it.each([
    ['co2sensor', 'e.g. co2sensor:C0003@10+20'],
    ['fire:C1@1+1', 'MODE one of poweroff, co2sensor, o2sensor, temperature, tempgrowth'],
    ['poweroff:0%@1', 'TARGET a percentage > 0 and ≤ 100'],
    ['poweroff:150%', 'TARGET a percentage > 0 and ≤ 100'],
    ['poweroff:C/1', 'TARGET a container id, ids joined by commas, or a percentage such as 10%'],
    ['poweroff:C1@soon', 'START a reading index or a duration such as 90s, 30m, 2h'],
    ['poweroff:C1@1+0', 'READINGS a positive integer'],
    ['poweroff:C1@1+x', 'READINGS a positive integer'],
  ])('rejects %s, saying what was expected', (raw, detail) => {
    expect(parseFailureFlag(raw)).toEqual({ expected: `MODE:TARGET[@START][+READINGS] (${detail})` });
  });
});

describe('resolveScenario', () => {
  it('turns starts in readings, simulated time or time since the first reading into reading indices', () => {
    const { failures } = resolveScenario(
      {
        failures: [
          rule('co2sensor:C0001@10+20'),
          { ...rule('poweroff:C0002+4'), start: { timeMs: START_MS + 12 * 60_000 } },
          rule('tempgrowth:C0003@1h+2'),
          { ...rule('o2sensor:C0004+10'), start: { timeMs: START_MS - 30 * 60_000 } },
        ],
      },
      RUN,
    );
    expect(Object.fromEntries(failures)).toEqual({
      C0001: [{ mode: 'co2sensor', startReading: 10, readings: 20 }],
      // 12 minutes falls on the first reading at or after it: the third, at 15 minutes.
      C0002: [{ mode: 'poweroff', startReading: 3, readings: 4 }],
      C0003: [{ mode: 'tempgrowth', startReading: 12, readings: 2 }],
      // Started 30 minutes (6 readings) before the run: 4 of its 10 readings are left.
      C0004: [{ mode: 'o2sensor', startReading: -6, readings: 10 }],
    });
  });

  it('picks ⌈fraction × fleet⌉ containers (at least one), the same for the same seed, others for another', () => {
    const pick = (seed: number, raw: string) => [...resolveScenario({ failures: [rule(raw)] }, { ...RUN, seed }).failures.keys()].sort();
    expect(pick(1, 'poweroff:30%')).toHaveLength(3);
    expect(pick(1, 'poweroff:25%')).toHaveLength(3);
    expect(pick(1, 'poweroff:1%')).toHaveLength(1);
    expect(pick(1, 'poweroff:100%')).toEqual(RUN.containerIds);
    expect(pick(1, 'poweroff:30%')).toEqual(pick(1, 'poweroff:30%'));
    const picks = new Set(Array.from({ length: 10 }, (_, seed) => pick(seed, 'poweroff:30%').join()));
    expect(picks.size).toBeGreaterThan(3);
  });

  it('keeps scenario order per container, so the first listed wins an overlap', () => {
    const { failures } = resolveScenario({ failures: [rule('co2sensor:C0001@5+5'), rule('poweroff:100%')] }, RUN);
    expect(failures.get('C0001')).toEqual([
      { mode: 'co2sensor', startReading: 5, readings: 5 },
      { mode: 'poweroff', startReading: 0, readings: Infinity },
    ]);
  });

  it('rejects a container the fleet does not have, naming the rule and the fleet', () => {
    expect(() => resolveScenario({ failures: [rule('poweroff:C0011,C0001')] }, RUN)).toThrow(
      '--failure poweroff:C0011,C0001: container "C0011" is not in the fleet; expected one of C0001 … C0010',
    );
  });
});

describe('mergeScenario', () => {
  it("puts the flags' rules after the file's and lets --failure-rate override the file's rate only", () => {
    const file = parseScenario('failures: [{ container: C1, mode: poweroff }]\nrandom: { rate: 0.1, modes: [o2sensor], readings: [2, 4] }');
    const merged = mergeScenario(file, { failures: [rule('co2sensor:C2')], failureRatePerReading: 0.02 });
    expect(merged.failures.map((f) => f.mode)).toEqual(['poweroff', 'co2sensor']);
    expect(merged.random).toEqual({ ratePerReading: 0.02, modes: ['o2sensor'], minReadings: 2, maxReadings: 4 });
    expect(mergeScenario(undefined, { failureRatePerReading: 0.5 }).random).toMatchObject({ ratePerReading: 0.5, minReadings: 6, maxReadings: 36 });
    expect(mergeScenario(undefined, {})).toEqual({ failures: [], random: undefined });
  });
});

describe('parseDuration', () => {
  it('reads milliseconds, seconds, minutes, hours and days', () => {
    expect(['250ms', '90s', '30m', '1.5h', '2d'].map(parseDuration)).toEqual([250, 90_000, 1_800_000, 5_400_000, 172_800_000]);
    expect(parseDuration('5')).toBeUndefined();
    expect(parseDuration('-1h')).toBeUndefined();
  });
});
