import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DecodeContext } from '../../gateway/pipeline/decode-reading.js';
import {
  SERIAL_FRAMERS,
  createLineSplitter,
  isSkipped,
  parseCsvRow,
  rejectLineEvent,
  type LineEvent,
  type LineResult,
} from '../../gateway/pipeline/serial-framers.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';

const ctx: DecodeContext = { timeZone: 'UTC', nowMs: Date.UTC(2020, 0, 16, 12), maxPayloadBytes: 4096 };

const EXPECTED: ReeferReading = { ...REFERENCE_READING };

const REFERENCE_ROW = 'C01,2020-01-15 17:59:45,P05,5.02,5.0,20.5,2.6,0,1,5,21.5,75.9,39.8,4.7,True,True,True,37.82,-122.32,0';
// The documented example (docs/serial.md); its checksum was worked out independently of this code.
const REFERENCE_SENTENCE = `$RFR,${REFERENCE_ROW}*63`;

const line = (text: string | Buffer): Buffer => (typeof text === 'string' ? Buffer.from(text, 'utf8') : text);

function expectReading(result: LineResult, form: string): void {
  expect(result).toEqual({ ok: true, reading: EXPECTED, form });
}

function expectReject(result: LineResult, reason: string, detail?: RegExp): void {
  expect(isSkipped(result)).toBe(false);
  if (isSkipped(result) || result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result)}`);
  expect(result.reason).toBe(reason);
  if (detail) expect(result.detail).toMatch(detail);
}

describe('line splitter', () => {
  const texts = (events: LineEvent[]): string[] => events.map((e) => `${e.kind}:${e.bytes.toString('utf8')}`);

  it('splits LF and CR/LF endings and drops the ending', () => {
    const split = createLineSplitter({ maxLineBytes: 64 });
    expect(texts(split.push(Buffer.from('one\ntwo\r\nthree\r\n')))).toEqual(['line:one', 'line:two', 'line:three']);
    expect(split.pendingBytes()).toBe(0);
  });

  it('keeps a partial last line until the bytes that complete it arrive, byte by byte or across chunks', () => {
    const split = createLineSplitter({ maxLineBytes: 64 });
    expect(split.push(Buffer.from('$RFR,C0'))).toEqual([]);
    expect(split.pendingBytes()).toBe(7);
    expect(texts(split.push(Buffer.from('1*00\r')))).toEqual([]);
    expect(texts(split.push(Buffer.from('\nnext')))).toEqual(['line:$RFR,C01*00']);
    const bytes = Buffer.from('ab\r\ncd\n');
    const events: LineEvent[] = [];
    for (const byte of bytes) events.push(...split.push(Buffer.from([byte])));
    expect(texts(events)).toEqual(['line:nextab', 'line:cd']);
  });

  it('rejects an overlong line as soon as it outgrows the limit, skips it to its newline, then reads the next line', () => {
    const split = createLineSplitter({ maxLineBytes: 8 });
    const first = split.push(Buffer.from('0123456789'));
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ kind: 'oversized', maxLineBytes: 8 });
    expect(first[0]!.bytes.toString()).toBe('01234567');
    expect(split.pendingBytes()).toBe(0);
    expect(split.push(Buffer.from('more noise without end'))).toEqual([]);
    expect(split.pendingBytes()).toBe(0);
    expect(texts(split.push(Buffer.from('tail\ngood\n')))).toEqual(['line:good']);
  });

  it('rejects an overlong line that arrives whole in one chunk', () => {
    const split = createLineSplitter({ maxLineBytes: 4 });
    expect(texts(split.push(Buffer.from('12345\nok\n')))).toEqual(['oversized:1234', 'line:ok']);
  });

  it('accepts a line of exactly the limit with a CR/LF ending split between chunks', () => {
    const split = createLineSplitter({ maxLineBytes: 4 });
    expect(split.push(Buffer.from('1234\r'))).toEqual([]);
    expect(texts(split.push(Buffer.from('\n')))).toEqual(['line:1234']);
  });

  it('hands back the unfinished line when the stream ends, once', () => {
    const split = createLineSplitter({ maxLineBytes: 64 });
    split.push(Buffer.from('done\nhalf a li'));
    const cut = split.end();
    expect(cut?.kind).toBe('partial');
    expect(cut?.bytes.toString()).toBe('half a li');
    expect(split.end()).toBeUndefined();
    expect(split.pendingBytes()).toBe(0);
  });

  it('turns oversized and partial events into oversized and partial-line rejections', () => {
    expect(rejectLineEvent({ kind: 'oversized', bytes: Buffer.from('x'), maxLineBytes: 8 })).toMatchObject({ ok: false, reason: 'oversized' });
    expect(rejectLineEvent({ kind: 'partial', bytes: Buffer.from('$RFR,C0') })).toMatchObject({
      ok: false,
      reason: 'partial-line',
      detail: expect.stringContaining('"$RFR,C0"') as unknown,
    });
  });
});

describe('every framing', () => {
  it.each(['json', 'csv', 'nmea'] as const)('%s: rejects bytes that are not UTF-8 as line-noise', (framing) => {
    expectReject(SERIAL_FRAMERS[framing](line(Buffer.from([0xff, 0xfe, 0x41, 0x80])), ctx), 'line-noise', /not UTF-8 text \(ff fe 41 80\)/);
  });

  it.each(['json', 'csv', 'nmea'] as const)('%s: rejects control characters as line-noise, naming the offset', (framing) => {
    expectReject(SERIAL_FRAMERS[framing](line('C01\u0000\u0007,xx'), ctx), 'line-noise', /control character 0x00 at offset 3/);
  });

  it.each(['json', 'csv', 'nmea'] as const)('%s: skips blank lines without a rejection', (framing) => {
    expect(SERIAL_FRAMERS[framing](line('  \t'), ctx)).toEqual({ skipped: 'blank' });
  });
});

describe('json lines', () => {
  const decode = (text: string): LineResult => SERIAL_FRAMERS.json(line(text), ctx);

  it('reads a canonical JSON object, with the reference aliases', () => {
    const { ambient_temperature, fan_1, ...rest } = EXPECTED;
    expectReading(decode(JSON.stringify({ ...rest, ambiant_temperature: ambient_temperature, vent_1: fan_1, measurement_time: '2020-01-15 17:59:45' })), 'canonical-json');
  });

  it('reads the reference envelope with a tuple payload', () => {
    const tuple = "('C01', '2020-01-15 17:59:45', 'P05', 5.02, 5.0, 20.5, 2.6, 0, 1, 5, 21.5, 75.9, 39.8, 4.7, True, True, True, '37.82', '-122.32', 0)";
    expectReading(decode(JSON.stringify({ containerID: 'C01', timestamp: '2020-01-15 17:59:45', type: 'ReeferTelemetries', payload: tuple })), 'envelope-tuple');
  });

  it('rejects text that is not JSON as malformed-json', () => {
    expectReject(decode('{"container_id": "C01",'), 'malformed-json', /not JSON/);
  });

  it('rejects JSON that is not an object as unknown-form', () => {
    expectReject(decode('[1,2,3]'), 'unknown-form');
  });

  it('rejects an object without the required fields as missing-field', () => {
    expectReject(decode('{"hello":"world"}'), 'missing-field', /container_id is missing/);
  });
});

describe('csv lines', () => {
  const decode = (text: string): LineResult => SERIAL_FRAMERS.csv(line(text), ctx);

  it('reads the 20 reference values in column order', () => {
    expectReading(decode(REFERENCE_ROW), 'csv-row');
  });

  it('recognises and skips the header row, with or without a byte order mark', () => {
    expect(decode('container_id,measurement_time,product_id,temperature')).toEqual({ skipped: 'header' });
    expect(decode('\ufeffcontainer_id,measurement_time')).toEqual({ skipped: 'header' });
  });

  it('reads quoted fields, doubled quotes and space around fields', () => {
    const row = ' "C01" , "2020-01-15 17:59:45","P05",5.02,5.0,20.5,2.6,0,1,5,21.5,75.9,39.8,4.7,True,True,True,"37.82","-122.32",0';
    expectReading(decode(row), 'csv-row');
    expect(parseCsvRow('"a ""b"", c",,x')).toEqual({ ok: true, values: ['a "b", c', '', 'x'] });
  });

  it('treats empty fields as not reported', () => {
    const result = decode('C01,2020-01-15 17:59:45,,5.02,,,,,,,,,,,,,,,,');
    if (isSkipped(result) || !result.ok) throw new Error(JSON.stringify(result));
    expect(result.reading.product_id).toBeNull();
    expect(result.reading.fan_1).toBeNull();
  });

  it('rejects a row with the wrong number of values as bad-tuple', () => {
    expectReject(decode('C01,2020-01-15 17:59:45,P05,5.02'), 'bad-tuple', /expected 20 values/);
  });

  it('rejects an unterminated quote as bad-tuple', () => {
    expectReject(decode('"C01,2020-01-15 17:59:45'), 'bad-tuple', /unterminated quoted field at offset 0/);
  });

  it('rejects a value of the wrong type with the reading validation reason', () => {
    expectReject(decode(REFERENCE_ROW.replace('5.02', 'warm')), 'wrong-type', /temperature "warm" is not a number/);
  });
});

describe('nmea sentences', () => {
  const decode = (text: string): LineResult => SERIAL_FRAMERS.nmea(line(text), ctx);

  it('reads the documented example sentence', () => {
    expectReading(decode(REFERENCE_SENTENCE), 'nmea-sentence');
  });

  it('accepts the checksum in lower case and trailing space after it', () => {
    const sentence = `$RFR,C01,2020-01-15T17:59:45.000Z,P05,5.02,5,20.5,2.6,0,1,5,21.5,75.9,39.8,4.7,true,true,true,37.82,-122.32,0*6d  `;
    expectReading(decode(sentence), 'nmea-sentence');
  });

  it('ignores noise before the $ that starts the sentence', () => {
    expectReading(decode(`#~garbage${REFERENCE_SENTENCE}`), 'nmea-sentence');
  });

  it('rejects a sentence whose checksum does not match as bad-checksum, naming both', () => {
    expectReject(decode(REFERENCE_SENTENCE.replace('*63', '*64')), 'bad-checksum', /checksum 64, its bytes give 63/);
  });

  it('rejects a sentence with one value corrupted in transit as bad-checksum', () => {
    expectReject(decode(REFERENCE_SENTENCE.replace('5.02', '5.03')), 'bad-checksum');
  });

  it('rejects a sentence without a checksum as bad-checksum', () => {
    expectReject(decode(`$RFR,${REFERENCE_ROW}`), 'bad-checksum', /has no checksum/);
  });

  it('rejects a checksum that is not two hex digits as bad-checksum', () => {
    expectReject(decode(`$RFR,${REFERENCE_ROW}*6`), 'bad-checksum', /expected two hex digits \(\*63\)/);
    expectReject(decode(`$RFR,${REFERENCE_ROW}*XY`), 'bad-checksum');
  });

  it('rejects a correctly checksummed sentence from another talker as unknown-form', () => {
    // A GPS receiver's sentence on the same line, with its real checksum.
    expectReject(decode('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47'), 'unknown-form', /talker "GPGGA" is not RFR/);
  });

  it('rejects a line without a $ as unknown-form', () => {
    expectReject(decode(REFERENCE_ROW), 'unknown-form', /no sentence/);
  });

  it('rejects a checksummed sentence with the wrong number of values as bad-tuple', () => {
    expectReject(decode('$RFR,C01,2020-01-15 17:59:45*2A'), 'bad-tuple', /expected 20 values/);
  });
});

describe('docs/serial.md', () => {
  const doc = readFileSync('docs/serial.md', 'utf8').split('\n');

  it.each([
    ['json', '{"container_id"'],
    ['csv', 'C01,'],
    ['nmea', '$RFR,'],
  ] as const)('its %s example line decodes to the reference reading', (framing, start) => {
    const examples = doc.filter((l) => l.startsWith(start) && !l.includes('<'));
    expect(examples).toHaveLength(1);
    const result = SERIAL_FRAMERS[framing](line(examples[0]!), ctx);
    expect(result).toMatchObject({ ok: true, reading: EXPECTED });
  });

  it('documents the sentence example used above and every reason a serial line can get', () => {
    expect(doc).toContain(REFERENCE_SENTENCE);
    for (const reason of ['oversized', 'line-noise', 'partial-line', 'bad-checksum', 'unknown-form', 'malformed-json', 'bad-tuple']) {
      expect(doc.some((l) => l.startsWith(`| \`${reason}\``))).toBe(true);
    }
  });
});
