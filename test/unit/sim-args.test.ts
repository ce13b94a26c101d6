import { describe, expect, it } from 'vitest';
import { parseSimArgs, SIM_USAGE, type SimOptions } from '../../device-sim/cli.js';

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

describe('parseSimArgs', () => {
  it('applies the documented defaults when given no flags', () => {
    expect(options([])).toEqual({
      help: false,
      devices: 10,
      ratePerSecond: 10,
      mqttUrl: 'mqtt://127.0.0.1:1883',
      seed: 1,
      qos: 1,
      form: 'canonical-json',
      containerPrefix: 'C',
    });
  });

  it('runs until stopped when neither --count nor --duration is given', () => {
    const o = options([]);
    expect(o.countPerDevice).toBeUndefined();
    expect(o.durationMs).toBeUndefined();
  });

  it('reads every flag, in both --flag value and --flag=value spellings', () => {
    expect(
      options([
        '--devices', '200',
        '--rate=0',
        '--count', '50',
        '--mqtt-url', 'mqtts://broker.example:8883',
        '--seed=-7',
        '--qos', '2',
        '--form', 'envelope-tuple',
        '--prefix', 'SHIP_A-',
      ]),
    ).toEqual({
      help: false,
      devices: 200,
      ratePerSecond: 0,
      countPerDevice: 50,
      mqttUrl: 'mqtts://broker.example:8883',
      seed: -7,
      qos: 2,
      form: 'envelope-tuple',
      containerPrefix: 'SHIP_A-',
    });
  });

  it('takes --duration in seconds, fractions allowed', () => {
    expect(options(['--duration', '2.5']).durationMs).toBe(2500);
    expect(options(['--rate', '0.5']).ratePerSecond).toBe(0.5);
  });

  it.each([['--help'], ['-h'], ['--devices', 'abc', '--help']])('asks for help with %s, whatever else is given', (...argv) => {
    expect(options(argv).help).toBe(true);
  });

  it('documents every flag with its default in the usage', () => {
    for (const flag of ['--devices', '--rate', '--count', '--duration', '--mqtt-url', '--seed', '--qos', '--form', '--prefix', '--help']) {
      expect(SIM_USAGE).toContain(flag);
    }
    expect(SIM_USAGE).toContain('(default: mqtt://127.0.0.1:1883)');
    expect(SIM_USAGE).toContain('canonical-json, envelope-object, envelope-tuple, avro');
    expect(SIM_USAGE).toMatch(/--devices N +.*\(default: 10\)/);
  });

  it.each([
    [['--devices', 'abc'], '--devices: expected a positive integer, got "abc"'],
    [['--devices', '0'], '--devices: expected a positive integer, got "0"'],
    [['--devices', '2.5'], '--devices: expected a positive integer, got "2.5"'],
    [['--rate', '-1'], '--rate: expected a number ≥ 0, got "-1"'],
    [['--rate', 'fast'], '--rate: expected a number ≥ 0, got "fast"'],
    [['--count', '0'], '--count: expected a positive integer, got "0"'],
    [['--duration', '0'], '--duration: expected a number of seconds > 0, got "0"'],
    [['--duration', '10s'], '--duration: expected a number of seconds > 0, got "10s"'],
    [['--mqtt-url', 'localhost:1883'], '--mqtt-url: expected a URL starting with mqtt://, mqtts://, tcp://, ssl://, ws://, wss://, got "localhost:1883"'],
    [['--mqtt-url', 'not a url'], '--mqtt-url: expected a URL such as mqtt://127.0.0.1:1883, got "not a url"'],
    [['--seed', '1.5'], '--seed: expected an integer, got "1.5"'],
    [['--qos', '3'], '--qos: expected 0, 1 or 2, got "3"'],
    [['--form', 'xml'], '--form: expected one of canonical-json, envelope-object, envelope-tuple, avro, got "xml"'],
    [['--prefix', 'a/b'], `--prefix: expected letters, digits, '-' or '_', got "a/b"`],
  ])('rejects %j with a message naming the flag, the value and what was expected', (argv, expected) => {
    expect(message(argv)).toBe(expected);
  });

  it('rejects a flag given without its value', () => {
    expect(message(['--devices'])).toBe('--devices: expected a value (N)');
  });

  it('rejects an unknown flag, listing the known ones', () => {
    expect(message(['--device', '3'])).toMatch(/^--device: unknown flag; expected one of --devices, --rate, .*--prefix, --serial, --serial-framing, .*--help$/);
    expect(message(['-x'])).toMatch(/^-x: unknown flag/);
  });

  it('rejects positional arguments', () => {
    expect(message(['10'])).toBe('unexpected argument "10": reefer-sim takes flags only (see --help)');
  });

  it('rejects --count together with --duration', () => {
    expect(message(['--count', '5', '--duration', '5'])).toBe('--count and --duration: expected one of them, got both');
  });
});
