import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TELEMETRY_SCHEMA_VERSIONS } from '../../schemas/avro.js';
import { SchemaCompatibilityError, assertCompatible, checkCompatibility } from '../../schemas/compatibility.js';

const schemasDir = new URL('../../schemas/', import.meta.url);
const v1 = TELEMETRY_SCHEMA_VERSIONS[1].schema;
const v2 = TELEMETRY_SCHEMA_VERSIONS[2].schema;

type Field = (typeof v1.fields)[number];
function editFields(edit: (fields: Field[]) => Field[]) {
  return { ...v1, fields: edit(v1.fields.map((f) => ({ ...f }))) };
}
const FIELD = 'reeferedge.ReeferTelemetry';

function failure(fn: () => unknown): SchemaCompatibilityError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SchemaCompatibilityError) return err;
    throw err;
  }
  throw new Error('expected a SchemaCompatibilityError');
}

describe('checkCompatibility', () => {
  it('finds version 1 and version 2 fully compatible, in both orders', () => {
    expect(checkCompatibility(v1, v2)).toEqual({ backward: null, forward: null, level: 'full' });
    expect(checkCompatibility(v2, v1)).toEqual({ backward: null, forward: null, level: 'full' });
    expect(assertCompatible(v1, v2, 'full').level).toBe('full');
  });

  it('removing a field that has no default breaks forward compatibility and names the field', () => {
    const next = editFields((fields) => fields.filter((f) => f.name !== 'seq'));
    const report = checkCompatibility(v1, next);
    expect(report.backward).toBeNull();
    expect(report.level).toBe('backward');
    expect(report.forward).toBe(`field ${FIELD}.seq has no default in the reader and the writer has no field seq: add a default, or an alias naming the writer's field`);
    const err = failure(() => assertCompatible(v1, next, 'full', { previous: 'v1', next: 'v2' }));
    expect(err.message).toBe(`v2 is not full compatible with v1; forward: v1 cannot read data written with v2: ${report.forward}`);
    expect(err).toMatchObject({ code: 'REEFER_SCHEMA_INCOMPATIBLE', retriable: false, required: 'full' });
    expect(() => assertCompatible(v1, next, 'backward')).not.toThrow();
  });

  it('removing an optional field with a default stays fully compatible', () => {
    const next = editFields((fields) => fields.filter((f) => f.name !== 'humidity_level'));
    expect(checkCompatibility(v1, next).level).toBe('full');
  });

  it('changing a type from double to string breaks both directions and names the field and both types', () => {
    const next = editFields((fields) => fields.map((f) => (f.name === 'temperature' ? { ...f, type: 'string' } : f)));
    const report = checkCompatibility(v1, next);
    expect(report.level).toBe('none');
    expect(report.backward).toBe(`field ${FIELD}.temperature: the writer's type "double" cannot be read as the reader's "string" (cannot read "double" as "string")`);
    expect(report.forward).toBe(`field ${FIELD}.temperature: the writer's type "string" cannot be read as the reader's "double" (cannot read "string" as "double")`);
    const err = failure(() => assertCompatible(v1, next, 'forward'));
    expect(err.message).toContain('forward: the previous schema cannot read data written with the new schema: field reeferedge.ReeferTelemetry.temperature');
    expect(err.message).not.toContain('backward:');
  });

  it('changing the branch type of an optional field names it with both unions', () => {
    const next = editFields((fields) => fields.map((f) => (f.name === 'latitude' ? { ...f, type: ['null', 'string'] } : f)));
    expect(checkCompatibility(v1, next).backward).toBe(
      `field ${FIELD}.latitude: the writer's type ["null","double"] cannot be read as the reader's ["null","string"] (cannot read "double" as ["null","string"])`,
    );
  });

  it('renaming a field without an alias breaks backward compatibility; with an alias the new reader reads old data', () => {
    const renamed = editFields((fields) => fields.map((f) => (f.name === 'gateway_id' ? { ...f, name: 'gateway' } : f)));
    const report = checkCompatibility(v1, renamed);
    expect(report.backward).toBe(`field ${FIELD}.gateway has no default in the reader and the writer has no field gateway: add a default, or an alias naming the writer's field`);
    expect(report.forward).toContain(`field ${FIELD}.gateway_id has no default`);

    const aliased = editFields((fields) => fields.map((f) => (f.name === 'gateway_id' ? { ...f, name: 'gateway', aliases: ['gateway_id'] } : f)));
    const withAlias = checkCompatibility(v1, aliased);
    expect(withAlias.backward).toBeNull();
    // Aliases are read by readers only: the old reader still looks for gateway_id.
    expect(withAlias.level).toBe('backward');
  });

  it('adding a field without a default breaks backward compatibility', () => {
    const next = editFields((fields) => [...fields, { name: 'door_sensor', type: 'boolean' } as Field]);
    expect(checkCompatibility(v1, next)).toMatchObject({ level: 'forward', backward: expect.stringContaining(`field ${FIELD}.door_sensor has no default`) });
  });

  it('widening int to long is backward compatible only', () => {
    const next = editFields((fields) => fields.map((f) => (f.name === 'defrost_cycle' ? { ...f, type: ['null', 'long'] } : f)));
    const report = checkCompatibility(v1, next);
    expect(report.level).toBe('backward');
    expect(report.forward).toContain(`field ${FIELD}.defrost_cycle: the writer's type ["null","long"] cannot be read as the reader's ["null","int"]`);
  });

  it('renaming the record without an alias breaks both directions', () => {
    const next = { ...v1, name: 'ReeferReadingRecord' };
    const report = checkCompatibility(v1, next);
    expect(report.level).toBe('none');
    expect(report.backward).toBe("reeferedge.ReeferReadingRecord: the reader's record reeferedge.ReeferReadingRecord has no alias for the writer's reeferedge.ReeferTelemetry");
  });

  it('names the path of a field inside a nested record', () => {
    const location = (lat: string) => ({ type: 'record', name: 'Position', fields: [{ name: 'lat', type: lat }] });
    const before = { type: 'record', name: 'Outer', namespace: 'x', fields: [{ name: 'where', type: location('double') }] };
    const after = { type: 'record', name: 'Outer', namespace: 'x', fields: [{ name: 'where', type: location('boolean') }] };
    expect(checkCompatibility(before, after).backward).toBe(`field x.Outer.where.lat: the writer's type "double" cannot be read as the reader's "boolean" (cannot read "double" as "boolean")`);
  });
});

describe('the committed ReeferTelemetry versions', () => {
  const files = readdirSync(schemasDir)
    .map((file) => ({ file, match: /^reefer-telemetry(?:\.v(\d+))?\.avsc$/.exec(file) }))
    .filter((f) => f.match !== null)
    .map(({ file, match }) => ({ file, version: Number(match?.[1] ?? 1), schema: JSON.parse(readFileSync(new URL(file, schemasDir), 'utf8')) as unknown }))
    .sort((a, b) => a.version - b.version);

  it('are numbered 1, 2, … without gaps', () => {
    expect(files.map((f) => f.version)).toEqual(files.map((_, i) => i + 1));
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  it('are each fully compatible with the one before, so gateways and consumers can upgrade in any order', () => {
    for (let i = 1; i < files.length; i++) {
      const previous = files[i - 1]!;
      const next = files[i]!;
      expect(() => assertCompatible(previous.schema, next.schema, 'full', { previous: previous.file, next: next.file })).not.toThrow();
    }
  });

  it('are fully compatible with every earlier version too, for consumers that skip versions', () => {
    for (let i = 0; i < files.length; i++) {
      for (let j = i + 1; j < files.length; j++) {
        expect(checkCompatibility(files[i]!.schema, files[j]!.schema).level, `${files[i]!.file} → ${files[j]!.file}`).toBe('full');
      }
    }
  });
});
