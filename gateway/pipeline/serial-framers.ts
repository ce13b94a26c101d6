/**
 * Serial lines into readings: a bounded line splitter for the byte stream a port delivers, and one
 * decoder per framing (docs/serial.md). Like decodeReading, nothing here throws on device bytes: a
 * line that cannot become a reading comes back as a rejection with a reason and a detail.
 */
import { isUtf8 } from 'node:buffer';
import { REFERENCE_COLUMNS } from '../../schemas/reefer-reading.js';
import { SENTENCE_TALKER, formatChecksum, sentenceChecksum, type SerialFraming } from '../../schemas/serial-sentence.js';
import { decodeReading, readingFromColumns, readingFromObject, type DecodeContext, type DecodeResult } from './decode-reading.js';

export { SERIAL_FRAMINGS, type SerialFraming } from '../../schemas/serial-sentence.js';

/** What the splitter makes of the byte stream. */
export type LineEvent =
  /** A complete line, without its CR/LF or LF ending. */
  | { kind: 'line'; bytes: Buffer }
  /** A line longer than the limit: its first bytes; the rest up to the next newline is discarded. */
  | { kind: 'oversized'; bytes: Buffer; maxLineBytes: number }
  /** What was held of a line when the stream ended before its newline. */
  | { kind: 'partial'; bytes: Buffer };

export interface LineSplitter {
  /** The events the chunk completes, in order; bytes after the last newline are held for the next chunk. */
  push(chunk: Buffer): LineEvent[];
  /** Ends the stream (port closed or gone): the held bytes of an unfinished line, if any, as a partial line. */
  end(): LineEvent | undefined;
  /** Bytes of an unfinished line held now. */
  pendingBytes(): number;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits bytes into lines at LF, dropping a CR before it. Memory stays bounded by `maxLineBytes`:
 * a line that outgrows it is reported once, as soon as it does, and skipped up to its newline, so the
 * next line is read normally.
 */
export function createLineSplitter(options: { maxLineBytes: number }): LineSplitter {
  const max = options.maxLineBytes;
  let held: Buffer[] = [];
  let heldBytes = 0;
  let discarding = false;

  function take(tail: Buffer): Buffer {
    const line = held.length === 0 ? Buffer.from(tail) : Buffer.concat([...held, tail]);
    held = [];
    heldBytes = 0;
    return line;
  }

  return {
    push(chunk) {
      const events: LineEvent[] = [];
      let from = 0;
      while (from < chunk.length) {
        const lf = chunk.indexOf(LF, from);
        if (lf === -1) {
          if (discarding) break;
          const rest = chunk.subarray(from);
          held.push(Buffer.from(rest));
          heldBytes += rest.length;
          // One byte of slack: the CR of a CR/LF ending may arrive before its LF.
          if (heldBytes > max + 1) {
            events.push({ kind: 'oversized', bytes: take(Buffer.alloc(0)).subarray(0, max), maxLineBytes: max });
            discarding = true;
          }
          break;
        }
        const piece = chunk.subarray(from, lf);
        from = lf + 1;
        if (discarding) {
          discarding = false;
          continue;
        }
        let line = take(piece);
        if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
        events.push(line.length > max ? { kind: 'oversized', bytes: line.subarray(0, max), maxLineBytes: max } : { kind: 'line', bytes: line });
      }
      return events;
    },
    end() {
      discarding = false;
      if (heldBytes === 0) return undefined;
      return { kind: 'partial', bytes: take(Buffer.alloc(0)) };
    },
    pendingBytes: () => heldBytes,
  };
}

/** A line that carries no reading and is passed over without a rejection. */
export interface SkippedLine {
  skipped: 'header' | 'blank';
}

export type LineResult = DecodeResult | SkippedLine;

export function isSkipped(result: LineResult): result is SkippedLine {
  return 'skipped' in result;
}

/** Decodes one complete line (without its ending) in the port's framing. */
export type LineDecoder = (line: Buffer, ctx: DecodeContext) => LineResult;

/** One decoder per framing. */
export const SERIAL_FRAMERS: Readonly<Record<SerialFraming, LineDecoder>> = {
  json: (line, ctx) => withText(line, (text) => decodeJsonLine(line, text, ctx)),
  csv: (line, ctx) => withText(line, (text) => decodeCsvLine(text, ctx)),
  nmea: (line, ctx) => withText(line, (text) => decodeSentence(text, ctx)),
};

/** What the splitter's oversized and partial events become in the pipeline. */
export function rejectLineEvent(event: Exclude<LineEvent, { kind: 'line' }>): DecodeResult {
  if (event.kind === 'oversized') {
    return {
      ok: false,
      reason: 'oversized',
      detail: `line longer than ${event.maxLineBytes} bytes (serial maxLineBytes); discarded up to the next newline`,
    };
  }
  return {
    ok: false,
    reason: 'partial-line',
    detail: `line of ${event.bytes.length} bytes ${preview(event.bytes.toString('utf8'))} ended without a newline when the port closed or went away`,
  };
}

const DETAIL_CHARS = 80;
const TAB = 0x09;
const DEL = 0x7f;

/** Where the first control character is; tab is the only one a text line may hold (CR left with the ending). */
function controlCharacterAt(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== TAB) || code === DEL) return i;
  }
  return -1;
}

function withText(line: Buffer, decode: (text: string) => LineResult): LineResult {
  if (!isUtf8(line)) {
    return { ok: false, reason: 'line-noise', detail: `line of ${line.length} bytes is not UTF-8 text (${hexPreview(line)})` };
  }
  let text = line.toString('utf8');
  // Some terminals and Windows tools start UTF-8 text with a byte order mark.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const at = controlCharacterAt(text);
  if (at !== -1) {
    const code = text.charCodeAt(at).toString(16).padStart(2, '0');
    return { ok: false, reason: 'line-noise', detail: `line holds control character 0x${code} at offset ${at} (${hexPreview(line)})` };
  }
  if (text.trim() === '') return { skipped: 'blank' };
  return decode(text);
}

function decodeJsonLine(line: Buffer, text: string, ctx: DecodeContext): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: 'malformed-json', detail: `line ${preview(text)} is not JSON (${why}); expected one JSON object per line` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: 'unknown-form', detail: `line ${preview(text)} is JSON but not an object; expected one reading object per line` };
  }
  // The reference envelope is recognised, and checked, exactly as over MQTT.
  if (Object.hasOwn(parsed, 'payload')) return decodeReading(line, ctx);
  return readingFromObject(parsed as Record<string, unknown>, ctx, 'canonical-json');
}

function decodeCsvLine(text: string, ctx: DecodeContext): LineResult {
  const row = parseCsvRow(text);
  if (!row.ok) return { ok: false, reason: 'bad-tuple', detail: `CSV row ${preview(text)}: ${row.detail}` };
  if (row.values[0] === REFERENCE_COLUMNS[0]) return { skipped: 'header' };
  return readingFromColumns(row.values, ctx, 'csv-row');
}

const CHECKSUM = /^[0-9A-Fa-f]{2}$/;

function decodeSentence(text: string, ctx: DecodeContext): DecodeResult {
  // Like NMEA receivers, resynchronise on the start delimiter: noise before it does not cost the sentence.
  const start = text.indexOf('$');
  if (start === -1) {
    return { ok: false, reason: 'unknown-form', detail: `line ${preview(text)} is no sentence; expected $${SENTENCE_TALKER},<20 values>*HH` };
  }
  const sentence = text.slice(start).trimEnd();
  const star = sentence.lastIndexOf('*');
  if (star === -1) {
    return { ok: false, reason: 'bad-checksum', detail: `sentence ${preview(sentence)} has no checksum; expected *HH after the last value` };
  }
  const written = sentence.slice(star + 1);
  const body = sentence.slice(1, star);
  const computed = formatChecksum(sentenceChecksum(Buffer.from(body, 'utf8')));
  if (!CHECKSUM.test(written)) {
    return { ok: false, reason: 'bad-checksum', detail: `sentence ${preview(sentence)} ends in ${preview(`*${written}`)}; expected two hex digits (*${computed})` };
  }
  if (written.toUpperCase() !== computed) {
    return { ok: false, reason: 'bad-checksum', detail: `sentence ${preview(sentence)} has checksum ${written}, its bytes give ${computed}` };
  }
  const comma = body.indexOf(',');
  const talker = comma === -1 ? body : body.slice(0, comma);
  if (talker !== SENTENCE_TALKER) {
    return { ok: false, reason: 'unknown-form', detail: `sentence talker ${preview(talker)} is not ${SENTENCE_TALKER}; expected $${SENTENCE_TALKER},<20 values>*HH` };
  }
  const row = parseCsvRow(comma === -1 ? '' : body.slice(comma + 1));
  if (!row.ok) return { ok: false, reason: 'bad-tuple', detail: `sentence ${preview(sentence)}: ${row.detail}` };
  return readingFromColumns(row.values, ctx, 'nmea-sentence');
}

type CsvRow = { ok: true; values: string[] } | { ok: false; detail: string };

/**
 * One CSV row (RFC 4180 without line breaks in fields): comma-separated, fields optionally in double
 * quotes with "" for a quote inside. Space around a field is dropped unless it is quoted.
 */
export function parseCsvRow(text: string): CsvRow {
  const values: string[] = [];
  let i = 0;
  for (;;) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q === -1) return { ok: false, detail: `unterminated quoted field at offset ${i}` };
        value += text.slice(j, q);
        if (text[q + 1] === '"') {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      while (text[i] === ' ' || text[i] === '\t') i++;
      if (i < text.length && text[i] !== ',') return { ok: false, detail: `unexpected ${JSON.stringify(text[i])} after a quoted field at offset ${i}` };
      values.push(value);
    } else {
      const comma = text.indexOf(',', i);
      const end = comma === -1 ? text.length : comma;
      const value = text.slice(i, end).trim();
      if (value.includes('"')) return { ok: false, detail: `stray quote in unquoted field at offset ${i}` };
      values.push(value);
      i = end;
    }
    if (i >= text.length) return { ok: true, values };
    i++; // the comma
  }
}

function preview(text: string): string {
  return JSON.stringify(text.length > DETAIL_CHARS ? `${text.slice(0, DETAIL_CHARS - 1)}…` : text);
}

function hexPreview(bytes: Buffer): string {
  const shown = bytes.subarray(0, 16).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  return bytes.length > 16 ? `${shown} …` : shown;
}
