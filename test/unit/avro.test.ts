import { readFileSync } from 'node:fs';
import avsc from 'avsc';
import { describe, expect, it } from 'vitest';
import {
  READING_CANONICAL_FORM,
  READING_FINGERPRINT,
  READING_SCHEMA,
  TELEMETRY_CANONICAL_FORM,
  TELEMETRY_FINGERPRINT,
  decodeReading,
  decodeSingleObject,
  decodeTelemetry,
  encodeReading,
  encodeReadingSingleObject,
  encodeTelemetry,
  encodeTelemetrySingleObject,
  isSingleObject,
} from '../../schemas/avro.js';
import { crc64Avro } from '../../schemas/fingerprint.js';
import { REFERENCE_COLUMNS, type ReeferReading, type ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING, sparseReading as sparseReadingOf } from '../harness/reference-reading.js';

const reading: ReeferReading = { ...REFERENCE_READING };

const sparseReading: ReeferReading = sparseReadingOf({ container_id: reading.container_id, measurement_time: reading.measurement_time, temperature: reading.temperature });

const telemetry: ReeferTelemetry = {
  ...reading,
  gateway_id: 'gw-ship-7',
  seq: 2 ** 40 + 17,
  transport: 'mqtt',
  received_time: Date.UTC(2020, 0, 15, 17, 59, 46, 123),
};

const avscFile = JSON.parse(readFileSync(new URL('../../schemas/reefer-telemetry.avsc', import.meta.url), 'utf8')) as {
  fields: { name: string }[];
};

describe('raw Avro bodies', () => {
  it('round-trips a telemetry record with timestamps as plain numbers', () => {
    const decoded = decodeTelemetry(encodeTelemetry(telemetry));
    expect({ ...decoded }).toEqual(telemetry);
    expect(typeof decoded.measurement_time).toBe('number');
    expect(typeof decoded.received_time).toBe('number');
  });

  it('decodes nullable fields as plain null or the value, not as wrapped union branches', () => {
    expect({ ...decodeReading(encodeReading(sparseReading)) }).toEqual(sparseReading);
    const full = decodeReading(encodeReading(reading));
    expect(full.product_id).toBe('P05');
    expect(full.latitude).toBe(37.82);
    expect(full.fan_1).toBe(true);
  });

  it('encodes a reading body as the prefix of the telemetry body with the same sensor values', () => {
    const readingBody = encodeReading(reading);
    const telemetryBody = encodeTelemetry(telemetry);
    expect(telemetryBody.subarray(0, readingBody.length).equals(readingBody)).toBe(true);
  });

  it('throws when encoding a value that does not fit the schema', () => {
    expect(() => encodeReading({ ...reading, temperature: 'cold' as unknown as number })).toThrow();
  });

  it('throws when decoding a truncated body or one with trailing bytes', () => {
    const body = encodeReading(reading);
    expect(() => decodeReading(body.subarray(0, body.length - 1))).toThrow(/truncated/);
    expect(() => decodeReading(Buffer.concat([body, Buffer.from([0])]))).toThrow(/trailing/);
  });
});

describe('ReeferReading schema', () => {
  it('is the first 20 fields of ReeferTelemetry, in reference column order', () => {
    expect(READING_SCHEMA.name).toBe('ReeferReading');
    expect(READING_SCHEMA.namespace).toBe('reeferedge');
    expect(READING_SCHEMA.fields.map((f) => f.name)).toEqual([...REFERENCE_COLUMNS]);
    expect(READING_SCHEMA.fields).toEqual(avscFile.fields.slice(0, 20));
  });
});

describe('fingerprints', () => {
  it('are taken of the Parsing Canonical Form, the same text avsc derives without attributes', () => {
    const opts = { wrapUnions: 'never' } as const;
    const telemetryType = avsc.Type.forSchema(JSON.parse(readFileSync(new URL('../../schemas/reefer-telemetry.avsc', import.meta.url), 'utf8')), opts);
    const readingType = avsc.Type.forSchema(READING_SCHEMA as avsc.Schema, opts);
    expect(TELEMETRY_CANONICAL_FORM).toBe(JSON.stringify(telemetryType.schema()));
    expect(READING_CANONICAL_FORM).toBe(JSON.stringify(readingType.schema()));
    expect(TELEMETRY_CANONICAL_FORM).not.toMatch(/doc|default|logicalType|namespace/);
    expect(TELEMETRY_CANONICAL_FORM.startsWith('{"name":"reeferedge.ReeferTelemetry","type":"record","fields":[')).toBe(true);
    expect(READING_CANONICAL_FORM.startsWith('{"name":"reeferedge.ReeferReading","type":"record","fields":[')).toBe(true);
  });

  it('are 8 bytes, distinct, and equal to crc64Avro of the canonical forms', () => {
    expect(TELEMETRY_FINGERPRINT).toHaveLength(8);
    expect(READING_FINGERPRINT).toHaveLength(8);
    expect(TELEMETRY_FINGERPRINT.equals(READING_FINGERPRINT)).toBe(false);
    expect(TELEMETRY_FINGERPRINT.equals(crc64Avro(TELEMETRY_CANONICAL_FORM))).toBe(true);
    expect(READING_FINGERPRINT.equals(crc64Avro(READING_CANONICAL_FORM))).toBe(true);
  });

  it('have the values documented in schemas/README.md', () => {
    const readme = readFileSync(new URL('../../schemas/README.md', import.meta.url), 'utf8');
    const spaced = (b: Buffer) => b.toString('hex').replace(/(..)(?!$)/g, '$1 ');
    expect(readme).toContain(spaced(TELEMETRY_FINGERPRINT));
    expect(readme).toContain(spaced(READING_FINGERPRINT));
  });
});

describe('single-object encoding', () => {
  it('frames a telemetry record as C3 01, the 8-byte fingerprint, then the raw body', () => {
    const framed = encodeTelemetrySingleObject(telemetry);
    expect(framed[0]).toBe(0xc3);
    expect(framed[1]).toBe(0x01);
    expect(framed.subarray(2, 10).equals(TELEMETRY_FINGERPRINT)).toBe(true);
    expect(framed.subarray(10).equals(encodeTelemetry(telemetry))).toBe(true);
  });

  it('frames a reading with the ReeferReading fingerprint', () => {
    const framed = encodeReadingSingleObject(reading);
    expect(framed.subarray(2, 10).equals(READING_FINGERPRINT)).toBe(true);
    expect(framed.subarray(10).equals(encodeReading(reading))).toBe(true);
  });

  it('decodes either schema, telling which one it was', () => {
    const t = decodeSingleObject(encodeTelemetrySingleObject(telemetry));
    expect(t).toMatchObject({ ok: true, schema: 'ReeferTelemetry', value: telemetry });
    const r = decodeSingleObject(encodeReadingSingleObject(sparseReading));
    expect(r).toMatchObject({ ok: true, schema: 'ReeferReading', value: sparseReading });
  });

  it('recognises the marker with isSingleObject', () => {
    expect(isSingleObject(encodeReadingSingleObject(reading))).toBe(true);
    expect(isSingleObject(Buffer.from([0xc3]))).toBe(false);
    expect(isSingleObject(Buffer.from('{"container_id":"C01"}'))).toBe(false);
    expect(isSingleObject(Buffer.from([0, 0, 0, 0, 1]))).toBe(false);
    expect(isSingleObject(Buffer.alloc(0))).toBe(false);
  });

  it('reports a wrong marker', () => {
    expect(decodeSingleObject(Buffer.from([0x00, 0x00, 0x00, 0x00, 0x01, 0x02]))).toEqual({
      ok: false,
      detail: 'expected the single-object marker c3 01, got 0000',
    });
    expect(decodeSingleObject(Buffer.alloc(0))).toEqual({
      ok: false,
      detail: 'expected the single-object marker c3 01, got an empty buffer',
    });
  });

  it('reports a header cut short', () => {
    const framed = encodeReadingSingleObject(reading);
    expect(decodeSingleObject(framed.subarray(0, 6))).toEqual({
      ok: false,
      detail: 'single-object header is 10 bytes (marker and fingerprint), got 6',
    });
  });

  it('reports an unknown fingerprint with the expected ones', () => {
    const framed = Buffer.from(encodeReadingSingleObject(reading));
    framed[2] = (framed[2] as number) ^ 0xff;
    const result = decodeSingleObject(framed);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.detail).toContain(`unknown schema fingerprint ${framed.subarray(2, 10).toString('hex')}`);
      expect(result.detail).toContain(READING_FINGERPRINT.toString('hex'));
      expect(result.detail).toContain(TELEMETRY_FINGERPRINT.toString('hex'));
    }
  });

  it('reports a truncated body and trailing bytes', () => {
    const framed = encodeReadingSingleObject(reading);
    expect(decodeSingleObject(framed.subarray(0, framed.length - 3))).toEqual({
      ok: false,
      detail: `${framed.length - 13}-byte body is not a valid ReeferReading: truncated buffer`,
    });
    expect(decodeSingleObject(Buffer.concat([framed, Buffer.from([1, 2])]))).toEqual({
      ok: false,
      detail: `${framed.length - 8}-byte body is not a valid ReeferReading: trailing data`,
    });
  });

  it('reports a body whose union index is out of range', () => {
    const framed = Buffer.from(encodeTelemetrySingleObject(telemetry));
    // After the header: container_id (length byte + 'C01'), measurement_time (zig-zag varint), then
    // product_id's union index.
    const unionAt = 10 + 4 + zigZagLength(telemetry.measurement_time);
    expect(framed[unionAt]).toBe(2);
    framed[unionAt] = 8;
    expect(decodeSingleObject(framed)).toEqual({
      ok: false,
      detail: `${framed.length - 10}-byte body is not a valid ReeferTelemetry: invalid union index: 4`,
    });
  });

  it('never throws on random bytes after a valid header', () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    for (let i = 0; i < 3000; i++) {
      const header = i % 2 === 0 ? READING_FINGERPRINT : TELEMETRY_FINGERPRINT;
      const body = Buffer.from(Array.from({ length: i % 80 }, random));
      const buf = Buffer.concat([Buffer.from([0xc3, 0x01]), header, body]);
      const result = decodeSingleObject(buf);
      if (!result.ok) expect(result.detail).toMatch(/is not a valid Reefer(Reading|Telemetry)/);
    }
  });
});

function zigZagLength(n: number): number {
  let z = BigInt(n) * 2n;
  let bytes = 1;
  while (z >= 0x80n) {
    z >>= 7n;
    bytes++;
  }
  return bytes;
}
