import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  TELEMETRY_FINGERPRINT,
  TELEMETRY_SCHEMA_VERSIONS,
  decodeSingleObject,
  decodeTelemetryAnyVersion,
  decodeTelemetryWithWriterSchema,
  encodeTelemetryBody,
  encodeTelemetrySingleObject,
  encodeTelemetryVersionSingleObject,
  telemetryVersionOf,
} from '../../schemas/avro.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { TELEMETRY_VERSIONS, type ReeferTelemetryV2 } from '../../schemas/reefer-telemetry-v2.js';

const schemasDir = new URL('../../schemas/', import.meta.url);

const v1Record: ReeferTelemetry = {
  container_id: 'C07',
  measurement_time: Date.UTC(2026, 2, 1, 8, 30),
  product_id: 'P02',
  temperature: 6.4,
  target_temperature: 6,
  ambient_temperature: 24.1,
  kilowatts: 2.9,
  time_door_open: 0,
  content_type: 2,
  defrost_cycle: 4,
  oxygen_level: 20.8,
  nitrogen_level: 78.1,
  humidity_level: 60.2,
  carbon_dioxide_level: 3.9,
  fan_1: true,
  fan_2: true,
  fan_3: null,
  latitude: 1.26,
  longitude: 103.84,
  maintenance_required: false,
  gateway_id: 'gw-yard-2',
  seq: 90_001,
  transport: 'serial',
  received_time: Date.UTC(2026, 2, 1, 8, 30, 2),
};

const v2Record: ReeferTelemetryV2 = { ...v1Record, lane: 'alarm', replayed: true, failure_label: 'poweroff' };

const V2_ADDED = { lane: 'routine', replayed: false, failure_label: null } as const;

function withoutV2Fields(r: ReeferTelemetryV2): ReeferTelemetry {
  const { lane: _lane, replayed: _replayed, failure_label: _label, ...rest } = r;
  return rest;
}

describe('ReeferTelemetry version 2', () => {
  it('keeps every version 1 field as it was and only appends fields that have defaults', () => {
    const v1 = TELEMETRY_SCHEMA_VERSIONS[1].schema;
    const v2 = TELEMETRY_SCHEMA_VERSIONS[2].schema;
    expect(v2.name).toBe(v1.name);
    expect(v2.namespace).toBe(v1.namespace);
    expect(v2.fields.slice(0, v1.fields.length)).toEqual(v1.fields);
    const added = v2.fields.slice(v1.fields.length);
    expect(added.map((f) => [f.name, f.default])).toEqual(Object.entries(V2_ADDED));
  });

  it('has a fingerprint of its own, documented in schemas/README.md', () => {
    const v2 = TELEMETRY_SCHEMA_VERSIONS[2].fingerprint;
    expect(v2.equals(TELEMETRY_FINGERPRINT)).toBe(false);
    expect(TELEMETRY_SCHEMA_VERSIONS[1].fingerprint.equals(TELEMETRY_FINGERPRINT)).toBe(true);
    const readme = readFileSync(new URL('README.md', schemasDir), 'utf8');
    expect(readme).toContain(v2.toString('hex').replace(/(..)(?!$)/g, '$1 '));
  });

  it('is one of a version table that lists every reefer-telemetry .avsc file in schemas/', () => {
    const files = readdirSync(schemasDir).filter((f) => /^reefer-telemetry(\.v\d+)?\.avsc$/.test(f));
    expect(TELEMETRY_VERSIONS.map((v) => TELEMETRY_SCHEMA_VERSIONS[v].file).sort()).toEqual(files.sort());
    for (const v of TELEMETRY_VERSIONS) {
      const text = readFileSync(new URL(TELEMETRY_SCHEMA_VERSIONS[v].file, schemasDir), 'utf8');
      expect(telemetryVersionOf(text)).toBe(v);
    }
  });

  it('recognises a version by its fields, not its documentation', () => {
    const v2 = TELEMETRY_SCHEMA_VERSIONS[2].schema;
    const redocumented = { ...v2, doc: 'other words', fields: v2.fields.map((f) => ({ ...f, doc: 'x' })) };
    expect(telemetryVersionOf(redocumented)).toBe(2);
    expect(telemetryVersionOf({ ...v2, fields: v2.fields.slice(0, -1) })).toBeUndefined();
    expect(telemetryVersionOf('not json')).toBeUndefined();
  });
});

describe('reading across versions through single-object encoding', () => {
  it('a version 1 reader reads a version 2 record, leaving the added fields out', () => {
    const result = decodeTelemetryAnyVersion(encodeTelemetryVersionSingleObject(v2Record, 2), 1);
    expect(result).toMatchObject({ ok: true, writerVersion: 2 });
    if (result.ok) expect({ ...result.value }).toEqual(v1Record);
  });

  it('a version 2 reader reads a version 1 record, filling the added fields with their defaults', () => {
    const result = decodeTelemetryAnyVersion(encodeTelemetrySingleObject(v1Record), 2);
    expect(result).toMatchObject({ ok: true, writerVersion: 1 });
    if (result.ok) expect({ ...result.value }).toEqual({ ...v1Record, ...V2_ADDED });
  });

  it('each version reads its own records unchanged', () => {
    const one = decodeTelemetryAnyVersion(encodeTelemetryVersionSingleObject(v1Record, 1), 1);
    const two = decodeTelemetryAnyVersion(encodeTelemetryVersionSingleObject(v2Record, 2), 2);
    expect(one.ok && { ...one.value }).toEqual(v1Record);
    expect(two.ok && { ...two.value }).toEqual(v2Record);
  });

  it('one consumer decodes a topic fed by a version 1 and a version 2 gateway alike', () => {
    const topic = [
      encodeTelemetrySingleObject({ ...v1Record, seq: 1 }),
      encodeTelemetryVersionSingleObject({ ...v2Record, seq: 2 }, 2),
      encodeTelemetryVersionSingleObject({ ...v2Record, seq: 3, lane: 'routine', replayed: false, failure_label: null }, 2),
      encodeTelemetrySingleObject({ ...v1Record, seq: 4 }),
    ];
    const asV2 = topic.map((value) => decodeTelemetryAnyVersion(value, 2));
    expect(asV2.map((r) => (r.ok ? [r.writerVersion, r.value.seq, r.value.lane, r.value.replayed] : r.detail))).toEqual([
      [1, 1, 'routine', false],
      [2, 2, 'alarm', true],
      [2, 3, 'routine', false],
      [1, 4, 'routine', false],
    ]);
  });

  it('keeps decodeSingleObject working for version 1 consumers when a version 2 record arrives', () => {
    const result = decodeSingleObject(encodeTelemetryVersionSingleObject(v2Record, 2));
    expect(result).toMatchObject({ ok: true, schema: 'ReeferTelemetry' });
    if (result.ok) expect({ ...result.value }).toEqual(v1Record);
  });

  it('reports an unknown fingerprint with every known version, and a damaged body with both versions', () => {
    const framed = Buffer.from(encodeTelemetryVersionSingleObject(v2Record, 2));
    framed[5] = (framed[5] as number) ^ 0xff;
    const unknown = decodeTelemetryAnyVersion(framed, 2);
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) {
      expect(unknown.detail).toContain(`unknown schema fingerprint ${framed.subarray(2, 10).toString('hex')}`);
      for (const v of TELEMETRY_VERSIONS) expect(unknown.detail).toContain(`${TELEMETRY_SCHEMA_VERSIONS[v].fingerprint.toString('hex')} (ReeferTelemetry v${v})`);
    }
    const cut = encodeTelemetryVersionSingleObject(v2Record, 2);
    expect(decodeTelemetryAnyVersion(cut.subarray(0, cut.length - 2), 1)).toEqual({
      ok: false,
      detail: `${cut.length - 12}-byte body is not a valid ReeferTelemetry (written as v2, read as v1): truncated buffer`,
    });
    expect(decodeTelemetryAnyVersion(Buffer.from([0, 0, 0, 0, 1]), 2)).toEqual({ ok: false, detail: 'expected the single-object marker c3 01, got 0000' });
  });

  it('holds for any record: version 1 reads the version 1 part of a version 2 record, version 2 reads a version 1 record plus defaults', () => {
    const nullable = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
    const double = fc.double({ noNaN: true, noDefaultInfinity: true });
    const v2 = fc.record({
      container_id: fc.string({ minLength: 1, maxLength: 12 }),
      measurement_time: fc.integer({ min: 0, max: 2 ** 45 }),
      product_id: nullable(fc.string({ maxLength: 4 })),
      temperature: double,
      target_temperature: nullable(double),
      ambient_temperature: nullable(double),
      kilowatts: nullable(double),
      time_door_open: nullable(double),
      content_type: nullable(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
      defrost_cycle: nullable(fc.integer({ min: 0, max: 1000 })),
      oxygen_level: nullable(double),
      nitrogen_level: nullable(double),
      humidity_level: nullable(double),
      carbon_dioxide_level: nullable(double),
      fan_1: nullable(fc.boolean()),
      fan_2: nullable(fc.boolean()),
      fan_3: nullable(fc.boolean()),
      latitude: nullable(double),
      longitude: nullable(double),
      maintenance_required: nullable(fc.boolean()),
      gateway_id: fc.string({ maxLength: 12 }),
      seq: fc.integer({ min: 0, max: 2 ** 52 }),
      transport: fc.constantFrom('mqtt' as const, 'serial' as const, 'upstream' as const),
      received_time: fc.integer({ min: 0, max: 2 ** 45 }),
      lane: fc.constantFrom('routine' as const, 'alarm' as const),
      replayed: fc.boolean(),
      failure_label: nullable(fc.constantFrom('none', 'poweroff', 'co2sensor', 'o2sensor', 'temperature', 'tempgrowth')),
    });
    fc.assert(
      fc.property(v2, (record) => {
        const old = withoutV2Fields(record);
        const down = decodeTelemetryAnyVersion(encodeTelemetryVersionSingleObject(record, 2), 1);
        const up = decodeTelemetryAnyVersion(encodeTelemetryVersionSingleObject(old, 1), 2);
        expect(down.ok && { ...down.value }).toEqual(old);
        expect(up.ok && { ...up.value }).toEqual({ ...old, ...V2_ADDED });
      }),
      { numRuns: 300 },
    );
  });
});

describe('reading with a writer schema from a registry', () => {
  it('resolves a committed version given as the text a registry returns', () => {
    const text = readFileSync(new URL('reefer-telemetry.v2.avsc', schemasDir), 'utf8');
    const result = decodeTelemetryWithWriterSchema(encodeTelemetryBody(v2Record, 2), text, 1);
    expect(result).toMatchObject({ ok: true, writerVersion: 2 });
    if (result.ok) expect({ ...result.value }).toEqual(v1Record);
  });

  it('reads a record from a gateway newer than this build, whose schema it does not ship', () => {
    const v2 = TELEMETRY_SCHEMA_VERSIONS[2].schema;
    const v3 = { ...v2, fields: [...v2.fields, { name: 'door_sensor', type: ['null', 'boolean'], default: null }] };
    // The v3 body is the v2 body followed by the new field's union branch (1 = boolean) and value.
    const body = Buffer.concat([encodeTelemetryBody(v2Record, 2), Buffer.from([0x02, 0x01])]);
    const result = decodeTelemetryWithWriterSchema(body, JSON.stringify(v3), 2);
    expect(result).toMatchObject({ ok: true, writerVersion: null });
    if (result.ok) expect({ ...result.value }).toEqual(v2Record);
  });

  it('reports a writer schema that does not resolve, or is no schema at all', () => {
    const v1 = TELEMETRY_SCHEMA_VERSIONS[1].schema;
    const changed = { ...v1, fields: v1.fields.map((f) => (f.name === 'seq' ? { ...f, type: 'string' } : f)) };
    const result = decodeTelemetryWithWriterSchema(Buffer.alloc(0), changed, 2);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.detail).toMatch(/^ReeferTelemetry \(written as schema [0-9a-f]{16}, read as v2\): the versions do not resolve: cannot read "string" as "long"/);
    expect(decodeTelemetryWithWriterSchema(Buffer.alloc(0), '{"type": "record"', 2)).toMatchObject({ ok: false, detail: expect.stringMatching(/^writer schema is not a valid Avro schema/) });
  });
});
