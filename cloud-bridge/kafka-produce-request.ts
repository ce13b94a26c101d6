/**
 * Kafka's Produce request (versions 3 to 7 share one layout) carrying v2 record batches, written in
 * one pass into one buffer per batch. Compression is handed in, so this file does no I/O.
 *
 * The Kafka adapter sends its records through this writer instead of kafkajs's, which builds an
 * object and a growing buffer for every record and every header and copies each several times: at
 * 3,000 records a transaction that was a third of the gateway's CPU while it drained a backlog.
 * The bytes are the ones kafkajs 2.2.4 writes for the same records (the unit test compares them).
 *
 * Layouts: https://kafka.apache.org/documentation/#recordbatch and #record.
 */

import { utf8Length, writeUtf8 } from '../schemas/short-ascii.js';

export type HeaderValue = string | Buffer | null | undefined;

export interface ProduceMessage {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Readonly<Record<string, HeaderValue | readonly HeaderValue[]>>;
  /** Milliseconds since the epoch, as a number or a decimal string; the request's time when absent. */
  timestamp?: string | number | null;
}

export interface ProducePartition {
  partition: number;
  /** The idempotent producer's sequence number for the batch's first record. */
  firstSequence?: number;
  messages: readonly ProduceMessage[];
}

export interface ProduceTopic {
  topic: string;
  partitions: readonly ProducePartition[];
}

export interface ProduceRequestFields {
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  /** -1 for a producer that is neither idempotent nor transactional. */
  producerId: bigint;
  producerEpoch: number;
  /** The batch attribute's codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. */
  codec: number;
  /** Compresses a batch's records; required unless the codec is 0. */
  compress?: (records: Buffer) => Promise<Buffer>;
  topicData: readonly ProduceTopic[];
  /** The time given to records without a timestamp. */
  nowMs: number;
}

const MAGIC = 2;
const TRANSACTIONAL = 0x10;
/** baseOffset through the record count: 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4. */
const BATCH_HEADER_BYTES = 61;
/** Where the CRC-covered part of a batch (attributes onwards) starts. */
const CRC_START = 21;

/** The Produce request's body (after the common request header kafkajs writes). */
export async function encodeProduceRequest(fields: ProduceRequestFields): Promise<Buffer> {
  // Every batch's records are written first, then all are compressed at once on libuv's threads.
  const batches = await Promise.all(fields.topicData.map((topic) => Promise.all(topic.partitions.map((partition) => recordBatch(fields, partition)))));
  const parts: Buffer[] = [];
  const head = new Writer(Buffer.allocUnsafe(2 + stringBytes(fields.transactionalId) + 2 + 4 + 4));
  head.nullableString(fields.transactionalId).int16(fields.acks).int32(fields.timeoutMs).int32(fields.topicData.length);
  parts.push(head.buf);
  for (const [t, topic] of fields.topicData.entries()) {
    const topicHead = new Writer(Buffer.allocUnsafe(2 + stringBytes(topic.topic) + 4));
    topicHead.nullableString(topic.topic).int32(topic.partitions.length);
    parts.push(topicHead.buf);
    for (const [p, batch] of batches[t]!.entries()) {
      const partitionHead = new Writer(Buffer.allocUnsafe(8));
      partitionHead.int32(topic.partitions[p]!.partition).int32(batch.length);
      parts.push(partitionHead.buf, batch);
    }
  }
  return Buffer.concat(parts);
}

export interface TopicMessages<M extends ProduceMessage = ProduceMessage> {
  topic: string;
  messages: M[];
}

/**
 * Splits topics' messages into groups whose records take at most maxBytes as written, uncompressed,
 * so that one Produce request per group keeps every partition's batch under the broker's
 * message.max.bytes however many records a transaction holds. Order is kept; a record larger than
 * maxBytes goes alone (and the broker refuses it).
 */
export function splitBySize<M extends ProduceMessage>(sends: readonly { topic: string; messages: readonly M[] }[], maxBytes: number): TopicMessages<M>[][] {
  let bound = 0;
  for (const send of sends) for (const message of send.messages) bound += cheapBound(message);
  if (bound <= maxBytes) return [sends.filter((s) => s.messages.length > 0).map((s) => ({ topic: s.topic, messages: [...s.messages] }))];
  const groups: TopicMessages<M>[][] = [];
  let group: TopicMessages<M>[] = [];
  let groupBytes = 0;
  for (const send of sends) {
    let current: M[] = [];
    for (const message of send.messages) {
      const bytes = recordBodyBytes(message, 0, 0) + MAX_VARINT_SLACK;
      if (groupBytes + bytes > maxBytes && groupBytes > 0) {
        if (current.length > 0) group.push({ topic: send.topic, messages: current });
        groups.push(group);
        group = [];
        current = [];
        groupBytes = 0;
      }
      current.push(message);
      groupBytes += bytes;
    }
    if (current.length > 0) group.push({ topic: send.topic, messages: current });
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** The length prefix (5), a timestamp delta (10 against 1) and an offset delta (5 against 1) at their longest. */
const MAX_VARINT_SLACK = 5 + 9 + 4;

/** At least a record's written size, without measuring strings: UTF-8 takes at most 3 bytes per UTF-16 unit. */
function cheapBound(message: ProduceMessage): number {
  let bytes = 40 + rawBound(message.key) + rawBound(message.value);
  const headers = message.headers;
  if (headers) {
    for (const name in headers) {
      const value = headers[name];
      if (Array.isArray(value)) for (const v of value as readonly HeaderValue[]) bytes += 10 + 3 * name.length + rawBound(v);
      else bytes += 10 + 3 * name.length + rawBound(value as HeaderValue);
    }
  }
  return bytes;
}

function rawBound(value: string | Buffer | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? 3 * value.length : value.length;
}

/** One partition's records as a v2 record batch, baseOffset and length included. */
async function recordBatch(fields: ProduceRequestFields, partition: ProducePartition): Promise<Buffer> {
  const { messages } = partition;
  let first = Infinity;
  let max = -Infinity;
  const times = new Float64Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const t = timestampOf(messages[i]!, fields.nowMs);
    times[i] = t;
    if (t < first) first = t;
    if (t > max) max = t;
  }
  if (messages.length === 0) first = max = fields.nowMs;

  const sizes = new Int32Array(messages.length);
  let recordsBytes = 0;
  for (let i = 0; i < messages.length; i++) {
    const body = recordBodyBytes(messages[i]!, times[i]! - first, i);
    sizes[i] = body;
    recordsBytes += varintBytes(zigzag(body)) + body;
  }

  const compressed = fields.codec !== 0;
  const out = new Writer(Buffer.allocUnsafe(compressed ? BATCH_HEADER_BYTES : BATCH_HEADER_BYTES + recordsBytes));
  out.pos = BATCH_HEADER_BYTES;
  let records = out;
  if (compressed) records = new Writer(Buffer.allocUnsafe(recordsBytes));
  for (let i = 0; i < messages.length; i++) writeRecord(records, messages[i]!, sizes[i]!, times[i]! - first, i);

  let batch = out.buf;
  if (compressed) {
    if (!fields.compress) throw new Error(`codec ${fields.codec} needs a compress function`);
    const body = await fields.compress(records.buf);
    batch = Buffer.allocUnsafe(BATCH_HEADER_BYTES + body.length);
    out.buf.copy(batch, 0, 0, BATCH_HEADER_BYTES);
    body.copy(batch, BATCH_HEADER_BYTES);
  }
  const header = new Writer(batch);
  header
    .int64(0n) // baseOffset: the broker assigns offsets
    .int32(batch.length - 12) // batchLength: everything after this field
    .int32(0) // partitionLeaderEpoch
    .int8(MAGIC);
  header.pos += 4; // the CRC, written once the rest is in place
  header
    .int16(fields.codec | (fields.transactionalId === null ? 0 : TRANSACTIONAL))
    .int32(messages.length - 1) // lastOffsetDelta
    .int64(BigInt(first))
    .int64(BigInt(max))
    .int64(fields.producerId)
    .int16(fields.producerEpoch)
    .int32(partition.firstSequence ?? 0)
    .int32(messages.length);
  batch.writeUInt32BE(crc32c(batch, CRC_START, batch.length), CRC_START - 4);
  return batch;
}

/** Whole milliseconds; the request's time for a record without a usable timestamp. */
function timestampOf(message: ProduceMessage, nowMs: number): number {
  const t = message.timestamp;
  if (t === undefined || t === null || t === '' || t === 0) return nowMs;
  const ms = Math.trunc(typeof t === 'number' ? t : Number(t));
  return Number.isSafeInteger(ms) ? ms : nowMs;
}

function recordBodyBytes(message: ProduceMessage, timestampDelta: number, offsetDelta: number): number {
  let size = 1 + varintBytes(zigzag(timestampDelta)) + varintBytes(zigzag(offsetDelta)) + bytesField(message.key) + bytesField(message.value);
  let count = 0;
  const headers = message.headers;
  if (headers) {
    for (const name in headers) {
      const value = headers[name];
      if (Array.isArray(value)) {
        for (const v of value as readonly HeaderValue[]) size += bytesField(name) + bytesField(v);
        count += value.length;
      } else {
        size += bytesField(name) + bytesField(value as HeaderValue);
        count += 1;
      }
    }
  }
  return size + varintBytes(zigzag(count));
}

function writeRecord(w: Writer, message: ProduceMessage, bodyBytes: number, timestampDelta: number, offsetDelta: number): void {
  w.varint(zigzag(bodyBytes)).int8(0).varint(zigzag(timestampDelta)).varint(zigzag(offsetDelta)).bytes(message.key).bytes(message.value);
  const headers = message.headers;
  if (!headers) {
    w.varint(0);
    return;
  }
  let count = 0;
  for (const name in headers) {
    const value = headers[name];
    count += Array.isArray(value) ? value.length : 1;
  }
  w.varint(zigzag(count));
  for (const name in headers) {
    const value = headers[name];
    if (Array.isArray(value)) for (const v of value as readonly HeaderValue[]) w.bytes(name).bytes(v);
    else w.bytes(name).bytes(value as HeaderValue);
  }
}

/** Bytes of a varint-length-prefixed field: -1 for null. */
function bytesField(value: string | Buffer | null | undefined): number {
  if (value === null || value === undefined) return 1;
  const n = typeof value === 'string' ? utf8Length(value) : value.length;
  return varintBytes(zigzag(n)) + n;
}

function stringBytes(value: string | null): number {
  return value === null ? 0 : utf8Length(value);
}

/** Zigzag encoding of a signed integer, exact up to 2^52 in magnitude. */
function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function varintBytes(u: number): number {
  let bytes = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 128);
    bytes += 1;
  }
  return bytes;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  int8(v: number): this {
    this.buf[this.pos++] = v & 0xff;
    return this;
  }
  int16(v: number): this {
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  int32(v: number): this {
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }
  int64(v: bigint): this {
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }
  /** An unsigned varint of an already zigzagged value. */
  varint(u: number): this {
    const buf = this.buf;
    while (u >= 0x80) {
      buf[this.pos++] = (u % 128) | 0x80;
      u = Math.floor(u / 128);
    }
    buf[this.pos++] = u;
    return this;
  }
  nullableString(v: string | null): this {
    if (v === null) return this.int16(-1);
    this.int16(utf8Length(v));
    this.pos = writeUtf8(this.buf, this.pos, v);
    return this;
  }
  bytes(v: string | Buffer | null | undefined): this {
    if (v === null || v === undefined) return this.varint(1);
    if (typeof v === 'string') {
      this.varint(zigzag(utf8Length(v)));
      this.pos = writeUtf8(this.buf, this.pos, v);
    } else {
      this.varint(zigzag(v.length));
      v.copy(this.buf, this.pos);
      this.pos += v.length;
    }
    return this;
  }
}

/** CRC-32C (Castagnoli) of buf[start, end), eight bytes a step. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = ~0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc =
      CRC_TABLES[7 * 256 + (a & 0xff)]! ^
      CRC_TABLES[6 * 256 + ((a >>> 8) & 0xff)]! ^
      CRC_TABLES[5 * 256 + ((a >>> 16) & 0xff)]! ^
      CRC_TABLES[4 * 256 + (a >>> 24)]! ^
      CRC_TABLES[3 * 256 + buf[i + 4]!]! ^
      CRC_TABLES[2 * 256 + buf[i + 5]!]! ^
      CRC_TABLES[256 + buf[i + 6]!]! ^
      CRC_TABLES[buf[i + 7]!]!;
  }
  for (; i < end; i++) crc = CRC_TABLES[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

const CRC_TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();
