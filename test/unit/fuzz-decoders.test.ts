/**
 * The decoder properties (test/harness/decoder-properties.ts) with 100,000 generated inputs between
 * them. A failure prints fast-check's seed and path; `npx tsx test/fuzz/fuzz-decoders.ts --seed S
 * --path P --property "<name>"` replays it, and the same script runs millions of inputs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeReading, type DecodeContext } from '../../gateway/pipeline/decode-reading.js';
import { SERIAL_FRAMERS } from '../../gateway/pipeline/serial-framers.js';
import { checkDecodeResult, checkLineResult, DECODER_PROPERTIES, runsPerProperty } from '../harness/decoder-properties.js';

const TOTAL_RUNS = 100_000;

describe('decoders and framers under generated input', () => {
  const runs = runsPerProperty(TOTAL_RUNS);
  DECODER_PROPERTIES.forEach((p, i) => {
    it(`${p.name} (${runs[i]} inputs)`, { timeout: 60_000 }, () => {
      fc.assert(p.build(), { numRuns: runs[i] });
    });
  });
});

describe('inputs fuzzing found', () => {
  const ctx: DecodeContext = { timeZone: 'UTC', nowMs: Date.UTC(2020, 0, 16), maxPayloadBytes: 1024 * 1024 };
  const reading = (temperature: string): Buffer =>
    Buffer.from(JSON.stringify({ container_id: 'C01', measurement_time: '2020-01-15 17:59:45', temperature }));

  // The number check backtracked quadratically over a run of digits followed by a non-digit: one
  // 64 KB payload held the event loop for about 6 s, and this 1 MB one for half an hour.
  it('rejects a megabyte of digits ending in a letter as wrong-type, without stalling', () => {
    const result = decodeReading(reading(`${'1'.repeat(1024 * 1024 - 100)}x`), ctx);
    expect(result).toMatchObject({ ok: false, reason: 'wrong-type' });
    checkDecodeResult(result, ctx);
  });

  // Python's repr() writes a character outside the BMP that is not printable as \U and eight hex
  // digits; the tuple parser kept such escapes as written, so the product id arrived altered.
  it('reads the \\U escapes of a Python tuple string as the characters they stand for', () => {
    const tuple = "('C01', '2020-01-15 17:59:45', '\\U00000100\\U000e0001', 5.0, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None)";
    const result = decodeReading(Buffer.from(JSON.stringify({ containerID: 'C01', payload: tuple })), ctx);
    expect(result).toMatchObject({ ok: true, reading: { product_id: '\u0100\u{e0001}' } });
    const tooLarge = decodeReading(Buffer.from(JSON.stringify({ containerID: 'C01', payload: tuple.replace('000e0001', '00110000') })), ctx);
    expect(tooLarge).toMatchObject({ ok: false, reason: 'bad-tuple', detail: expect.stringContaining('bad escape \\U00110000') as unknown });
  });

  // The detail quoted everything after the star, so one bad line could put a whole serial line
  // (up to 1 MB with a large maxLineBytes) into the log and the dead-letter table.
  it('keeps the detail of a sentence with a long tail after its star short', () => {
    const result = SERIAL_FRAMERS.nmea(Buffer.from(`$RFR,C01*${' '.repeat(38)}"${' '.repeat(4000)}x`), ctx);
    expect(result).toMatchObject({ ok: false, reason: 'bad-checksum' });
    checkLineResult(result, ctx);
  });

  it('rejects a serial CSV row whose temperature is 4,000 digits and a letter as wrong-type', () => {
    const row = `C01,2020-01-15 17:59:45,P05,${'9'.repeat(4000)}x,,,,,,,,,,,,,,,,`;
    const result = SERIAL_FRAMERS.csv(Buffer.from(row), ctx);
    expect(result).toMatchObject({ ok: false, reason: 'wrong-type' });
  });
});
