import { describe, expect, it } from 'vitest';
import { parseSimArgs, SIM_USAGE } from '../../device-sim/cli.js';
import { createFleetModel } from '../../device-sim/reefer-model.js';
import { CSV_HEADER, csvRow, encodeLine, nmeaSentence } from '../../device-sim/serial-forms.js';
import { createLineSplitter, isSkipped, SERIAL_FRAMERS } from '../../gateway/pipeline/serial-framers.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';

const READING: ReeferReading = { ...REFERENCE_READING };

const ctx = { timeZone: 'Europe/Amsterdam', nowMs: Date.now(), maxPayloadBytes: 4096 };

describe('serial line encoders', () => {
  it('writes a CSV row in reference column order, time in UTC with milliseconds and maintenance as 0/1', () => {
    expect(csvRow(READING)).toBe('C01,2020-01-15T17:59:45.000Z,P05,5.02,5,20.5,2.6,0,1,5,21.5,75.9,39.8,4.7,true,true,true,37.82,-122.32,0');
    expect(CSV_HEADER.split(',')[0]).toBe('container_id');
    expect(CSV_HEADER.split(',')).toHaveLength(20);
  });

  it('writes the sentence with the XOR checksum of the bytes between $ and *', () => {
    // 6D worked out independently of the code under test.
    expect(nmeaSentence(READING)).toBe(`$RFR,${csvRow(READING)}*6D`);
  });

  it('quotes text holding a comma or a quote, and writes missing values as empty fields', () => {
    const row = csvRow({ ...READING, product_id: 'P05, "ripe"', kilowatts: null });
    expect(row).toContain(',"P05, ""ripe""",');
    expect(row).toContain(',20.5,,0,');
  });

  it('refuses text that would break the line or start a sentence', () => {
    expect(() => csvRow({ ...READING, product_id: 'P0\n5' })).toThrow(RangeError);
    expect(() => nmeaSentence({ ...READING, product_id: 'P$5' })).toThrow(RangeError);
  });

  it.each(['json', 'csv', 'nmea'] as const)('%s: 200 simulated readings come back from the gateway framer unchanged', (framing) => {
    const reefers = createFleetModel({ devices: 4, seed: 3, startTimeMs: Date.UTC(2024, 5, 1), intervalMs: 300_000 });
    const split = createLineSplitter({ maxLineBytes: 4096 });
    const sent: ReeferReading[] = [];
    let stream = framing === 'csv' ? `${CSV_HEADER}\r\n` : '';
    for (let i = 0; i < 50; i++) {
      for (const reefer of reefers) {
        const reading = reefer.next();
        sent.push(reading);
        stream += encodeLine(reading, framing);
      }
    }
    const received: ReeferReading[] = [];
    let skipped = 0;
    for (const event of split.push(Buffer.from(stream))) {
      if (event.kind !== 'line') throw new Error(`unexpected ${event.kind}`);
      const result = SERIAL_FRAMERS[framing](event.bytes, ctx);
      if (isSkipped(result)) skipped += 1;
      else if (result.ok) received.push(result.reading);
      else throw new Error(`${result.reason}: ${result.detail}`);
    }
    expect(received).toEqual(sent);
    expect(skipped).toBe(framing === 'csv' ? 1 : 0);
  });
});

describe('reefer-sim serial flags', () => {
  it('takes serial ports and a framing', () => {
    const result = parseSimArgs(['--serial', '/dev/ttyUSB0,/dev/ttyUSB1', '--serial-framing', 'nmea', '--devices', '4']);
    expect(result).toMatchObject({ ok: true, options: { serialPaths: ['/dev/ttyUSB0', '/dev/ttyUSB1'], serialFraming: 'nmea', devices: 4 } });
  });

  it('rejects an unknown framing, an empty or repeated path, and MQTT-only flags with --serial', () => {
    expect(parseSimArgs(['--serial', '/dev/a', '--serial-framing', 'xml'])).toEqual({ ok: false, message: '--serial-framing: expected one of json, csv, nmea, got "xml"' });
    expect(parseSimArgs(['--serial', '/dev/a,,/dev/b'])).toMatchObject({ ok: false, message: expect.stringMatching(/^--serial: expected comma-separated/) as unknown });
    expect(parseSimArgs(['--serial', '/dev/a,/dev/a'])).toMatchObject({ ok: false, message: '--serial: expected each port path once, got "/dev/a,/dev/a"' });
    expect(parseSimArgs(['--serial', '/dev/a', '--qos', '0'])).toMatchObject({ ok: false, message: expect.stringContaining('--qos applies to MQTT only') as unknown });
    expect(parseSimArgs(['--serial-framing', 'csv'])).toMatchObject({ ok: false, message: '--serial-framing: expected --serial too, got no serial ports' });
  });

  it('documents both flags in --help', () => {
    expect(SIM_USAGE).toMatch(/--serial PATH\[,PATH\.\.\.\]\s+write to these serial ports/);
    expect(SIM_USAGE).toMatch(/--serial-framing FRAMING\s+line framing on the serial ports, one of json, csv, nmea/);
  });
});
