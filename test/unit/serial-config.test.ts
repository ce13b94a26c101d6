import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../gateway/config.js';

function problems(file: unknown): readonly string[] {
  try {
    resolveConfig({ file });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(file)} to be rejected`);
}

describe('serial configuration', () => {
  it('has no ports by default', () => {
    expect(resolveConfig({}).serial).toEqual({ ports: [], reopenMinMs: 500, reopenMaxMs: 10000, presenceCheckMs: 1000 });
  });

  it('fills in the line settings of a port from their defaults', () => {
    expect(resolveConfig({ file: { serial: { ports: [{ path: '/dev/ttyUSB0', framing: 'nmea' }] } } }).serial.ports).toEqual([
      { path: '/dev/ttyUSB0', framing: 'nmea', baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1, maxLineBytes: 4096 },
    ]);
  });

  it('names the key, the value and what was expected', () => {
    expect(problems({ serial: { ports: [{ path: '/dev/ttyUSB0', framing: 'xml', dataBits: 9, parity: 'mark', stopBits: 1.5 }] } })).toEqual([
      'serial.ports.0.dataBits: Invalid option: expected one of 5|6|7|8, got 9',
      'serial.ports.0.parity: Invalid option: expected one of "none"|"even"|"odd", got "mark"',
      'serial.ports.0.stopBits: Invalid option: expected one of 1|2, got 1.5',
      'serial.ports.0.framing: Invalid option: expected one of "json"|"csv"|"nmea", got "xml"',
    ]);
  });

  it('requires a framing and a path', () => {
    expect(problems({ serial: { ports: [{}] } })).toEqual([
      'serial.ports.0.path: expected string, received undefined, got nothing',
      'serial.ports.0.framing: Invalid option: expected one of "json"|"csv"|"nmea", got nothing',
    ]);
  });

  it('rejects a port configured twice, an unknown key and a backoff that shrinks', () => {
    expect(problems({ serial: { ports: [{ path: '/dev/a', framing: 'csv' }, { path: '/dev/a', framing: 'json' }] } })).toEqual([
      'serial.ports.1.path: expected each port path once, got "/dev/a"',
    ]);
    expect(problems({ serial: { ports: [{ path: '/dev/a', framing: 'csv', baud: 9600 }] } })).toEqual(['serial.ports.0.baud: unknown key']);
    expect(problems({ serial: { reopenMinMs: 5000, reopenMaxMs: 1000 } })).toEqual(['serial.reopenMinMs: expected at most serial.reopenMaxMs (1000), got 5000']);
  });
});
