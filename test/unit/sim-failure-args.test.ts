import { describe, expect, it } from 'vitest';
import { parseSimArgs, SIM_USAGE, summaryLine, type SimOptions } from '../../device-sim/cli.js';

function options(argv: string[]): SimOptions {
  const result = parseSimArgs(argv);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(argv)} to parse, got: ${result.message}`);
  return result.options;
}

function message(argv: string[]): string {
  const result = parseSimArgs(argv);
  if (result.ok) throw new Error(`expected ${JSON.stringify(argv)} to be rejected`);
  return result.message;
}

describe('reefer-sim failure, export and pacing flags', () => {
  it('adds nothing to the options when none of them is given', () => {
    const o = options([]);
    for (const key of ['scenarioFile', 'failures', 'failureRatePerReading', 'exportCsvPath', 'timeScale', 'connectSpreadMs'] as const) {
      expect(o[key], key).toBeUndefined();
    }
  });

  it('reads them all, --failure as often as given', () => {
    const o = options([
      '--scenario', 'ship.yaml',
      '--failure', 'co2sensor:C0003@10+20',
      '--failure=poweroff:10%@2h',
      '--failure-rate', '0.001',
      '--export-csv', 'out.csv',
      '--time-scale', '60',
      '--connect-spread', '2.5',
    ]);
    expect(o).toMatchObject({ scenarioFile: 'ship.yaml', failureRatePerReading: 0.001, exportCsvPath: 'out.csv', timeScale: 60, connectSpreadMs: 2500 });
    expect(o.failures).toEqual([
      { target: { containers: ['C0003'] }, mode: 'co2sensor', start: { reading: 10 }, readings: 20, origin: '--failure co2sensor:C0003@10+20' },
      { target: { fraction: 0.1 }, mode: 'poweroff', start: { afterMs: 7_200_000 }, readings: undefined, origin: '--failure poweroff:10%@2h' },
    ]);
  });

  it.each([
    [['--failure', 'co2sensor:C0003@ten'], '--failure: expected MODE:TARGET[@START][+READINGS] (START a reading index or a duration such as 90s, 30m, 2h), got "co2sensor:C0003@ten"'],
    [['--failure', 'meltdown:C1'], '--failure: expected MODE:TARGET[@START][+READINGS] (MODE one of poweroff, co2sensor, o2sensor, temperature, tempgrowth), got "meltdown:C1"'],
    [['--failure-rate', '2'], '--failure-rate: expected a chance from 0 to 1, got "2"'],
    [['--failure-rate', '-0.1'], '--failure-rate: expected a chance from 0 to 1, got "-0.1"'],
    [['--time-scale', '0'], '--time-scale: expected a number > 0, got "0"'],
    [['--connect-spread', 'soon'], '--connect-spread: expected a number of seconds ≥ 0, got "soon"'],
    [['--rate', '0', '--time-scale', '60'], '--time-scale: expected --rate > 0 too, got --rate 0 (an unpaced fleet already sends 5-minute readings)'],
    [['--serial', '/dev/ttyS0', '--failure', 'poweroff:C0001'], '--serial and --failure: --failure applies to MQTT fleets only, so far'],
  ])('rejects %j, naming the flag and what was expected', (argv, expected) => {
    expect(message(argv)).toBe(expected);
  });

  it('documents each flag and the failure syntax in the usage', () => {
    for (const flag of ['--scenario FILE', '--failure SPEC', '--failure-rate P', '--export-csv FILE', '--time-scale K', '--connect-spread S']) {
      expect(SIM_USAGE).toContain(flag);
    }
    expect(SIM_USAGE).toContain('MODE:TARGET[@START][+READINGS]');
    expect(SIM_USAGE).toContain('co2sensor:C0003@10+20');
    expect(SIM_USAGE).toContain('maintenance_required');
  });
});

describe('summaryLine', () => {
  const progress = { devices: 4, connected: 4, sent: 40, errors: 0, elapsedMs: 1234, ratePerSecond: 32.4, lastError: null };

  it('says what was sent and, when failures were injected, how many readings each labelled', () => {
    expect(summaryLine(progress)).toBe('reefer-sim: done in 1.2 s: 4/4 devices connected, 40 readings sent (32.4/s), 0 errors');
    expect(summaryLine({ ...progress, failureReadings: { poweroff: 4, co2sensor: 3 } }, { path: 'out.csv', rows: 40 })).toBe(
      'reefer-sim: done in 1.2 s: 4/4 devices connected, 40 readings sent (32.4/s), 0 errors; ' +
        'readings under failure: poweroff 4, co2sensor 3; 40 rows written to out.csv',
    );
  });
});
