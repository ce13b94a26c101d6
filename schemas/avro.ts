/**
 * Avro encoding of the reefer records: raw bodies, and single-object framing
 * (`C3 01`, 8-byte CRC-64-AVRO fingerprint, body) for consumers without a schema registry.
 * The only module that knows which Avro library is in use.
 */
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { crc64Avro, parsingCanonicalForm } from './fingerprint.js';
import type { ReeferReading, ReeferTelemetry } from './reefer-reading.js';

/** Number of leading ReeferTelemetry fields that are sensor fields; the rest is gateway metadata. */
const SENSOR_FIELD_COUNT = 20;

/** First two bytes of every single-object encoded value [Avro spec, Single-object encoding]. */
export const SINGLE_OBJECT_MAGIC: Buffer = Buffer.from([0xc3, 0x01]);
const HEADER_BYTES = SINGLE_OBJECT_MAGIC.length + 8;

interface RecordSchema {
  type: 'record';
  name: string;
  namespace?: string;
  doc?: string;
  fields: { name: string; type: unknown; doc?: string; default?: unknown }[];
}

/**
 * The compiled output keeps the .avsc next to the sources rather than copying it into the build
 * folder, so the file is looked for beside this module first and then in the source tree.
 */
function loadTelemetrySchema(): RecordSchema {
  const candidates = [
    new URL('./reefer-telemetry.avsc', import.meta.url),
    new URL('../../schemas/reefer-telemetry.avsc', import.meta.url),
  ];
  let lastError: unknown;
  for (const url of candidates) {
    try {
      return JSON.parse(readFileSync(url, 'utf8')) as RecordSchema;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`reefer-telemetry.avsc not found beside ${import.meta.url}`, { cause: lastError });
}

/** The Avro record `reeferedge.ReeferTelemetry`, as declared in reefer-telemetry.avsc. */
export const TELEMETRY_SCHEMA: Readonly<RecordSchema> = loadTelemetrySchema();

/**
 * The Avro record `reeferedge.ReeferReading`: the sensor fields of ReeferTelemetry, for devices
 * that encode Avro themselves. Derived rather than declared twice, so the two cannot drift apart.
 */
export const READING_SCHEMA: Readonly<RecordSchema> = {
  type: 'record',
  name: 'ReeferReading',
  namespace: TELEMETRY_SCHEMA.namespace ?? 'reeferedge',
  doc: 'One reading of a refrigerated container\'s sensors, as a device encodes it: the sensor fields of ReeferTelemetry, without the gateway metadata.',
  fields: TELEMETRY_SCHEMA.fields.slice(0, SENSOR_FIELD_COUNT),
};

/*
 * No logical types are registered, so timestamp-millis stays a plain number of milliseconds;
 * unions are never wrapped, so a nullable field reads as null or its value.
 */
const TYPE_OPTIONS = { wrapUnions: 'never' } as const;
const telemetryType = avro.Type.forSchema(TELEMETRY_SCHEMA as avro.Schema, TYPE_OPTIONS);
const readingType = avro.Type.forSchema(READING_SCHEMA as avro.Schema, TYPE_OPTIONS);

/** Parsing Canonical Form of ReeferTelemetry, the text its fingerprint is taken of. */
export const TELEMETRY_CANONICAL_FORM: string = parsingCanonicalForm(TELEMETRY_SCHEMA);
/** Parsing Canonical Form of ReeferReading. */
export const READING_CANONICAL_FORM: string = parsingCanonicalForm(READING_SCHEMA);

/** CRC-64-AVRO fingerprint of ReeferTelemetry, little-endian, as written after `C3 01`. */
export const TELEMETRY_FINGERPRINT: Buffer = crc64Avro(TELEMETRY_CANONICAL_FORM);
/** CRC-64-AVRO fingerprint of ReeferReading, little-endian, as written after `C3 01`. */
export const READING_FINGERPRINT: Buffer = crc64Avro(READING_CANONICAL_FORM);

const TELEMETRY_HEADER = Buffer.concat([SINGLE_OBJECT_MAGIC, TELEMETRY_FINGERPRINT]);
const READING_HEADER = Buffer.concat([SINGLE_OBJECT_MAGIC, READING_FINGERPRINT]);

/**
 * Avro binary body of a telemetry record, without framing. Throws on a value that does not fit
 * the schema: readings are validated before they get here, so that is a defect, not bad input.
 */
export function encodeTelemetry(t: ReeferTelemetry): Buffer {
  return telemetryType.toBuffer(t);
}

/** Decodes a raw ReeferTelemetry body. Throws on a truncated, overlong or corrupt body. */
export function decodeTelemetry(body: Buffer): ReeferTelemetry {
  return telemetryType.fromBuffer(body) as ReeferTelemetry;
}

/** Avro binary body of a reading (sensor fields only), without framing. Throws like encodeTelemetry. */
export function encodeReading(r: ReeferReading): Buffer {
  return readingType.toBuffer(r);
}

/** Decodes a raw ReeferReading body. Throws on a truncated, overlong or corrupt body. */
export function decodeReading(body: Buffer): ReeferReading {
  return readingType.fromBuffer(body) as ReeferReading;
}

/** `C3 01` + ReeferTelemetry fingerprint + body. */
export function encodeTelemetrySingleObject(t: ReeferTelemetry): Buffer {
  return frame(TELEMETRY_HEADER, telemetryType.toBuffer(t));
}

/** `C3 01` + ReeferReading fingerprint + body. */
export function encodeReadingSingleObject(r: ReeferReading): Buffer {
  return frame(READING_HEADER, readingType.toBuffer(r));
}

function frame(header: Buffer, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(header.length + body.length);
  header.copy(out, 0);
  body.copy(out, header.length);
  return out;
}

/** True when the buffer starts with the single-object marker `C3 01`. */
export function isSingleObject(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === 0xc3 && buf[1] === 0x01;
}

export type SingleObjectDecodeResult =
  | { ok: true; schema: 'ReeferTelemetry'; value: ReeferTelemetry }
  | { ok: true; schema: 'ReeferReading'; value: ReeferReading }
  | { ok: false; detail: string };

/**
 * Decodes a single-object encoded ReeferTelemetry or ReeferReading, chosen by its fingerprint.
 * Never throws: anything that is not a complete, well-formed value of a known schema comes back
 * as `ok: false` with what was wrong.
 */
export function decodeSingleObject(buf: Buffer): SingleObjectDecodeResult {
  if (!isSingleObject(buf)) {
    return { ok: false, detail: `expected the single-object marker c3 01, got ${hexPrefix(buf, 2)}` };
  }
  if (buf.length < HEADER_BYTES) {
    return {
      ok: false,
      detail: `single-object header is ${HEADER_BYTES} bytes (marker and fingerprint), got ${buf.length}`,
    };
  }
  const fingerprint = buf.subarray(2, HEADER_BYTES);
  const body = buf.subarray(HEADER_BYTES);
  if (fingerprint.equals(READING_FINGERPRINT)) {
    try {
      return { ok: true, schema: 'ReeferReading', value: readingType.fromBuffer(body) as ReeferReading };
    } catch (err) {
      return { ok: false, detail: bodyError('ReeferReading', body, err) };
    }
  }
  if (fingerprint.equals(TELEMETRY_FINGERPRINT)) {
    try {
      return { ok: true, schema: 'ReeferTelemetry', value: telemetryType.fromBuffer(body) as ReeferTelemetry };
    } catch (err) {
      return { ok: false, detail: bodyError('ReeferTelemetry', body, err) };
    }
  }
  return {
    ok: false,
    detail:
      `unknown schema fingerprint ${fingerprint.toString('hex')}; expected ` +
      `${READING_FINGERPRINT.toString('hex')} (ReeferReading) or ${TELEMETRY_FINGERPRINT.toString('hex')} (ReeferTelemetry)`,
  };
}

function bodyError(schema: string, body: Buffer, err: unknown): string {
  const reason = err instanceof Error ? err.message : String(err);
  return `${body.length}-byte body is not a valid ${schema}: ${reason.slice(0, 120)}`;
}

function hexPrefix(buf: Buffer, bytes: number): string {
  return buf.length === 0 ? 'an empty buffer' : buf.subarray(0, bytes).toString('hex');
}

/** Frames a raw ReeferTelemetry body (as the outbox stores it) as a single object. */
export function frameTelemetryBody(body: Buffer): Buffer {
  return frame(TELEMETRY_HEADER, body);
}
