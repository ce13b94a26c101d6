/**
 * How a reading is stored in the outbox: a compact, lossless form of the sensor fields, turned into
 * the Avro telemetry record only when it is sent. A backlog of days sits on a Pi's SD card, so the
 * row carries nothing it can get elsewhere: the container is the row's container number, the
 * receive time and sequence number are columns, the gateway id is the gateway's own, and measured
 * values are kept as the decimals sensors report rather than as 8-byte doubles.
 *
 * Layout (varints are unsigned LEB128, "zigzag" maps signed to unsigned as Avro does):
 *   format byte   bit 0 set; bits 1–2 the transport (0 mqtt, 1 serial, 2 upstream)
 *   varint        zigzag(received time − measurement time), milliseconds
 *   byte          fan_1, fan_2, fan_3, maintenance_required: 2 bits each (0 null, 1 false, 2 true)
 *   varint        product id's UTF-8 length + 1 (0: null), then its bytes
 *   varint ×2     content_type, defrost_cycle: zigzag(value) + 1 (0: null)
 *   6 bytes       a 4-bit kind per measured value (temperature, then the ten optional ones):
 *                 0 null, 1–7 a decimal with kind − 1 digits after the point, 8 an IEEE double
 *   per value     kind 1–7: varint zigzag(value × 10^digits); kind 8: 8 bytes little-endian
 *
 * A decimal is used only when dividing its integer by the power of ten gives back the very same
 * double, so the stored value reads back bit for bit; anything else is stored whole.
 * Rows written before this form held the Avro body itself. An Avro body starts with the zigzag
 * length of the container id, an even number whose first varint byte is even too; this form's
 * first byte is odd, so both read back side by side.
 */
import { Buffer } from 'node:buffer';
import { TELEMETRY_SCHEMA, TELEMETRY_WRITER_VERSION } from '../../schemas/avro.js';
import type { ReeferReading, Transport } from '../../schemas/reefer-reading.js';
import { utf8Length, writeUtf8 } from '../../schemas/short-ascii.js';

const TRANSPORTS: readonly Transport[] = ['mqtt', 'serial', 'upstream'];
const TRANSPORT_CODE: Readonly<Record<Transport, number>> = { mqtt: 0, serial: 1, upstream: 2 };

const KIND_NULL = 0;
const KIND_DOUBLE = 8;
const MAX_DIGITS = 6;
const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];
/** Scaled decimals stay below this so the zigzag arithmetic is exact in a double. */
const MAX_SCALED = 2 ** 50;
const MEASURED_COUNT = 11;
const KIND_BYTES = Math.ceil(MEASURED_COUNT / 2);

/** True when the stored value is in this form rather than an Avro body written by an older gateway. */
export function isCompactReading(value: Buffer): boolean {
  return value.length > 0 && (value[0]! & 1) === 1;
}

/** Where a stored value is written; large enough for every field but the product id. */
let scratch = Buffer.allocUnsafe(512);

/** The stored form of a reading received over `transport` at `receivedMs`. */
export function encodeStoredReading(r: ReeferReading, transport: Transport, receivedMs: number): Buffer {
  const productBytes = r.product_id === null ? 0 : Buffer.byteLength(r.product_id);
  if (scratch.length < 160 + productBytes) scratch = Buffer.allocUnsafe(2 * (160 + productBytes));
  const buf = scratch;
  buf[0] = 1 | (TRANSPORT_CODE[transport] << 1);
  let at = writeVarint(buf, 1, zigzag(receivedMs - r.measurement_time));
  buf[at++] = flag(r.fan_1) | (flag(r.fan_2) << 2) | (flag(r.fan_3) << 4) | (flag(r.maintenance_required) << 6);
  if (r.product_id === null) buf[at++] = 0;
  else {
    at = writeVarint(buf, at, productBytes + 1);
    at += buf.write(r.product_id, at, 'utf8');
  }
  at = writeVarint(buf, at, r.content_type === null ? 0 : zigzag(r.content_type) + 1);
  at = writeVarint(buf, at, r.defrost_cycle === null ? 0 : zigzag(r.defrost_cycle) + 1);
  const kindsAt = at;
  buf.fill(0, kindsAt, kindsAt + KIND_BYTES);
  at += KIND_BYTES;
  const values = [
    r.temperature,
    r.target_temperature,
    r.ambient_temperature,
    r.kilowatts,
    r.time_door_open,
    r.oxygen_level,
    r.nitrogen_level,
    r.humidity_level,
    r.carbon_dioxide_level,
    r.latitude,
    r.longitude,
  ];
  for (let i = 0; i < MEASURED_COUNT; i += 1) {
    const v = values[i]!;
    let kind = KIND_NULL;
    if (v !== null) {
      const digits = decimalDigits(v);
      if (digits < 0) {
        kind = KIND_DOUBLE;
        at = buf.writeDoubleLE(v, at);
      } else {
        kind = digits + 1;
        at = writeVarint(buf, at, zigzag(Math.round(v * POW10[digits]!)));
      }
    }
    buf[kindsAt + (i >> 1)]! |= kind << ((i & 1) * 4);
  }
  return Buffer.from(buf.subarray(0, at));
}

/** Where a stored row came from, beside its value. */
export interface StoredRowContext {
  seq: number;
  containerId: string;
  receivedMs: number;
}

/*
 * The telemetry record is written straight from the stored form, field by field in the order of
 * reefer-telemetry.avsc (the writer version), without building the record as an object first: a
 * backlog drain does this for every reading. The field list below is checked against the schema
 * when the module loads, so the schema cannot change under it unnoticed.
 */
const AVRO_FIELD_ORDER = [
  'container_id', 'measurement_time', 'product_id', 'temperature', 'target_temperature', 'ambient_temperature', 'kilowatts',
  'time_door_open', 'content_type', 'defrost_cycle', 'oxygen_level', 'nitrogen_level', 'humidity_level', 'carbon_dioxide_level',
  'fan_1', 'fan_2', 'fan_3', 'latitude', 'longitude', 'maintenance_required', 'gateway_id', 'seq', 'transport', 'received_time',
];
if (TELEMETRY_WRITER_VERSION !== 1 || TELEMETRY_SCHEMA.fields.map((f) => f.name).join() !== AVRO_FIELD_ORDER.join()) {
  throw new Error('stored-reading.ts writes ReeferTelemetry version 1 field by field; the writer schema changed, update it');
}
/** Avro union branch 1 (the value, not null), zigzag encoded. */
const PRESENT = 2;
const TRANSPORT_AVRO: readonly Buffer[] = TRANSPORTS.map((t) => Buffer.concat([Buffer.from([2 * t.length]), Buffer.from(t)]));
let gatewayAvro: { id: string; bytes: Buffer } = { id: '', bytes: Buffer.from([0]) };
let out = Buffer.allocUnsafe(1024);

/**
 * The Avro body of the telemetry record (writer version) for a stored row, completed from its row and
 * the gateway's id. A row an older gateway stored as an Avro body is returned as it is. Throws on a
 * damaged value, naming the row.
 */
export function storedTelemetryBody(row: StoredRowContext & { value: Buffer }, gatewayId: string): Buffer {
  const value = row.value;
  if (!isCompactReading(value)) return value;
  if (value.length < 4 + KIND_BYTES) throw new Error(`outbox row ${row.seq}: truncated value`);
  const transport = (value[0]! >> 1) & 3;
  if (transport >= TRANSPORTS.length) throw new Error(`outbox row ${row.seq}: unknown transport code ${transport}`);
  if (gatewayAvro.id !== gatewayId) gatewayAvro = { id: gatewayId, bytes: avroString(gatewayId) };
  const bound = 2 * value.length + 3 * row.containerId.length + gatewayAvro.bytes.length + 160;
  if (out.length < bound) out = Buffer.allocUnsafe(2 * bound);

  const cursor = { at: 1 };
  const delta = unzigzag(readVarint(value, cursor, row.seq));
  const flags = value[cursor.at++]!;
  const productLength = readVarint(value, cursor, row.seq);
  const productAt = cursor.at;
  cursor.at += Math.max(0, productLength - 1);
  const contentType = readVarint(value, cursor, row.seq);
  const defrostCycle = readVarint(value, cursor, row.seq);
  const kindsAt = cursor.at;
  cursor.at += KIND_BYTES;
  if (cursor.at > value.length) throw new Error(`outbox row ${row.seq}: truncated value`);

  let at = writeVarint(out, 0, 2 * utf8Length(row.containerId));
  at = writeUtf8(out, at, row.containerId);
  at = writeVarint(out, at, zigzag(row.receivedMs - delta));
  if (productLength === 0) out[at++] = 0;
  else {
    out[at++] = PRESENT;
    at = writeVarint(out, at, 2 * (productLength - 1));
    at += value.copy(out, at, productAt, productAt + productLength - 1);
  }
  for (let i = 0; i < MEASURED_COUNT; i += 1) {
    const kind = (value[kindsAt + (i >> 1)]! >> ((i & 1) * 4)) & 0xf;
    if (kind === KIND_NULL) {
      if (i === 0) throw new Error(`outbox row ${row.seq}: no temperature`);
      out[at++] = 0;
    } else {
      if (i > 0) out[at++] = PRESENT;
      if (kind === KIND_DOUBLE) {
        if (cursor.at + 8 > value.length) throw new Error(`outbox row ${row.seq}: truncated value`);
        at += value.copy(out, at, cursor.at, cursor.at + 8);
        cursor.at += 8;
      } else if (kind <= MAX_DIGITS + 1) {
        at = out.writeDoubleLE(unzigzag(readVarint(value, cursor, row.seq)) / POW10[kind - 1]!, at);
      } else throw new Error(`outbox row ${row.seq}: unknown value kind ${kind}`);
    }
    if (i === 4) {
      // content_type and defrost_cycle follow time_door_open.
      at = writeOptionalInt(out, at, contentType);
      at = writeOptionalInt(out, at, defrostCycle);
    } else if (i === 8) {
      // fan_1..3 follow carbon_dioxide_level.
      at = writeFlag(out, at, flags & 3);
      at = writeFlag(out, at, (flags >> 2) & 3);
      at = writeFlag(out, at, (flags >> 4) & 3);
    }
  }
  at = writeFlag(out, at, (flags >> 6) & 3);
  at += gatewayAvro.bytes.copy(out, at);
  at = writeVarint(out, at, zigzag(row.seq));
  at += TRANSPORT_AVRO[transport]!.copy(out, at);
  at = writeVarint(out, at, zigzag(row.receivedMs));
  return Buffer.from(out.subarray(0, at));
}

/** A nullable int stored as zigzag + 1 (0: null), as its Avro union. */
function writeOptionalInt(buf: Buffer, at: number, stored: number): number {
  if (stored === 0) buf[at++] = 0;
  else {
    buf[at++] = PRESENT;
    at = writeVarint(buf, at, stored - 1);
  }
  return at;
}

/** A nullable boolean stored in 2 bits (0 null, 1 false, 2 true), as its Avro union. */
function writeFlag(buf: Buffer, at: number, code: number): number {
  if (code === 0) buf[at++] = 0;
  else {
    buf[at++] = PRESENT;
    buf[at++] = code === 2 ? 1 : 0;
  }
  return at;
}

function avroString(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  const head = Buffer.allocUnsafe(10);
  return Buffer.concat([head.subarray(0, writeVarint(head, 0, 2 * bytes.length)), bytes]);
}

/** Digits after the point that hold `v` exactly (0–6), or −1 when it must be stored whole. */
function decimalDigits(v: number): number {
  if (Object.is(v, -0)) return -1;
  for (let digits = 0; digits <= MAX_DIGITS; digits += 1) {
    const scaled = Math.round(v * POW10[digits]!);
    if (Math.abs(scaled) >= MAX_SCALED) return -1;
    if (scaled / POW10[digits]! === v) return digits;
  }
  return -1;
}

function flag(b: boolean | null): number {
  return b === null ? 0 : b ? 2 : 1;
}

/** Signed to unsigned, small magnitudes to small numbers; arithmetic, so exact up to 2^52. */
function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[at++] = n;
  return at;
}

function readVarint(buf: Buffer, cursor: { at: number }, seq: number): number {
  let n = 0;
  let scale = 1;
  for (;;) {
    if (cursor.at >= buf.length || scale > 2 ** 56) throw new Error(`outbox row ${seq}: truncated value`);
    const b = buf[cursor.at++]!;
    n += (b & 0x7f) * scale;
    if (b < 0x80) return n;
    scale *= 0x80;
  }
}
