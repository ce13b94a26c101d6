import { describe, expect, it } from 'vitest';
import { decodeTelemetry, encodeTelemetry } from '../../schemas/avro.js';
import type { ReeferReading, ReeferTelemetry, Transport } from '../../schemas/reefer-reading.js';
import { encodeStoredReading, isCompactReading, storedTelemetryBody } from '../../gateway/outbox/stored-reading.js';
import { REFERENCE_READING, sampleReading, sparseReading } from '../harness/reference-reading.js';

const GATEWAY = 'gw-ship-7';

function telemetryOf(r: ReeferReading, seq: number, transport: Transport, receivedMs: number): ReeferTelemetry {
  return { ...r, gateway_id: GATEWAY, seq, transport, received_time: receivedMs };
}

/** Field by field with Object.is, so -0 against 0 or a last-bit difference in a double fails. */
function expectIdentical(actual: ReeferTelemetry, expected: ReeferTelemetry): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const key of Object.keys(expected) as (keyof ReeferTelemetry)[]) {
    if (!Object.is(actual[key], expected[key])) throw new Error(`${key}: stored ${String(actual[key])}, expected ${String(expected[key])}`);
  }
}

function roundTrip(r: ReeferReading, transport: Transport = 'mqtt', receivedMs = r.measurement_time + 40): Buffer {
  const value = encodeStoredReading(r, transport, receivedMs);
  const row = { seq: 17, containerId: r.container_id, receivedMs };
  const expected = telemetryOf(r, 17, transport, receivedMs);
  const body = storedTelemetryBody({ ...row, value }, GATEWAY);
  expectIdentical(decodeTelemetry(body), expected);
  // What goes to Kafka is byte for byte the Avro body the record encodes to.
  expect(body.equals(encodeTelemetry(expected))).toBe(true);
  return value;
}

/** A deterministic generator, so a failure names a reproducible case. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('the stored form of a reading', () => {
  it('reads back the reference reading exactly, in a fraction of its Avro size', () => {
    const value = roundTrip({ ...REFERENCE_READING });
    const avro = encodeTelemetry(telemetryOf({ ...REFERENCE_READING }, 17, 'mqtt', REFERENCE_READING.measurement_time + 40));
    expect(value.length).toBeLessThanOrEqual(36);
    expect(avro.length).toBeGreaterThan(3 * value.length);
  });

  it('keeps nulls, every transport, and a device clock ahead of the gateway', () => {
    const sparse = sparseReading({ fan_2: false, maintenance_required: true });
    for (const transport of ['mqtt', 'serial', 'upstream'] as const) roundTrip(sparse, transport);
    roundTrip(sampleReading(), 'serial', sampleReading().measurement_time - 3_600_000);
    roundTrip(sampleReading(), 'upstream', sampleReading().measurement_time + 30 * 24 * 3_600_000);
  });

  it('keeps values no decimal holds: -0, thirds, extremes, long fractions', () => {
    const awkward = [-0, 1 / 3, 0.1 + 0.2, Number.MAX_VALUE, -Number.MIN_VALUE, 2 ** 60, -(2 ** 53), 123456.1234567, 1e-7, 79.99999999];
    for (const v of awkward) {
      roundTrip(sampleReading({ temperature: v, latitude: v, carbon_dioxide_level: v }));
    }
    roundTrip(sampleReading({ content_type: -(2 ** 31), defrost_cycle: 2 ** 31 - 1, product_id: 'Prodüct ✓ '.repeat(40) }));
    // Container ids short and ASCII (the usual), long, and not ASCII.
    for (const container_id of ['MSCU1234567', 'C'.repeat(64), 'C'.repeat(65), 'Kühl-7', '集装箱-1'.repeat(12)]) roundTrip(sampleReading({ container_id }));
  });

  it('reads back thousands of generated readings exactly', () => {
    const random = lcg(20261127);
    const pick = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)]!;
    const number = (): number | null => {
      switch (Math.floor(random() * 5)) {
        case 0:
          return null;
        case 1:
          return Math.round((random() - 0.5) * 20000) / 100;
        case 2:
          return Math.round((random() - 0.5) * 2e6) / 10 ** Math.floor(random() * 7);
        case 3:
          return (random() - 0.5) * 10 ** Math.floor(random() * 12);
        default:
          return Math.floor(random() * 100);
      }
    };
    for (let i = 0; i < 5000; i += 1) {
      const r: ReeferReading = {
        container_id: `C${i}`,
        measurement_time: Date.UTC(2026, 0, 1) + Math.floor(random() * 1e10),
        product_id: pick([null, 'P01', 'P05', '', 'Pé']),
        temperature: number() ?? 4,
        target_temperature: number(),
        ambient_temperature: number(),
        kilowatts: number(),
        time_door_open: number(),
        content_type: pick([null, 1, 2, -7, 300000]),
        defrost_cycle: pick([null, 0, 5, 2 ** 31 - 1]),
        oxygen_level: number(),
        nitrogen_level: number(),
        humidity_level: number(),
        carbon_dioxide_level: number(),
        fan_1: pick([null, true, false]),
        fan_2: pick([null, true, false]),
        fan_3: pick([null, true, false]),
        latitude: number(),
        longitude: number(),
        maintenance_required: pick([null, true, false]),
      };
      roundTrip(r, pick(['mqtt', 'serial', 'upstream'] as const), r.measurement_time + Math.floor((random() - 0.2) * 1e8));
    }
  });

  it('tells Avro bodies written by older gateways apart and sends them as they are', () => {
    for (let length = 1; length <= 200; length += 1) {
      const old = encodeTelemetry(telemetryOf(sampleReading({ container_id: 'C'.repeat(length) }), 3, 'mqtt', 1));
      expect(isCompactReading(old)).toBe(false);
      expect(storedTelemetryBody({ seq: 3, containerId: 'ignored', receivedMs: 2, value: old }, 'another-gateway')).toBe(old);
      expect(decodeTelemetry(old).container_id).toHaveLength(length);
    }
    expect(isCompactReading(encodeStoredReading(sampleReading(), 'mqtt', 1))).toBe(true);
  });

  it('refuses a damaged value with the row it came from', () => {
    const value = encodeStoredReading(sampleReading(), 'mqtt', sampleReading().measurement_time);
    const row = { seq: 99, containerId: 'C01', receivedMs: 1 };
    const body = (v: Buffer) => storedTelemetryBody({ ...row, value: v }, GATEWAY);
    expect(() => body(value.subarray(0, value.length - 1))).toThrow(/outbox row 99: truncated value/);
    const badKind = Buffer.from(value);
    badKind[badKind.length - 12] = 0xff;
    expect(() => body(badKind)).toThrow(/outbox row 99/);
    expect(() => body(Buffer.alloc(12, 0).fill(0x07, 0, 1))).toThrow(/outbox row 99: unknown transport code 3/);
    expect(() => body(Buffer.from([0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/outbox row 99: no temperature/);
  });
});
