import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeReadingSingleObject, encodeTelemetrySingleObject, READING_FINGERPRINT } from '../../schemas/avro.js';
import type { ReeferReading, ReeferTelemetry } from '../../schemas/reefer-reading.js';
import {
  FIELD_RANGES,
  REJECT_REASONS,
  REJECT_REASON_MEANINGS,
  decodeReading,
  readingFromColumns,
  readingFromObject,
  type DecodeContext,
  type DecodeResult,
} from '../../gateway/pipeline/decode-reading.js';
import { REFERENCE_READING, REFERENCE_TUPLE } from '../harness/reference-reading.js';

const NOW_MS = Date.UTC(2020, 0, 16, 12, 0, 0);
const ctx: DecodeContext = { timeZone: 'UTC', nowMs: NOW_MS, maxPayloadBytes: 64 * 1024 };


const EXPECTED: ReeferReading = { ...REFERENCE_READING };

const CANONICAL = {
  ...EXPECTED,
  measurement_time: '2020-01-15 17:59:45',
};

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const decodeJson = (value: unknown, context: DecodeContext = ctx): DecodeResult => decodeReading(json(value), context);

function expectReject(result: DecodeResult, reason: string, detail: string | RegExp): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.reason).toBe(reason);
  if (typeof detail === 'string') expect(result.detail).toBe(detail);
  else expect(result.detail).toMatch(detail);
}

function expectReading(result: DecodeResult): ReeferReading {
  if (!result.ok) throw new Error(`expected a reading, got ${result.reason}: ${result.detail}`);
  return result.reading;
}

describe('the three payload forms', () => {
  it('decodes the reference tuple envelope to the exact canonical values', () => {
    const result = decodeJson({
      containerID: 'C01',
      timestamp: '2020-01-15 17:59:45',
      type: 'ReeferTelemetries',
      payload: REFERENCE_TUPLE,
    });
    expect(result).toEqual({ ok: true, form: 'envelope-tuple', reading: EXPECTED });
  });

  it('decodes the reference envelope with an object payload in reference spelling', () => {
    const { ambient_temperature, fan_1, fan_2, fan_3, ...rest } = CANONICAL;
    const payload = {
      ...rest,
      ambiant_temperature: ambient_temperature,
      vent_1: fan_1,
      vent_2: fan_2,
      vent_3: fan_3,
      latitude: '37.82',
      longitude: '-122.32',
      maintenance_required: 0,
    };
    const result = decodeJson({ containerID: 'C01', timestamp: '2020-01-15 17:59:45', type: 'ReeferTelemetries', payload });
    expect(result).toEqual({ ok: true, form: 'envelope-object', reading: EXPECTED });
  });

  it('decodes canonical JSON', () => {
    expect(decodeJson(CANONICAL)).toEqual({ ok: true, form: 'canonical-json', reading: EXPECTED });
  });

  it('decodes an Avro single-object ReeferReading', () => {
    expect(decodeReading(encodeReadingSingleObject(EXPECTED), ctx)).toEqual({ ok: true, form: 'avro', reading: EXPECTED });
  });

  it('keeps only the sensor fields of an Avro single-object ReeferTelemetry', () => {
    const telemetry: ReeferTelemetry = { ...EXPECTED, gateway_id: 'gw-1', seq: 9, transport: 'mqtt', received_time: NOW_MS };
    const result = decodeReading(encodeTelemetrySingleObject(telemetry), ctx);
    expect(result).toEqual({ ok: true, form: 'avro', reading: EXPECTED });
    expect(Object.keys(expectReading(result))).toHaveLength(20);
  });

  it('still validates Avro readings: out-of-range values are rejected', () => {
    expectReject(
      decodeReading(encodeReadingSingleObject({ ...EXPECTED, temperature: 999 }), ctx),
      'out-of-range',
      'temperature 999 is outside -70..80 °C',
    );
  });

  it('returns fields in canonical order, with absent sensors as null', () => {
    const reading = expectReading(
      decodeJson({ container_id: 'C02', measurement_time: '2020-01-15 17:59:45', temperature: 4 }),
    );
    expect(Object.keys(reading)).toEqual(Object.keys(EXPECTED));
    expect(reading).toEqual({
      ...EXPECTED,
      container_id: 'C02',
      temperature: 4,
      ...Object.fromEntries(
        Object.keys(EXPECTED)
          .filter((k) => !['container_id', 'measurement_time', 'temperature'].includes(k))
          .map((k) => [k, null]),
      ),
    });
  });

  it('ignores unknown extra keys', () => {
    expect(decodeJson({ ...CANONICAL, firmware: '1.2.3', extra: { nested: true } })).toEqual({
      ok: true,
      form: 'canonical-json',
      reading: EXPECTED,
    });
  });

  it('fills a missing container_id in an envelope payload from the envelope containerID', () => {
    const { container_id: _omitted, ...payload } = CANONICAL;
    expect(expectReading(decodeJson({ containerID: 'C01', payload })).container_id).toBe('C01');
  });

  it('accepts JSON with surrounding whitespace or a UTF-8 byte order mark', () => {
    expect(decodeReading(Buffer.from(`\n  ${JSON.stringify(CANONICAL)}  \n`), ctx).ok).toBe(true);
    expect(decodeReading(Buffer.from(`\ufeff${JSON.stringify(CANONICAL)}`), ctx).ok).toBe(true);
  });
});

describe('normalising values', () => {
  it('accepts the aliases ambiant_temperature and vent_1..3', () => {
    const reading = expectReading(
      decodeJson({ ...CANONICAL, ambient_temperature: undefined, ambiant_temperature: 19.5, fan_2: undefined, vent_2: false }),
    );
    expect(reading.ambient_temperature).toBe(19.5);
    expect(reading.fan_2).toBe(false);
  });

  it('prefers the canonical name when both it and an alias are present', () => {
    expect(expectReading(decodeJson({ ...CANONICAL, ambiant_temperature: 1 })).ambient_temperature).toBe(20.5);
  });

  it('accepts numeric strings for numeric fields', () => {
    const reading = expectReading(decodeJson({ ...CANONICAL, temperature: ' -3.5e0 ', content_type: '2', kilowatts: '.5' }));
    expect(reading.temperature).toBe(-3.5);
    expect(reading.content_type).toBe(2);
    expect(reading.kilowatts).toBe(0.5);
  });

  it('accepts 0/1, "true"/"false" and "True"/"False" for booleans', () => {
    const reading = expectReading(
      decodeJson({ ...CANONICAL, fan_1: 1, fan_2: 'False', fan_3: 'true', maintenance_required: '1' }),
    );
    expect([reading.fan_1, reading.fan_2, reading.fan_3, reading.maintenance_required]).toEqual([true, false, true, true]);
  });

  it('treats null and empty strings in optional fields as not reported', () => {
    const reading = expectReading(decodeJson({ ...CANONICAL, product_id: '', latitude: null, fan_1: ' ' }));
    expect([reading.product_id, reading.latitude, reading.fan_1]).toEqual([null, null, null]);
  });

  it('accepts an integral float for an int field', () => {
    expect(expectReading(decodeJson({ ...CANONICAL, defrost_cycle: 6.0 })).defrost_cycle).toBe(6);
  });

  it('keeps a negative CO2 reading from a failing sensor', () => {
    expect(expectReading(decodeJson({ ...CANONICAL, carbon_dioxide_level: -2.5 })).carbon_dioxide_level).toBe(-2.5);
  });

  it('documents every range in schemas/README.md as FIELD_RANGES declares it', () => {
    const readme = readFileSync(new URL('../../schemas/README.md', import.meta.url), 'utf8');
    for (const [field, range] of Object.entries(FIELD_RANGES)) {
      const row = readme.split('\n').find((line) => line.includes(`| \`${field}\` |`));
      expect(row, field).toBeDefined();
      expect(row?.trimEnd().endsWith(`| ${range.min}..${range.max} |`), `${field}: ${row}`).toBe(true);
    }
  });

  it('accepts every range bound inclusively', () => {
    for (const [field, range] of Object.entries(FIELD_RANGES)) {
      expect(decodeJson({ ...CANONICAL, [field]: range.min }).ok, `${field} ${range.min}`).toBe(true);
      expect(decodeJson({ ...CANONICAL, [field]: range.max }).ok, `${field} ${range.max}`).toBe(true);
    }
  });
});

describe('measurement_time', () => {
  const at = (measurement_time: unknown, context: DecodeContext = ctx) =>
    decodeJson({ ...CANONICAL, measurement_time }, context);
  const timeOf = (measurement_time: unknown, context: DecodeContext = ctx) =>
    expectReading(at(measurement_time, context)).measurement_time;

  it('reads a zone-less time as UTC by default', () => {
    expect(timeOf('2020-01-15 17:59:45')).toBe(Date.UTC(2020, 0, 15, 17, 59, 45));
  });

  it('accepts fractional seconds and the T separator', () => {
    expect(timeOf('2020-01-15T17:59:45.123456')).toBe(Date.UTC(2020, 0, 15, 17, 59, 45, 123));
    expect(timeOf('2020-01-15 17:59:45,5')).toBe(Date.UTC(2020, 0, 15, 17, 59, 45, 500));
  });

  it('accepts ISO 8601 with Z or an offset, regardless of the site zone', () => {
    const amsterdam = { ...ctx, timeZone: 'Europe/Amsterdam' };
    expect(timeOf('2020-01-15T17:59:45Z', amsterdam)).toBe(Date.UTC(2020, 0, 15, 17, 59, 45));
    expect(timeOf('2020-01-15T19:59:45+02:00', amsterdam)).toBe(Date.UTC(2020, 0, 15, 17, 59, 45));
    expect(timeOf('2020-01-15T12:29:45-0530')).toBe(Date.UTC(2020, 0, 15, 17, 59, 45));
  });

  it('accepts epoch milliseconds as a number or a digit string', () => {
    expect(timeOf(1579111185000)).toBe(1579111185000);
    expect(timeOf('1579111185000')).toBe(1579111185000);
  });

  it('reads a zone-less time in Europe/Amsterdam as CET in winter and CEST in summer', () => {
    const amsterdam = { ...ctx, timeZone: 'Europe/Amsterdam', nowMs: Date.UTC(2021, 11, 31) };
    expect(timeOf('2021-01-15 12:00:00', amsterdam)).toBe(Date.UTC(2021, 0, 15, 11, 0, 0));
    expect(timeOf('2021-07-15 12:00:00', amsterdam)).toBe(Date.UTC(2021, 6, 15, 10, 0, 0));
  });

  it('resolves Amsterdam times around the DST switches: repeated hour to its first occurrence, skipped hour forward', () => {
    const amsterdam = { ...ctx, timeZone: 'Europe/Amsterdam', nowMs: Date.UTC(2021, 11, 31) };
    // Clocks went back from 03:00 CEST to 02:00 CET on 2021-10-31.
    expect(timeOf('2021-10-31 01:59:59', amsterdam)).toBe(Date.UTC(2021, 9, 30, 23, 59, 59));
    expect(timeOf('2021-10-31 02:30:00', amsterdam)).toBe(Date.UTC(2021, 9, 31, 0, 30, 0));
    expect(timeOf('2021-10-31 03:00:00', amsterdam)).toBe(Date.UTC(2021, 9, 31, 2, 0, 0));
    // Clocks went forward from 02:00 CET to 03:00 CEST on 2021-03-28.
    expect(timeOf('2021-03-28 01:59:59', amsterdam)).toBe(Date.UTC(2021, 2, 28, 0, 59, 59));
    expect(timeOf('2021-03-28 02:30:00', amsterdam)).toBe(Date.UTC(2021, 2, 28, 1, 30, 0));
    expect(timeOf('2021-03-28 03:00:00', amsterdam)).toBe(Date.UTC(2021, 2, 28, 1, 0, 0));
  });

  it('reads a zone-less time in a zone west of UTC', () => {
    const newYork = { ...ctx, timeZone: 'America/New_York' };
    expect(timeOf('2020-01-15 12:59:45', newYork)).toBe(Date.UTC(2020, 0, 15, 17, 59, 45));
  });

  it('rejects text that is not a timestamp', () => {
    expectReject(
      at('yesterday'),
      'bad-timestamp',
      'measurement_time "yesterday" is not a timestamp; expected "YYYY-MM-DD HH:MM:SS" (read in UTC), ISO 8601 with Z or an offset, or epoch milliseconds',
    );
    for (const bad of ['2020-13-01 00:00:00', '2020-02-30 00:00:00', '2020-01-15 24:00:00', '2020-01-15', '2020-01-15 17:59:60']) {
      expectReject(at(bad), 'bad-timestamp', /is not a timestamp/);
    }
  });

  it('rejects times before 2000 and hints at seconds sent as milliseconds', () => {
    expectReject(
      at('1999-12-31 23:59:59'),
      'bad-timestamp',
      'measurement_time "1999-12-31 23:59:59" (1999-12-31T23:59:59.000Z) is before 2000-01-01T00:00:00Z',
    );
    expectReject(
      at(1579111185),
      'bad-timestamp',
      'measurement_time 1579111185 (1970-01-19T06:38:31.185Z) is before 2000-01-01T00:00:00Z (seconds sent where milliseconds are expected?)',
    );
  });

  it('rejects times more than 24 h after the gateway clock, and accepts up to 24 h', () => {
    expect(at(NOW_MS + 24 * 3600 * 1000).ok).toBe(true);
    expectReject(
      at('2020-01-17 12:00:01'),
      'bad-timestamp',
      'measurement_time "2020-01-17 12:00:01" (2020-01-17T12:00:01.000Z) is more than 24 h after the gateway clock (2020-01-16T12:00:00.000Z)',
    );
  });

  it('rejects an unknown site time zone for zone-less times without throwing', () => {
    expectReject(
      at('2020-01-15 17:59:45', { ...ctx, timeZone: 'Mars/Olympus_Mons' }),
      'bad-timestamp',
      'time zone "Mars/Olympus_Mons" is not a known IANA zone; expected e.g. "UTC" or "Europe/Amsterdam"',
    );
  });

  it('rejects a boolean timestamp as the wrong type', () => {
    expectReject(at(true), 'wrong-type', 'measurement_time true is a boolean; expected a timestamp string or epoch milliseconds');
  });
});

describe('reject reasons', () => {
  it('documents every reason with a one-line meaning', () => {
    expect(REJECT_REASONS).toEqual([
      'oversized',
      'malformed-json',
      'unknown-form',
      'bad-tuple',
      'bad-avro',
      'missing-field',
      'wrong-type',
      'out-of-range',
      'bad-timestamp',
      'container-mismatch',
      'bad-checksum',
      'line-noise',
      'partial-line',
    ]);
    for (const reason of REJECT_REASONS) {
      expect(REJECT_REASON_MEANINGS[reason]).toMatch(/^[A-Za-z'`].{10,130}\.$/);
    }
  });

  it('oversized: rejects a payload over the limit before parsing it', () => {
    expectReject(
      decodeReading(Buffer.alloc(101, 0x7b), { ...ctx, maxPayloadBytes: 100 }),
      'oversized',
      'payload of 101 bytes exceeds the limit of 100 bytes',
    );
    expect(decodeReading(json(CANONICAL), { ...ctx, maxPayloadBytes: json(CANONICAL).length }).ok).toBe(true);
  });

  it('malformed-json: names the text and the parser error', () => {
    expectReject(decodeReading(Buffer.from('{"container_id": C01}'), ctx), 'malformed-json', /^payload "\{\\"container_id\\": C01\}" is not JSON \(.+\); expected a JSON object or an Avro single-object value$/);
    expectReject(decodeReading(Buffer.alloc(0), ctx), 'malformed-json', 'payload is empty; expected a JSON object or an Avro single-object value');
  });

  it('unknown-form: rejects arrays, scalars and objects that are neither reading nor envelope', () => {
    expectReject(decodeJson([1, 2]), 'unknown-form', 'payload is an array; expected a JSON object: a reading or a reference envelope');
    expectReject(decodeJson(42), 'unknown-form', 'payload is a number; expected a JSON object: a reading or a reference envelope');
    expectReject(decodeJson(null), 'unknown-form', /payload is null/);
    expectReject(
      decodeJson({ hello: 'world', n: 1 }),
      'unknown-form',
      'JSON object with keys hello, n; expected a reading (container_id, measurement_time, temperature, …) or a reference envelope with a payload',
    );
    expectReject(
      decodeJson({ containerID: 'C01', payload: 17 }),
      'unknown-form',
      'envelope payload 17 is a number; expected an object with the reference fields or a tuple string',
    );
  });

  it('bad-tuple: rejects a tuple with the wrong count of values', () => {
    expectReject(
      decodeJson({ containerID: 'C01', payload: "('C01', '2020-01-15 17:59:45', 5.0)" }),
      'bad-tuple',
      `payload tuple "('C01', '2020-01-15 17:59:45', 5.0)" has 3 values; expected 20 in reference column order`,
    );
  });

  it('bad-tuple: rejects tuple syntax errors with the offset', () => {
    expectReject(
      decodeJson({ containerID: 'C01', payload: "('C01' 'x')" }),
      'bad-tuple',
      `payload tuple "('C01' 'x')": expected "," or ")" but found "'" at offset 7; expected a tuple such as ('C01', '2020-01-15 17:59:45', 'P05', 5.02, …)`,
    );
    expectReject(decodeJson({ payload: "('C01" }), 'bad-tuple', /unterminated string at offset 1/);
    expectReject(decodeJson({ payload: "'C01', 1" }), 'bad-tuple', /expected "\(" but found "'" at offset 0/);
    expectReject(decodeJson({ payload: '(maybe, 1)' }), 'bad-tuple', /unexpected "m" at offset 1/);
    expectReject(decodeJson({ payload: '(1, 2) 3' }), 'bad-tuple', /unexpected "3" after the closing "\)" at offset 7/);
    expectReject(decodeJson({ payload: "('\\x4', 1)" }), 'bad-tuple', /bad escape \\x4' at offset 2/);
  });

  it('bad-tuple: readingFromColumns rejects a row that is not 20 values', () => {
    expectReject(
      readingFromColumns(['C01', '2020-01-15 17:59:45'], ctx),
      'bad-tuple',
      'expected 20 values in reference column order (container_id … maintenance_required), got 2',
    );
  });

  it('bad-avro: rejects the single-object marker with an unknown fingerprint or a corrupt body', () => {
    expectReject(decodeReading(Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0]), ctx), 'bad-avro', /^unknown schema fingerprint 0102030405060708/);
    expectReject(
      decodeReading(Buffer.concat([Buffer.from([0xc3, 0x01]), READING_FINGERPRINT, Buffer.from([0x06])]), ctx),
      'bad-avro',
      '1-byte body is not a valid ReeferReading: truncated buffer',
    );
    expectReject(decodeReading(Buffer.from([0xc3, 0x01, 0x00]), ctx), 'bad-avro', /header is 10 bytes/);
  });

  it('missing-field: a reading without container_id, measurement_time or temperature', () => {
    const { container_id: _c, ...noId } = CANONICAL;
    expectReject(decodeJson(noId), 'missing-field', 'container_id is missing; a reading needs container_id, measurement_time and temperature');
    expectReject(decodeJson({ ...CANONICAL, measurement_time: null }), 'missing-field', /^measurement_time is missing/);
    const { temperature: _t, ...noTemperature } = CANONICAL;
    expectReject(decodeJson(noTemperature), 'missing-field', /^temperature is missing/);
    expectReject(decodeJson({ ...CANONICAL, container_id: '' }), 'missing-field', /^container_id is missing/);
    expectReject(decodeJson({ temperature: 4 }), 'missing-field', /^container_id is missing/);
  });

  it('wrong-type: names the field, the value and the expected type', () => {
    expectReject(decodeJson({ ...CANONICAL, temperature: 'cold' }), 'wrong-type', 'temperature "cold" is not a number; expected a number');
    expectReject(decodeJson({ ...CANONICAL, temperature: true }), 'wrong-type', 'temperature true is a boolean; expected a number');
    expectReject(decodeJson({ ...CANONICAL, kilowatts: [2.6] }), 'wrong-type', 'kilowatts [2.6] is an array; expected a number');
    expectReject(decodeJson({ ...CANONICAL, content_type: 1.5 }), 'wrong-type', 'content_type 1.5 is not an integer');
    expectReject(decodeJson({ ...CANONICAL, defrost_cycle: '2.5' }), 'wrong-type', 'defrost_cycle "2.5" is not an integer');
    expectReject(decodeJson({ ...CANONICAL, fan_1: 'yes' }), 'wrong-type', 'fan_1 "yes" is not a boolean; expected true/false, 1/0 or "true"/"false"');
    expectReject(decodeJson({ ...CANONICAL, fan_1: 2 }), 'wrong-type', /^fan_1 2 is not a boolean/);
    expectReject(decodeJson({ ...CANONICAL, product_id: 5 }), 'wrong-type', 'product_id 5 is a number; expected a string');
    expectReject(decodeJson({ ...CANONICAL, container_id: 101 }), 'wrong-type', 'container_id 101 is a number; expected a string');
    expectReject(decodeJson({ ...CANONICAL, latitude: '0x10' }), 'wrong-type', 'latitude "0x10" is not a number; expected a number');
    expectReject(decodeJson({ containerID: 7, payload: CANONICAL }), 'wrong-type', 'containerID 7 is a number; expected a string');
  });

  it('wrong-type: rejects container ids that are too long or carry other characters', () => {
    expectReject(
      decodeJson({ ...CANONICAL, container_id: 'C 01' }),
      'wrong-type',
      'container_id "C 01" is not a valid container id; expected 1..64 characters of A-Z, a-z, 0-9, ".", "_" or "-"',
    );
    expectReject(decodeJson({ ...CANONICAL, container_id: 'C'.repeat(65) }), 'wrong-type', /is not a valid container id/);
    expectReject(decodeJson({ ...CANONICAL, container_id: 'reefer/C01' }), 'wrong-type', /is not a valid container id/);
    expect(decodeJson({ ...CANONICAL, container_id: 'MSCU-123_4.5' }).ok).toBe(true);
  });

  it('wrong-type: rejects NaN and Infinity, including Python nan/inf in tuples and JSON overflow', () => {
    const tuple = REFERENCE_TUPLE.replace('4.7', 'nan');
    expectReject(decodeJson({ payload: tuple }), 'wrong-type', 'carbon_dioxide_level NaN is not a finite number');
    expectReject(decodeJson({ payload: REFERENCE_TUPLE.replace('5.02', '-inf') }), 'wrong-type', 'temperature -Infinity is not a finite number');
    expectReject(decodeReading(Buffer.from(JSON.stringify(CANONICAL).replace('5.02', '1e400')), ctx), 'wrong-type', 'temperature Infinity is not a finite number');
    expectReject(readingFromObject({ ...CANONICAL, humidity_level: Number.NaN }, ctx), 'wrong-type', 'humidity_level NaN is not a finite number');
    expectReject(decodeJson({ ...CANONICAL, kilowatts: 'Infinity' }), 'wrong-type', /^kilowatts "Infinity" is not a number/);
  });

  it('out-of-range: names field, value and range with its unit', () => {
    expectReject(decodeJson({ ...CANONICAL, temperature: 999 }), 'out-of-range', 'temperature 999 is outside -70..80 °C');
    expectReject(decodeJson({ ...CANONICAL, ambient_temperature: -61 }), 'out-of-range', 'ambient_temperature -61 is outside -60..70 °C');
    expectReject(decodeJson({ ...CANONICAL, kilowatts: -0.1 }), 'out-of-range', 'kilowatts -0.1 is outside 0..100 kW');
    expectReject(decodeJson({ ...CANONICAL, time_door_open: 100001 }), 'out-of-range', 'time_door_open 100001 is outside 0..100000 min');
    expectReject(decodeJson({ ...CANONICAL, content_type: 0 }), 'out-of-range', 'content_type 0 is outside 1..9');
    expectReject(decodeJson({ ...CANONICAL, humidity_level: 100.5 }), 'out-of-range', 'humidity_level 100.5 is outside 0..100 %');
    expectReject(decodeJson({ ...CANONICAL, carbon_dioxide_level: -101 }), 'out-of-range', 'carbon_dioxide_level -101 is outside -100..100 %');
    expectReject(decodeJson({ ...CANONICAL, latitude: '91' }), 'out-of-range', 'latitude 91 is outside -90..90 °');
    expectReject(decodeJson({ ...CANONICAL, longitude: 180.5 }), 'out-of-range', 'longitude 180.5 is outside -180..180 °');
  });

  it('out-of-range: every field in FIELD_RANGES is checked just past each bound', () => {
    for (const [field, range] of Object.entries(FIELD_RANGES)) {
      expectReject(decodeJson({ ...CANONICAL, [field]: range.min - 1 }), 'out-of-range', new RegExp(`^${field} `));
      expectReject(decodeJson({ ...CANONICAL, [field]: range.max + 1 }), 'out-of-range', new RegExp(`^${field} `));
    }
  });

  it('container-mismatch: the envelope containerID differs from the payload container_id', () => {
    expectReject(
      decodeJson({ containerID: 'C02', payload: REFERENCE_TUPLE }),
      'container-mismatch',
      `container_id "C01" differs from the envelope's containerID "C02"`,
    );
    expectReject(decodeJson({ containerID: 'C02', payload: CANONICAL }), 'container-mismatch', /envelope's containerID "C02"/);
  });

  it('container-mismatch: the reading was published on another container topic', () => {
    expectReject(
      decodeJson(CANONICAL, { ...ctx, topicContainerId: 'C09' }),
      'container-mismatch',
      'container_id "C01" differs from the container id "C09" in the topic',
    );
    expect(decodeJson(CANONICAL, { ...ctx, topicContainerId: 'C01' }).ok).toBe(true);
    expectReject(
      decodeReading(encodeReadingSingleObject(EXPECTED), { ...ctx, topicContainerId: 'C09' }),
      'container-mismatch',
      /in the topic/,
    );
  });

  it('cuts long values in details to about 80 characters', () => {
    const long = 'x'.repeat(500);
    const result = decodeJson({ ...CANONICAL, temperature: long });
    expectReject(result, 'wrong-type', /^temperature "x{78}… is not a number/);
    if (!result.ok) expect(result.detail.length).toBeLessThan(140);
  });
});

describe('tuple strings', () => {
  const tupleWith = (replace: string, by: string) => decodeJson({ payload: REFERENCE_TUPLE.replace(replace, by) });

  it('reads double-quoted strings and backslash escapes', () => {
    const reading = expectReading(tupleWith("'P05'", String.raw`"P\"0\x35\u0021"`));
    expect(reading.product_id).toBe('P"05!');
    expect(expectReading(tupleWith("'P05'", String.raw`'it\'s\\'`)).product_id).toBe("it's\\");
  });

  it('reads negative and exponent numbers, None, a trailing comma and a list', () => {
    const reading = expectReading(
      decodeJson({
        payload:
          "['C01', '2020-01-15 17:59:45', None, -1.5e1, +5, 2E1, .5, 0, 1, 5, 21.5, 75.9, 39.8, -4.7, False, True, None, 37.82, -122.32, 1,]",
      }),
    );
    expect(reading).toMatchObject({
      product_id: null,
      temperature: -15,
      target_temperature: 5,
      ambient_temperature: 20,
      kilowatts: 0.5,
      carbon_dioxide_level: -4.7,
      fan_1: false,
      fan_3: null,
      maintenance_required: true,
    });
  });

  it('reads the reference tuple through readingFromColumns as the serial CSV framer will', () => {
    const values = ['C01', '2020-01-15 17:59:45', 'P05', '5.02', '5.0', '20.5', '2.6', '0', '1', '5', '21.5', '75.9', '39.8', '4.7', 'True', 'True', 'True', '37.82', '-122.32', '0'];
    expect(readingFromColumns(values, ctx)).toEqual({ ok: true, form: 'envelope-tuple', reading: EXPECTED });
    expect(readingFromColumns(values, ctx, 'canonical-json').ok).toBe(true);
  });

  it('exposes readingFromObject for JSON-lines framers', () => {
    expect(readingFromObject({ ...CANONICAL }, ctx)).toEqual({ ok: true, form: 'canonical-json', reading: EXPECTED });
  });
});

describe('robustness', () => {
  let seed = 0x2545f491;
  const nextByte = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed & 0xff;
  };

  it('never throws on thousands of random buffers', () => {
    for (let i = 0; i < 4000; i++) {
      const bytes = Buffer.from(Array.from({ length: i % 200 }, nextByte));
      if (i % 4 === 0) bytes[0] = 0xc3;
      if (i % 4 === 0 && bytes.length > 1) bytes[1] = 0x01;
      if (i % 4 === 1 && bytes.length > 10) {
        bytes[0] = 0xc3;
        bytes[1] = 0x01;
        READING_FINGERPRINT.copy(bytes, 2);
      }
      const result = decodeReading(bytes, ctx);
      expect(typeof result.ok).toBe('boolean');
    }
  });

  it('never throws on mutated valid payloads of every form', () => {
    const seeds = [
      json(CANONICAL),
      json({ containerID: 'C01', payload: REFERENCE_TUPLE }),
      json({ containerID: 'C01', payload: { ...CANONICAL, vent_1: 1 } }),
      encodeReadingSingleObject(EXPECTED),
    ];
    let accepted = 0;
    for (let i = 0; i < 4000; i++) {
      const bytes = Buffer.from(seeds[i % seeds.length] as Buffer);
      for (let k = 0; k < 1 + (i % 3); k++) bytes[nextByte() % bytes.length] = nextByte();
      const result = decodeReading(bytes, ctx);
      if (result.ok) accepted++;
      else expect(REJECT_REASONS).toContain(result.reason);
    }
    expect(accepted).toBeLessThan(4000);
  });

  it('never throws on hostile JSON: deep nesting, odd keys and huge numbers', () => {
    const deep = '['.repeat(20000) + ']'.repeat(20000);
    expect(decodeReading(Buffer.from(deep), { ...ctx, maxPayloadBytes: 1e6 }).ok).toBe(false);
    const nested = `{"container_id":"C01","measurement_time":"2020-01-15 17:59:45","temperature":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    expectReject(decodeReading(Buffer.from(nested), { ...ctx, maxPayloadBytes: 1e6 }), 'wrong-type', /^temperature /);
    expect(decodeReading(Buffer.from('{"__proto__":{"container_id":"C01"},"constructor":1}'), ctx).ok).toBe(false);
    expect(decodeJson({ ...CANONICAL, measurement_time: 1e300 }).ok).toBe(false);
  });
});
