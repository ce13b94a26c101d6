import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeTelemetry, encodeTelemetrySingleObject } from '../../schemas/avro.js';
import { MAX_SCHEMA_ID, frameConfluent, isConfluentFramed, unframeConfluent } from '../../schemas/confluent-framing.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { sampleReading } from '../harness/reference-reading.js';

const telemetry: ReeferTelemetry = {
  ...sampleReading(),
  gateway_id: 'gw-1',
  seq: 1,
  transport: 'mqtt',
  received_time: Date.UTC(2026, 0, 1, 0, 0, 1),
};

describe('Confluent wire format', () => {
  it('is a zero byte, the schema id big-endian in 4 bytes, then the Avro body unchanged', () => {
    const body = encodeTelemetry(telemetry);
    const framed = frameConfluent(0x01020304, body);
    expect([...framed.subarray(0, 5)]).toEqual([0x00, 0x01, 0x02, 0x03, 0x04]);
    expect(framed.subarray(5).equals(body)).toBe(true);
    expect(framed.length).toBe(body.length + 5);
  });

  it('round-trips any id a registry hands out and any body', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_SCHEMA_ID }), fc.uint8Array({ maxLength: 200 }), (id, bytes) => {
        const result = unframeConfluent(frameConfluent(id, Buffer.from(bytes)));
        expect(result.ok).toBe(true);
        if (result.ok) {
          expect(result.schemaId).toBe(id);
          expect(result.body.equals(Buffer.from(bytes))).toBe(true);
        }
      }),
    );
  });

  it('refuses ids no registry hands out', () => {
    for (const bad of [-1, MAX_SCHEMA_ID + 1, 1.5, Number.NaN]) {
      expect(() => frameConfluent(bad, Buffer.alloc(1))).toThrow(new RangeError(`schema id ${bad} is not an integer in 0..${MAX_SCHEMA_ID}`));
    }
  });

  it('is told apart from single-object encoding and JSON by its first byte', () => {
    expect(isConfluentFramed(frameConfluent(7, encodeTelemetry(telemetry)))).toBe(true);
    expect(isConfluentFramed(encodeTelemetrySingleObject(telemetry))).toBe(false);
    expect(isConfluentFramed(Buffer.from('{"container_id":"C01"}'))).toBe(false);
    expect(isConfluentFramed(Buffer.from([0, 0, 0]))).toBe(false);
  });

  it('reports a wrong magic byte, a short header and an id out of range', () => {
    expect(unframeConfluent(Buffer.alloc(0))).toEqual({ ok: false, detail: 'expected the Confluent magic byte 00, got an empty buffer' });
    expect(unframeConfluent(encodeTelemetrySingleObject(telemetry))).toEqual({ ok: false, detail: 'expected the Confluent magic byte 00, got c3' });
    expect(unframeConfluent(Buffer.from([0, 0, 1]))).toEqual({ ok: false, detail: 'Confluent header is 5 bytes (magic byte and schema id), got 3' });
    expect(unframeConfluent(Buffer.from([0, 0xff, 0xff, 0xff, 0xff]))).toEqual({ ok: false, detail: `schema id 4294967295 is out of range 0..${MAX_SCHEMA_ID}` });
  });

  it('accepts a record with an empty body', () => {
    expect(unframeConfluent(Buffer.from([0, 0, 0, 0, 9]))).toMatchObject({ ok: true, schemaId: 9, body: Buffer.alloc(0) });
  });
});
