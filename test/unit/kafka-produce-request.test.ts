import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32c, encodeProduceRequest, splitBySize, type ProduceMessage, type ProduceTopic } from '../../cloud-bridge/kafka-produce-request.js';

/** kafkajs 2.2.4's own Produce v3 request, the reference the writer must match byte for byte. */
type KafkajsRequest = (fields: Record<string, unknown>) => { encode(): Promise<{ buffer: Buffer }> };
const require = createRequire(import.meta.url);
const kafkajsProduceV3 = require('kafkajs/src/protocol/requests/produce/v3/request.js') as KafkajsRequest;
const gzipAsync = promisify(gzip);

const T0 = 1_764_000_000_000;

function messages(n: number, seed: number): ProduceMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `MSCU${String(1000000 + ((i * 7 + seed) % 97)).padStart(7, '0')}`,
    value: Buffer.from(Array.from({ length: 40 + ((i * 13 + seed) % 200) }, (_, j) => (i + j * 31 + seed) & 0xff)),
    headers: { gateway_id: 'gw-ship-7', seq: String(1000 + i), lane: i % 2 === 0 ? 'live' : 'backlog', ...(i % 3 === 0 ? { replayed: 'true' } : {}) },
    timestamp: String(T0 + i * 250 + (seed % 5)),
  }));
}

async function both(topicData: ProduceTopic[], options: { transactionalId: string | null; codec: 0 | 1; producerId: string; producerEpoch: number; nowMs: number }) {
  const reference = await kafkajsProduceV3({
    acks: -1,
    timeout: 30000,
    transactionalId: options.transactionalId,
    producerId: options.producerId,
    producerEpoch: options.producerEpoch,
    compression: options.codec,
    topicData,
  }).encode();
  const ours = await encodeProduceRequest({
    transactionalId: options.transactionalId,
    acks: -1,
    timeoutMs: 30000,
    producerId: BigInt(options.producerId),
    producerEpoch: options.producerEpoch,
    codec: options.codec,
    compress: (records) => gzipAsync(records),
    topicData,
    nowMs: options.nowMs,
  });
  return { reference: reference.buffer, ours };
}

describe('Produce request writer', () => {
  it('writes the bytes kafkajs writes for a transactional, gzip-compressed request over several partitions', async () => {
    const topicData: ProduceTopic[] = [
      { topic: 'reefer.telemetry.v1', partitions: [0, 1, 2].map((p) => ({ partition: p, firstSequence: 3000 * p + 17, messages: messages(500 + p * 250, p) })) },
      { topic: 'reefer.gateway.status', partitions: [{ partition: 0, firstSequence: 4, messages: messages(1, 9) }] },
    ];
    const { reference, ours } = await both(topicData, { transactionalId: 'reefer-edge-gw-ship-7', codec: 1, producerId: '4711', producerEpoch: 3, nowMs: Date.now() });
    expect(ours.length).toBe(reference.length);
    expect(ours.equals(reference)).toBe(true);
  });

  it('writes the same bytes uncompressed, for null keys and values, repeated and binary headers, and multi-byte lengths', async () => {
    const odd: ProduceMessage[] = [
      { key: null, value: Buffer.alloc(20_000, 7), timestamp: String(T0) },
      { key: 'Kühlcontainer-°C', value: null, headers: { tag: ['a', 'béta', Buffer.from([0, 255])], empty: '' }, timestamp: String(T0 + 1) },
      // Readings waited days in an outage: a timestamp delta beyond 2^31 ms.
      { key: Buffer.from('raw-key'), value: 'text value', headers: {}, timestamp: String(T0 + 30 * 86_400_000) },
      { value: Buffer.from('no key at all'), timestamp: String(T0 + 5) },
      // Strings past the short-string path, ASCII and not.
      { key: 'K'.repeat(100), value: 'v'.repeat(300), headers: { long: 'h'.repeat(65), wide: 'ü'.repeat(70) }, timestamp: String(T0 + 6) },
    ];
    const { reference, ours } = await both([{ topic: 't', partitions: [{ partition: 5, messages: odd }] }], {
      transactionalId: null,
      codec: 0,
      producerId: '-1',
      producerEpoch: 0,
      nowMs: Date.now(),
    });
    expect(ours.equals(reference)).toBe(true);
  });

  it('dates records without a timestamp at the request time', async () => {
    const nowMs = Date.now();
    const undated = messages(5, 1).map((m) => ({ ...m, timestamp: undefined }));
    // One partition of topic 't', plain: the first batch's timestamps sit at fixed places.
    const plain = (records: ProduceMessage[]) =>
      encodeProduceRequest({ transactionalId: null, acks: 1, timeoutMs: 1000, producerId: -1n, producerEpoch: 0, codec: 0, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: records }] }], nowMs });
    const ours = await plain(undated);
    // A fraction of a millisecond is dropped, and a timestamp that is no number dates the record now.
    const odd = await plain([
      { value: 'a', timestamp: T0 + 0.7 },
      { value: 'b', timestamp: 'soon' },
    ]);
    // Request head (2 + 2 + 4), topic array and name (4 + 2 + 1), partitions (4), partition and size
    // (4 + 4), then the batch: firstTimestamp sits 8 + 4 + 4 + 1 + 4 + 2 + 4 = 27 bytes into it.
    const batchAt = 2 + 2 + 4 + 4 + 2 + 1 + 4 + 4 + 4;
    expect(ours.readBigInt64BE(batchAt + 27)).toBe(BigInt(nowMs));
    expect(ours.readBigInt64BE(batchAt + 35)).toBe(BigInt(nowMs));
    expect(odd.readBigInt64BE(batchAt + 27)).toBe(BigInt(T0));
    expect(odd.readBigInt64BE(batchAt + 35)).toBe(BigInt(nowMs));
  });

  it('splits a large transaction into requests whose records stay under the byte limit, in order, and leaves a small one whole', async () => {
    const telemetry = messages(3000, 4);
    const status = messages(2, 8);
    const small = splitBySize([{ topic: 'telemetry', messages: telemetry.slice(0, 10) }, { topic: 'status', messages: status }, { topic: 'empty', messages: [] }], 100_000);
    expect(small).toEqual([[{ topic: 'telemetry', messages: telemetry.slice(0, 10) }, { topic: 'status', messages: status }]]);

    const limit = 100_000;
    const groups = splitBySize([{ topic: 'telemetry', messages: telemetry }, { topic: 'status', messages: status }], limit);
    expect(groups.length).toBeGreaterThan(5);
    // Every message once, in order, under its own topic.
    expect(groups.flat().filter((g) => g.topic === 'telemetry').flatMap((g) => g.messages)).toEqual(telemetry);
    expect(groups.flat().filter((g) => g.topic === 'status').flatMap((g) => g.messages)).toEqual(status);
    for (const [i, group] of groups.entries()) {
      // Written as one partition's batch (the worst case), the records take at most the limit.
      const request = await encodeProduceRequest({
        transactionalId: 'tx',
        acks: -1,
        timeoutMs: 1,
        producerId: 1n,
        producerEpoch: 0,
        codec: 0,
        topicData: [{ topic: 't', partitions: [{ partition: 0, messages: group.flatMap((g) => g.messages) }] }],
        nowMs: T0,
      });
      const batchHeaderAndRequestHead = 2 + 2 + 2 + 4 + 4 + 2 + 1 + 4 + 4 + 4 + 61;
      expect(request.length - batchHeaderAndRequestHead).toBeLessThanOrEqual(limit);
      // And the groups before the last are filled, not split needlessly small.
      if (i < groups.length - 1) expect(request.length - batchHeaderAndRequestHead).toBeGreaterThan(limit * 0.9);
    }
    expect(groups.at(-1)!.length).toBeGreaterThan(0);

    const huge = { key: 'k', value: Buffer.alloc(limit * 2) };
    expect(splitBySize([{ topic: 't', messages: [telemetry[0]!, huge, telemetry[1]!] }], limit).map((g) => g.flatMap((t) => t.messages))).toEqual([[telemetry[0]], [huge], [telemetry[1]]]);
  });

  it('computes CRC-32C (Castagnoli) over any alignment', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff));
    const bytewise = (b: Buffer) => {
      let crc = ~0;
      for (const byte of b) {
        crc ^= byte;
        for (let k = 0; k < 8; k++) crc = crc & 1 ? 0x82f63b78 ^ (crc >>> 1) : crc >>> 1;
      }
      return ~crc >>> 0;
    };
    for (const [start, end] of [
      [0, 1000],
      [3, 997],
      [21, 22],
      [5, 5],
    ] as const) {
      expect(crc32c(data, start, end)).toBe(bytewise(data.subarray(start, end)));
    }
  });
});
