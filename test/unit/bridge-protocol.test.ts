import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import {
  BRIDGE_COMPRESSIONS,
  bridgeTopic,
  BridgeFormatError,
  decodeCommand,
  decodeReply,
  decodeRequest,
  dropCommitted,
  encodeCommand,
  encodeReply,
  encodeRequest,
  errorReply,
  frameMessage,
  MAX_REMEMBERED_RANGES,
  okReply,
  parseBridgeTopic,
  parseMarkerRanges,
  rememberCommitted,
  unframeMessage,
  type BridgeRequest,
} from '../../cloud-bridge/bridge-protocol.js';
import type { TopicRecords } from '../../cloud-bridge/kafka-client.js';
import { createFleetModel } from '../../device-sim/reefer-model.js';
import { encodeMarker } from '../../gateway/uplink/kafka-uplink.js';
import { encodeTelemetry, frameTelemetryBody } from '../../schemas/avro.js';

function records(topic: string, seqs: readonly number[]): TopicRecords {
  return { topic, records: seqs.map((seq) => ({ key: `C${seq % 3}`, value: Buffer.from([seq]), headers: { gateway_id: 'gw', seq: String(seq), lane: 'routine' } })) };
}

function commitRequest(sends: TopicRecords[], metadata: string): BridgeRequest {
  return {
    id: 'r1',
    session: 's1',
    kind: 'commit',
    sends,
    marker: { groupId: 'reefer-gateway.gw.progress', topic: 'tele', partition: 0, offset: 9, metadata },
    topic: null,
    partition: null,
    deliveryId: null,
  };
}

/** A batch as the uplink sends it: the fleet model's readings, framed as on the telemetry topic. */
function realBatch(count: number): TopicRecords[] {
  const fleet = createFleetModel({ devices: 50, seed: 3, startTimeMs: Date.UTC(2026, 10, 1), intervalMs: 300_000 });
  const out: TopicRecords = { topic: 'reefer-telemetry', records: [] };
  for (let seq = 1; seq <= count; seq += 1) {
    // Readings arrive from the whole fleet interleaved, as a gateway's outbox holds them.
    const reading = fleet[seq % fleet.length]!.next();
    const value = frameTelemetryBody(encodeTelemetry({ ...reading, gateway_id: 'ship-7', seq, transport: 'mqtt', received_time: reading.measurement_time + 800 }));
    (out.records as unknown[]).push({ key: reading.container_id, value, headers: { gateway_id: 'ship-7', seq: String(seq), lane: 'routine' }, timestampMs: reading.measurement_time + 800 });
  }
  return [out];
}

describe('bridge wire format', () => {
  it('round-trips a commit request in every compression, tagged with version 1 and the compression', () => {
    const request = commitRequest([records('tele', [1, 2, 3]), { topic: 'dl', records: [{ key: 'x', value: Buffer.from('{}'), headers: {}, timestampMs: 5 }] }], 'ep:1-3');
    for (const compression of BRIDGE_COMPRESSIONS) {
      const payload = encodeRequest(request, compression);
      expect(payload[0]! >> 4).toBe(1);
      const decoded = decodeRequest(payload);
      expect(decoded.compression).toBe(compression);
      expect(decoded.request).toEqual(request);
    }
  });

  it('round-trips replies and commands', () => {
    const ok = okReply('a', { marker: { offset: 4, metadata: 'ep:1-4' }, topics: ['t'], duplicatesDropped: 2 });
    expect(decodeReply(encodeReply(ok, 'none'))).toEqual(ok);
    const refused = errorReply('b', { code: 'topic-not-allowed', message: 'topic "x" is not allowed', retriable: false });
    expect(decodeReply(encodeReply(refused, 'deflate'))).toEqual(refused);
    const command = { deliveryId: '0:12:ab', value: Buffer.from('{"commandId":"c1"}'), headers: { gateway_id: 'gw' } };
    expect(decodeCommand(encodeCommand(command, 'brotli'))).toEqual(command);
  });

  it('refuses an unknown version, an unknown compression, a corrupt body and a decompression bomb with a format error', () => {
    const good = encodeRequest(commitRequest([], 'ep:1-1'), 'deflate');
    const otherVersion = Buffer.from(good);
    otherVersion[0] = 0x21;
    expect(() => decodeRequest(otherVersion)).toThrow(/format version 2: expected 1/);
    expect(() => unframeMessage(Buffer.from([0x17, 1, 2]))).toThrow(/compression code 7/);
    expect(() => decodeRequest(Buffer.from([0x11, 0xff, 0xff, 0xff]))).toThrow(BridgeFormatError);
    expect(() => decodeRequest(Buffer.from([0x10, 0x02]))).toThrow(/not valid Avro/);
    expect(() => unframeMessage(Buffer.alloc(0))).toThrow(/empty/);
    const bomb = frameMessage(Buffer.alloc(65 * 1024 * 1024), 'deflate');
    expect(bomb.length).toBeLessThan(100 * 1024);
    expect(() => unframeMessage(bomb)).toThrow(BridgeFormatError);
  });

  it('names topics per gateway and channel, and reads them back', () => {
    expect(bridgeTopic('ship-7', 'request')).toBe('reefer-bridge/ship-7/request');
    expect(parseBridgeTopic('reefer-bridge/ship-7/reply')).toEqual({ gatewayId: 'ship-7', channel: 'reply' });
    expect(parseBridgeTopic('reefer-bridge/+/request')).toBeNull();
    expect(parseBridgeTopic('reefer-bridge/ship-7/other')).toBeNull();
    expect(parseBridgeTopic('reefer/C01/telemetry')).toBeNull();
  });

  it('measures deflate against brotli on batches of real readings', () => {
    const lines: string[] = [];
    for (const count of [50, 500, 1000]) {
      const request = commitRequest(realBatch(count), `ep:1-${count}`);
      const raw = encodeRequest(request, 'none').length;
      const cells = BRIDGE_COMPRESSIONS.map((compression) => {
        const started = performance.now();
        const bytes = encodeRequest(request, compression).length;
        const ms = performance.now() - started;
        return `${compression} ${(bytes / count).toFixed(1)} B/reading (${ms.toFixed(1)} ms)`;
      });
      const deflate = encodeRequest(request, 'deflate').length;
      const brotli = encodeRequest(request, 'brotli').length;
      expect(deflate).toBeLessThan(raw / 2);
      expect(brotli).toBeLessThan(raw / 2);
      lines.push(`${count} readings (${raw} B as Avro): ${cells.join(', ')}`);
    }
    console.log(`bridge batch compression:\n  ${lines.join('\n  ')}`);
  });
});

describe('dedup by (gateway, seq)', () => {
  it('reads the epoch and reading ranges of the uplink’s markers, ignoring dead-letter and other parts', () => {
    expect(parseMarkerRanges(encodeMarker('ep-1', [[1, 5], [9, 12]]))).toEqual({ epoch: 'ep-1', ranges: [[1, 5], [9, 12]] });
    expect(parseMarkerRanges(encodeMarker('ep-1', [[3, 4]], [7, 9]))).toEqual({ epoch: 'ep-1', ranges: [[3, 4]] });
    expect(parseMarkerRanges(encodeMarker('ep:with:colons', [], [1, 2]))).toEqual({ epoch: 'ep:with:colons', ranges: [] });
    expect(parseMarkerRanges('no-colon')).toBeNull();
    expect(parseMarkerRanges('ep:1-x')).toBeNull();
  });

  it('drops records whose seq Kafka committed in the same epoch, and keeps the rest in order', () => {
    const committed = rememberCommitted(null, 'ep:1-10');
    const sends = [records('tele', [8, 9, 10, 11, 12]), records('other', [9])];
    const { sends: kept, dropped } = dropCommitted(sends, commitRequest([], 'ep:8-12').marker, committed);
    expect(dropped).toBe(3);
    expect(kept[0]!.records.map((r) => r.headers!.seq)).toEqual(['11', '12']);
    // Only the marker's topic carries reading sequence numbers.
    expect(kept[1]!.records).toHaveLength(1);
  });

  it('keeps everything of another epoch (a recreated outbox numbers from 1 again)', () => {
    const committed = rememberCommitted(null, 'old:1-100');
    const { dropped } = dropCommitted([records('tele', [1, 2, 3])], commitRequest([], 'new:1-3').marker, committed);
    expect(dropped).toBe(0);
  });

  it('keeps records without a seq header or with a malformed one, and everything when nothing is committed', () => {
    const committed = rememberCommitted(null, 'ep:1-10');
    const sends: TopicRecords[] = [{ topic: 'tele', records: [{ key: 'a', value: Buffer.alloc(0) }, { key: 'b', value: Buffer.alloc(0), headers: { seq: '3x' } }] }];
    expect(dropCommitted(sends, commitRequest([], 'ep:1-3').marker, committed).dropped).toBe(0);
    expect(dropCommitted([records('tele', [1])], commitRequest([], 'ep:1-1').marker, null).dropped).toBe(0);
    expect(dropCommitted([records('tele', [1])], null, committed).dropped).toBe(0);
  });

  it('merges committed ranges across commits, starts afresh on a new epoch, and forgets the oldest past its bound', () => {
    let committed = rememberCommitted(null, 'ep:1-10');
    committed = rememberCommitted(committed, 'ep:11-20,40-45');
    committed = rememberCommitted(committed, 'ep:30-35;d1-4');
    expect(committed).toEqual({ epoch: 'ep', ranges: [[1, 20], [30, 35], [40, 45]] });
    expect(dropCommitted([records('tele', [20, 21, 29, 30, 45, 46])], commitRequest([], 'ep:20-46').marker, committed).dropped).toBe(3);
    expect(rememberCommitted(committed, 'fresh:1-2')).toEqual({ epoch: 'fresh', ranges: [[1, 2]] });
    expect(rememberCommitted(committed, 'not a marker')).toBe(committed);
    let many = rememberCommitted(null, 'ep:1-1');
    for (let i = 1; i <= MAX_REMEMBERED_RANGES + 10; i += 1) many = rememberCommitted(many, `ep:${i * 10}-${i * 10}`);
    expect(many!.ranges).toHaveLength(MAX_REMEMBERED_RANGES);
    expect(many!.ranges[many!.ranges.length - 1]).toEqual([(MAX_REMEMBERED_RANGES + 10) * 10, (MAX_REMEMBERED_RANGES + 10) * 10]);
  });
});
