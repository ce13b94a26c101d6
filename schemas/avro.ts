/**
 * Avro encoding of the reefer records: raw bodies, and single-object framing
 * (`C3 01`, 8-byte CRC-64-AVRO fingerprint, body) for consumers without a schema registry;
 * reading one ReeferTelemetry version as another, and the resolution check compatibility.ts uses.
 * The only module that knows which Avro library is in use.
 */
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { crc64Avro, parsingCanonicalForm } from './fingerprint.js';
import type { ReeferReading, ReeferTelemetry } from './reefer-reading.js';
import { TELEMETRY_VERSIONS, type TelemetryByVersion, type TelemetryVersion } from './reefer-telemetry-v2.js';

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
function loadTelemetrySchema(file = 'reefer-telemetry.avsc'): RecordSchema {
  const candidates = [new URL(`./${file}`, import.meta.url), new URL(`../../schemas/${file}`, import.meta.url)];
  let lastError: unknown;
  for (const url of candidates) {
    try {
      return JSON.parse(readFileSync(url, 'utf8')) as RecordSchema;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`${file} not found beside ${import.meta.url}`, { cause: lastError });
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
  // A later version from a newer gateway reads as version 1, its added fields left out, so
  // consumers built against version 1 keep working while gateways upgrade one by one.
  const newer = versionByFingerprint.get(fingerprint.toString('hex'));
  if (newer !== undefined) {
    const decoded = decodeTelemetryAnyVersion(buf, 1);
    return decoded.ok ? { ok: true, schema: 'ReeferTelemetry', value: decoded.value } : decoded;
  }
  return {
    ok: false,
    detail:
      `unknown schema fingerprint ${fingerprint.toString('hex')}; expected ` +
      `${READING_FINGERPRINT.toString('hex')} (ReeferReading) or ${knownTelemetryFingerprints()}`,
  };
}

function knownTelemetryFingerprints(): string {
  return TELEMETRY_VERSIONS.map((v) => `${TELEMETRY_SCHEMA_VERSIONS[v].fingerprint.toString('hex')} (ReeferTelemetry v${v})`).join(' or ');
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

/*
 * Schema evolution. Every committed version of ReeferTelemetry is a file in schemas/; a record is
 * written with one version and read as another through an Avro resolver, so gateways on different
 * versions can feed one topic and a consumer reads every record as the version it was built for.
 */

/** One committed version of ReeferTelemetry. */
export interface TelemetrySchemaVersion {
  readonly version: TelemetryVersion;
  /** The .avsc file in schemas/. */
  readonly file: string;
  readonly schema: Readonly<RecordSchema>;
  readonly canonicalForm: string;
  /** CRC-64-AVRO, little-endian, as single-object encoding writes it. */
  readonly fingerprint: Buffer;
}

/*
 * avsc records every named type it compiles in the options object's registry, so each compilation
 * gets its own: a second ReeferTelemetry in a shared registry is a duplicate name.
 */
function freshTypeOptions(): { wrapUnions: 'never' } {
  return { wrapUnions: 'never' };
}

const TELEMETRY_SCHEMA_FILES: Readonly<Record<TelemetryVersion, string>> = {
  1: 'reefer-telemetry.avsc',
  2: 'reefer-telemetry.v2.avsc',
};

function schemaVersion(version: TelemetryVersion): TelemetrySchemaVersion {
  const file = TELEMETRY_SCHEMA_FILES[version];
  const schema = version === 1 ? TELEMETRY_SCHEMA : loadTelemetrySchema(file);
  const canonicalForm = parsingCanonicalForm(schema);
  return { version, file, schema, canonicalForm, fingerprint: crc64Avro(canonicalForm) };
}

/** Every committed version of ReeferTelemetry, by version number. */
export const TELEMETRY_SCHEMA_VERSIONS: Readonly<Record<TelemetryVersion, TelemetrySchemaVersion>> = {
  1: schemaVersion(1),
  2: schemaVersion(2),
};

/** The version single-object encoding writes when none is asked for; what the gateway sends today. */
export const TELEMETRY_WRITER_VERSION: TelemetryVersion = 1;

const versionTypes: Readonly<Record<TelemetryVersion, avro.Type>> = {
  1: telemetryType,
  2: avro.Type.forSchema(TELEMETRY_SCHEMA_VERSIONS[2].schema as avro.Schema, freshTypeOptions()),
};

const versionByFingerprint = new Map<string, TelemetryVersion>(
  TELEMETRY_VERSIONS.map((v) => [TELEMETRY_SCHEMA_VERSIONS[v].fingerprint.toString('hex'), v]),
);

const versionHeaders: Readonly<Record<TelemetryVersion, Buffer>> = {
  1: TELEMETRY_HEADER,
  2: Buffer.concat([SINGLE_OBJECT_MAGIC, TELEMETRY_SCHEMA_VERSIONS[2].fingerprint]),
};

/** The committed version whose Parsing Canonical Form matches `schema`, or undefined. */
export function telemetryVersionOf(schema: unknown): TelemetryVersion | undefined {
  let canonical: string;
  try {
    canonical = parsingCanonicalForm(typeof schema === 'string' ? JSON.parse(schema) : schema);
  } catch {
    return undefined;
  }
  return versionByFingerprint.get(crc64Avro(canonical).toString('hex'));
}

/** Avro binary body of a telemetry record written with the given version. Throws like encodeTelemetry. */
export function encodeTelemetryBody<V extends TelemetryVersion>(t: TelemetryByVersion[V], writerVersion: V): Buffer {
  return versionTypes[writerVersion].toBuffer(t);
}

/** `C3 01` + the fingerprint of the given version + body. */
export function encodeTelemetryVersionSingleObject<V extends TelemetryVersion>(t: TelemetryByVersion[V], writerVersion: V): Buffer {
  return frame(versionHeaders[writerVersion], versionTypes[writerVersion].toBuffer(t));
}

export type TelemetryDecodeResult<V extends TelemetryVersion> =
  | {
      ok: true;
      /** The committed version the record was written with; null for a schema this build does not ship. */
      writerVersion: TelemetryVersion | null;
      /** The record as the reader version sees it: fields it lacks dropped, fields it adds defaulted. */
      value: TelemetryByVersion[V];
    }
  | { ok: false; detail: string };

/*
 * Resolvers are built on first use rather than at load: an incompatible pair then fails the one
 * decode that needs it (and the compatibility tests), not every import of this module.
 */
type Resolver = ReturnType<avro.Type['createResolver']>;
const resolvers = new Map<string, Resolver>();

function resolverFor(reader: avro.Type, readerKey: string, writer: avro.Type, writerKey: string): Resolver {
  const key = `${readerKey}<${writerKey}`;
  let resolver = resolvers.get(key);
  if (!resolver) {
    resolver = reader.createResolver(writer);
    resolvers.set(key, resolver);
  }
  return resolver;
}

function readAs<V extends TelemetryVersion>(
  body: Buffer,
  writer: avro.Type,
  writerKey: string,
  writerVersion: TelemetryVersion | null,
  readerVersion: V,
): TelemetryDecodeResult<V> {
  const reader = versionTypes[readerVersion];
  const label = `ReeferTelemetry (written as ${writerVersion === null ? `schema ${writerKey}` : `v${writerVersion}`}, read as v${readerVersion})`;
  let resolver: Resolver | undefined;
  if (writerVersion !== readerVersion) {
    try {
      resolver = resolverFor(reader, `v${readerVersion}`, writer, writerKey);
    } catch (err) {
      return { ok: false, detail: `${label}: the versions do not resolve: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  try {
    return { ok: true, writerVersion, value: reader.fromBuffer(body, resolver) as TelemetryByVersion[V] };
  } catch (err) {
    return { ok: false, detail: bodyError(label, body, err) };
  }
}

/**
 * Decodes a single-object encoded ReeferTelemetry of any committed version, the writer's schema
 * picked by fingerprint, as the reader version. Never throws, like decodeSingleObject.
 */
export function decodeTelemetryAnyVersion<V extends TelemetryVersion>(buf: Buffer, readerVersion: V): TelemetryDecodeResult<V> {
  if (!isSingleObject(buf)) {
    return { ok: false, detail: `expected the single-object marker c3 01, got ${hexPrefix(buf, 2)}` };
  }
  if (buf.length < HEADER_BYTES) {
    return { ok: false, detail: `single-object header is ${HEADER_BYTES} bytes (marker and fingerprint), got ${buf.length}` };
  }
  const fingerprint = buf.subarray(2, HEADER_BYTES).toString('hex');
  const writerVersion = versionByFingerprint.get(fingerprint);
  if (writerVersion === undefined) {
    return { ok: false, detail: `unknown schema fingerprint ${fingerprint}; expected ${knownTelemetryFingerprints()}` };
  }
  return readAs(buf.subarray(HEADER_BYTES), versionTypes[writerVersion], `v${writerVersion}`, writerVersion, readerVersion);
}

/** Writer schemas met through a registry, compiled once each, by the hex fingerprint of their canonical form. */
const foreignTypes = new Map<string, avro.Type>();

/**
 * Decodes a raw ReeferTelemetry body written with `writerSchema` (parsed JSON or its text, as a
 * schema registry returns it) as the reader version. A writer schema that is no committed version
 * (a newer gateway's) is compiled and resolved all the same. Never throws.
 */
export function decodeTelemetryWithWriterSchema<V extends TelemetryVersion>(body: Buffer, writerSchema: unknown, readerVersion: V): TelemetryDecodeResult<V> {
  let parsed: unknown;
  let fingerprint: string;
  try {
    parsed = typeof writerSchema === 'string' ? JSON.parse(writerSchema) : writerSchema;
    fingerprint = crc64Avro(parsingCanonicalForm(parsed)).toString('hex');
  } catch (err) {
    return { ok: false, detail: `writer schema is not a valid Avro schema: ${err instanceof Error ? err.message : String(err)}` };
  }
  const known = versionByFingerprint.get(fingerprint);
  if (known !== undefined) return readAs(body, versionTypes[known], `v${known}`, known, readerVersion);
  let writer = foreignTypes.get(fingerprint);
  if (!writer) {
    try {
      writer = avro.Type.forSchema(parsed as avro.Schema, freshTypeOptions());
    } catch (err) {
      return { ok: false, detail: `writer schema ${fingerprint} is not a valid Avro schema: ${err instanceof Error ? err.message : String(err)}` };
    }
    foreignTypes.set(fingerprint, writer);
  }
  return readAs(body, writer, fingerprint, null, readerVersion);
}

/**
 * Why data written with `writer` cannot be read with `reader` (both parsed JSON Avro schemas), with
 * the path of the first field that fails; null when it can. The Avro library decides; this only
 * walks down the records to name where it refused, because its own message names types, not fields.
 */
export function resolutionProblem(reader: unknown, writer: unknown): string | null {
  const readerType = avro.Type.forSchema(reader as avro.Schema, freshTypeOptions());
  const writerType = avro.Type.forSchema(writer as avro.Schema, freshTypeOptions());
  try {
    readerType.createResolver(writerType);
    return null;
  } catch (err) {
    return explain(readerType, writerType, '') ?? (err instanceof Error ? err.message : String(err));
  }
}

function isRecord(t: avro.Type): t is avro.types.RecordType {
  return t.typeName === 'record' || t.typeName === 'error';
}

function describe(t: avro.Type): string {
  return JSON.stringify(t.schema({ exportAttrs: false }));
}

/** The path and reason of the first field the reader cannot resolve, or undefined if not a record mismatch. */
function explain(reader: avro.Type, writer: avro.Type, path: string): string | undefined {
  if (!isRecord(reader) || !isRecord(writer)) return undefined;
  const where = path === '' ? (reader.name ?? 'record') : path;
  const readerNames = [reader.name, ...(reader.aliases ?? [])];
  if (!readerNames.includes(writer.name)) {
    return `${where}: the reader's record ${reader.name} has no alias for the writer's ${writer.name}`;
  }
  for (const field of reader.fields) {
    const fieldPath = `${where}.${field.name}`;
    const names = [field.name, ...(field.aliases ?? [])];
    const matches = writer.fields.filter((w) => names.includes(w.name));
    if (matches.length === 0) {
      if (field.defaultValue() === undefined) {
        return `field ${fieldPath} has no default in the reader and the writer has no field ${names.join(' or ')}: add a default, or an alias naming the writer's field`;
      }
      continue;
    }
    if (matches.length > 1) {
      return `field ${fieldPath} matches several writer fields through its aliases: ${matches.map((m) => m.name).join(', ')}`;
    }
    const match = matches[0] as avro.types.Field;
    try {
      field.type.createResolver(match.type);
    } catch (err) {
      const from = match.name === field.name ? '' : ` (the writer's ${match.name})`;
      return (
        explain(field.type, match.type, fieldPath) ??
        `field ${fieldPath}${from}: the writer's type ${describe(match.type)} cannot be read as the reader's ${describe(field.type)} (${err instanceof Error ? err.message : String(err)})`
      );
    }
  }
  return undefined;
}

/** Encodes and decodes values of one Avro schema (raw binary, no framing). */
export interface AvroCodec<T> {
  encode(value: T): Buffer;
  /** Throws on a truncated, overlong or corrupt body. */
  decode(body: Buffer): T;
}

/**
 * A codec for a schema declared elsewhere (the bridge's batch format), so callers need not know the
 * Avro library. Unions are never wrapped: a nullable field reads as null or its value.
 */
export function createAvroCodec<T>(schema: object): AvroCodec<T> {
  const type = avro.Type.forSchema(schema as avro.Schema, TYPE_OPTIONS);
  return {
    encode: (value) => type.toBuffer(value),
    decode: (body) => type.fromBuffer(body) as T,
  };
}
