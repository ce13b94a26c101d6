import { encodeReadingSingleObject } from '../schemas/avro.js';
import { REFERENCE_COLUMNS, type ReeferReading } from '../schemas/reefer-reading.js';

/** The payloads a device can publish, as the gateway's MQTT contract accepts them. */
export const PAYLOAD_FORMS = ['canonical-json', 'envelope-object', 'envelope-tuple', 'avro'] as const;
export type PayloadForm = (typeof PAYLOAD_FORMS)[number];

export function isPayloadForm(value: string): value is PayloadForm {
  return (PAYLOAD_FORMS as readonly string[]).includes(value);
}

/** The MQTT topic a container publishes its readings to. */
export function telemetryTopic(containerId: string): string {
  return `reefer/${containerId}/telemetry`;
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, the reference's zone-less timestamp (whole seconds). */
export function formatReferenceTime(timeMs: number): string {
  return new Date(timeMs).toISOString().slice(0, 19).replace('T', ' ');
}

// The reference spells some fields differently from the canonical record.
const REFERENCE_NAMES: Partial<Record<keyof ReeferReading, string>> = {
  ambient_temperature: 'ambiant_temperature',
  fan_1: 'vent_1',
  fan_2: 'vent_2',
  fan_3: 'vent_3',
};

type ReferenceValue = string | number | boolean | null;

/** A reading's values as the reference sends them: coordinates as strings, maintenance as 0/1. */
function referenceValue(reading: ReeferReading, column: keyof ReeferReading): ReferenceValue {
  const value = reading[column];
  if (value === null) return null;
  switch (column) {
    case 'measurement_time':
      return formatReferenceTime(value as number);
    case 'latitude':
    case 'longitude':
      return String(value);
    case 'maintenance_required':
      return value ? 1 : 0;
    default:
      return value;
  }
}

// Columns the reference writes as Python floats (with a decimal point), the rest being ints.
const FLOAT_COLUMNS: ReadonlySet<keyof ReeferReading> = new Set([
  'temperature',
  'target_temperature',
  'ambient_temperature',
  'kilowatts',
  'oxygen_level',
  'nitrogen_level',
  'humidity_level',
  'carbon_dioxide_level',
]);

function pythonString(s: string): string {
  // Python's repr: single quotes unless the text holds one and no double quote.
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const escaped = s.replace(/\\/g, '\\\\').replace(quote === "'" ? /'/g : /"/g, `\\${quote}`);
  return `${quote}${escaped}${quote}`;
}

function pythonFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${Object.is(x, -0) ? '-0' : x}.0`;
  return String(x);
}

function pythonLiteral(value: ReferenceValue, column: keyof ReeferReading): string {
  if (value === null) return 'None';
  if (typeof value === 'string') return pythonString(value);
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  // time_door_open is 0 in the reference rows; a fractional value keeps its decimals.
  if (FLOAT_COLUMNS.has(column) || !Number.isInteger(value)) return pythonFloat(value);
  return String(value);
}

/** The reading as the reference's tuple string: the 20 values in reference column order. */
export function referenceTuple(reading: ReeferReading): string {
  const values = REFERENCE_COLUMNS.map((c) => pythonLiteral(referenceValue(reading, c), c));
  return `(${values.join(', ')})`;
}

function referenceObject(reading: ReeferReading): Record<string, ReferenceValue> {
  const out: Record<string, ReferenceValue> = {};
  for (const c of REFERENCE_COLUMNS) out[REFERENCE_NAMES[c] ?? c] = referenceValue(reading, c);
  return out;
}

function envelope(reading: ReeferReading, payload: unknown): Buffer {
  return Buffer.from(
    JSON.stringify({
      containerID: reading.container_id,
      timestamp: formatReferenceTime(reading.measurement_time),
      type: 'ReeferTelemetries',
      payload,
    }),
  );
}

/** Encodes a reading as a device would publish it in the given form. */
export function encodePayload(reading: ReeferReading, form: PayloadForm): Buffer {
  switch (form) {
    case 'canonical-json': {
      const out: Record<string, unknown> = {};
      for (const c of REFERENCE_COLUMNS) out[c] = reading[c];
      out.measurement_time = new Date(reading.measurement_time).toISOString();
      return Buffer.from(JSON.stringify(out));
    }
    case 'envelope-object':
      return envelope(reading, referenceObject(reading));
    case 'envelope-tuple':
      return envelope(reading, referenceTuple(reading));
    case 'avro':
      return encodeReadingSingleObject(reading);
  }
}
