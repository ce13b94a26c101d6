import { describe, expect, it } from 'vitest';
import {
  encodePayload,
  formatReferenceTime,
  PAYLOAD_FORMS,
  referenceTuple,
  telemetryTopic,
} from '../../device-sim/payload-forms.js';
import { encodeReadingSingleObject, SINGLE_OBJECT_MAGIC } from '../../schemas/avro.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';

const reading: ReeferReading = { ...REFERENCE_READING };

const json = (b: Buffer): unknown => JSON.parse(b.toString('utf8'));

describe('telemetryTopic', () => {
  it('puts the container id in the middle level of reefer/<id>/telemetry', () => {
    expect(telemetryTopic('C0042')).toBe('reefer/C0042/telemetry');
  });
});

describe('formatReferenceTime', () => {
  it('writes UTC as YYYY-MM-DD HH:MM:SS without a zone or milliseconds', () => {
    expect(formatReferenceTime(Date.UTC(2020, 0, 15, 17, 59, 45, 678))).toBe('2020-01-15 17:59:45');
  });
});

describe('encodePayload', () => {
  it('offers exactly the four forms the gateway accepts', () => {
    expect([...PAYLOAD_FORMS]).toEqual(['canonical-json', 'envelope-object', 'envelope-tuple', 'avro']);
  });

  it('canonical-json: one object with the canonical field names and an ISO 8601 UTC time', () => {
    const body = encodePayload(reading, 'canonical-json');
    expect(json(body)).toEqual({ ...reading, measurement_time: '2020-01-15T17:59:45.000Z' });
    expect(Object.keys(json(body) as object)[0]).toBe('container_id');
  });

  it('envelope-object: the reference envelope with reference field names and value types', () => {
    expect(json(encodePayload(reading, 'envelope-object'))).toEqual({
      containerID: 'C01',
      timestamp: '2020-01-15 17:59:45',
      type: 'ReeferTelemetries',
      payload: {
        container_id: 'C01',
        measurement_time: '2020-01-15 17:59:45',
        product_id: 'P05',
        temperature: 5.02,
        target_temperature: 5,
        ambiant_temperature: 20.5,
        kilowatts: 2.6,
        time_door_open: 0,
        content_type: 1,
        defrost_cycle: 5,
        oxygen_level: 21.5,
        nitrogen_level: 75.9,
        humidity_level: 39.8,
        carbon_dioxide_level: 4.7,
        vent_1: true,
        vent_2: true,
        vent_3: true,
        latitude: '37.82',
        longitude: '-122.32',
        maintenance_required: 0,
      },
    });
  });

  it('envelope-tuple: the payload is the reference tuple string, character for character', () => {
    expect(json(encodePayload(reading, 'envelope-tuple'))).toEqual({
      containerID: 'C01',
      timestamp: '2020-01-15 17:59:45',
      type: 'ReeferTelemetries',
      payload:
        "('C01', '2020-01-15 17:59:45', 'P05', 5.02, 5.0, 20.5, 2.6, 0, 1, 5, 21.5, 75.9, 39.8, 4.7, True, True, True, '37.82', '-122.32', 0)",
    });
  });

  it('envelope keys come in the reference order: containerID, timestamp, type, payload', () => {
    expect(Object.keys(json(encodePayload(reading, 'envelope-tuple')) as object)).toEqual([
      'containerID',
      'timestamp',
      'type',
      'payload',
    ]);
  });

  it('avro: the single-object encoding of the reading', () => {
    const body = encodePayload(reading, 'avro');
    expect(body.subarray(0, 2)).toEqual(SINGLE_OBJECT_MAGIC);
    expect(body).toEqual(encodeReadingSingleObject(reading));
  });
});

describe('referenceTuple', () => {
  it('keeps a decimal point on whole-number floats and writes ints without one', () => {
    const t = referenceTuple({ ...reading, temperature: -2, kilowatts: 0, defrost_cycle: 3, content_type: 2 });
    expect(t).toContain("'P05', -2.0, 5.0, 20.5, 0.0, 0, 2, 3, ");
  });

  it('writes a fractional door-open time as a float and maintenance as 1', () => {
    const t = referenceTuple({ ...reading, time_door_open: 3.5, maintenance_required: true });
    expect(t).toContain(', 2.6, 3.5, 1, 5, ');
    expect(t.endsWith(", '37.82', '-122.32', 1)")).toBe(true);
  });

  it('writes false as False and missing values as None', () => {
    const t = referenceTuple({ ...reading, fan_2: false, humidity_level: null, latitude: null });
    expect(t).toContain(', 75.9, None, 4.7, True, False, True, None, ');
  });

  it("quotes strings as Python does, escaping what needs it", () => {
    expect(referenceTuple({ ...reading, container_id: "C'1" })).toMatch(/^\("C'1", /);
    expect(referenceTuple({ ...reading, container_id: 'C\\1' })).toMatch(/^\('C\\\\1', /);
  });
});
