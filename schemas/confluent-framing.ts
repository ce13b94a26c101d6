/**
 * The Confluent wire format for record values: a zero byte, the writer schema's registry id as a
 * 4-byte big-endian integer, then the Avro binary body. Any Confluent-compatible consumer
 * (Confluent's and Apicurio's serdes, Kafka Connect, ksqlDB) decodes it given the same registry.
 * Pure: bytes only; the registry lookups live in cloud-bridge.
 */
import { Buffer } from 'node:buffer';

export const CONFLUENT_MAGIC = 0x00;
export const CONFLUENT_HEADER_BYTES = 5;
/** Registry ids are Java ints; a negative one never comes from a registry. */
export const MAX_SCHEMA_ID = 0x7fffffff;

/** Zero byte + big-endian schema id + body. Throws a RangeError on an id no registry hands out. */
export function frameConfluent(schemaId: number, body: Buffer): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > MAX_SCHEMA_ID) {
    throw new RangeError(`schema id ${schemaId} is not an integer in 0..${MAX_SCHEMA_ID}`);
  }
  const out = Buffer.allocUnsafe(CONFLUENT_HEADER_BYTES + body.length);
  out[0] = CONFLUENT_MAGIC;
  out.writeUInt32BE(schemaId, 1);
  body.copy(out, CONFLUENT_HEADER_BYTES);
  return out;
}

/**
 * True when the buffer can be a Confluent-framed value: the zero byte and a full header. Avro
 * single-object values start with `C3 01` and JSON with a printable character, so the first byte
 * tells the framings apart.
 */
export function isConfluentFramed(buf: Buffer): boolean {
  return buf.length >= CONFLUENT_HEADER_BYTES && buf[0] === CONFLUENT_MAGIC;
}

export type ConfluentUnframeResult = { ok: true; schemaId: number; body: Buffer } | { ok: false; detail: string };

/** Splits a Confluent-framed value into its schema id and body (a view, not a copy). Never throws. */
export function unframeConfluent(buf: Buffer): ConfluentUnframeResult {
  if (buf.length === 0) return { ok: false, detail: 'expected the Confluent magic byte 00, got an empty buffer' };
  if (buf[0] !== CONFLUENT_MAGIC) {
    return { ok: false, detail: `expected the Confluent magic byte 00, got ${buf.subarray(0, 1).toString('hex')}` };
  }
  if (buf.length < CONFLUENT_HEADER_BYTES) {
    return { ok: false, detail: `Confluent header is ${CONFLUENT_HEADER_BYTES} bytes (magic byte and schema id), got ${buf.length}` };
  }
  const schemaId = buf.readUInt32BE(1);
  if (schemaId > MAX_SCHEMA_ID) return { ok: false, detail: `schema id ${schemaId} is out of range 0..${MAX_SCHEMA_ID}` };
  return { ok: true, schemaId, body: buf.subarray(CONFLUENT_HEADER_BYTES) };
}
