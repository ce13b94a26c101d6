/**
 * Property-based checks of every decoder and framer that device bytes pass through: decodeReading
 * (canonical JSON, the reference envelope with an object or a tuple string, Avro single-object),
 * readingFromColumns / readingFromObject, the serial line splitter and its json, csv and nmea framers,
 * parseCsvRow and decodeSingleObject.
 *
 * Shared by test/unit/fuzz-decoders.test.ts (a bounded number of runs in CI) and
 * test/fuzz/fuzz-decoders.ts (millions, on demand), so both check exactly the same things:
 * - whatever the input, nothing throws, and a rejection carries a known reason and a short detail;
 * - whatever is accepted is a plausible reading (ranges, types, container id, time window);
 * - every valid reading, written in any accepted way, decodes back to itself.
 *
 * Inputs are bounded in size, so a run that does not end points at a hang in a decoder.
 */
import assert from 'node:assert/strict';
import { Buffer, isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { encodePayload, PAYLOAD_FORMS } from '../../device-sim/payload-forms.js';
import { encodeLine } from '../../device-sim/serial-forms.js';
import {
  decodeReading,
  FIELD_RANGES,
  readingFromColumns,
  readingFromObject,
  REJECT_REASONS,
  type DecodeContext,
  type DecodeResult,
  type PayloadForm,
} from '../../gateway/pipeline/decode-reading.js';
import {
  createLineSplitter,
  isSkipped,
  parseCsvRow,
  rejectLineEvent,
  SERIAL_FRAMERS,
  type LineEvent,
  type LineResult,
} from '../../gateway/pipeline/serial-framers.js';
import {
  decodeSingleObject,
  encodeReadingSingleObject,
  encodeTelemetrySingleObject,
  READING_FINGERPRINT,
  SINGLE_OBJECT_MAGIC,
  TELEMETRY_FINGERPRINT,
} from '../../schemas/avro.js';
import { FIELD_ALIASES, REFERENCE_COLUMNS, type ReeferReading } from '../../schemas/reefer-reading.js';
import { formatChecksum, sentenceChecksum, SERIAL_FRAMINGS, type SerialFraming } from '../../schemas/serial-sentence.js';

export interface DecoderProperty {
  /** The behaviour it proves, worded as a test name. */
  readonly name: string;
  /** Share of the runs it gets, relative to the others: costlier or narrower properties get fewer. */
  readonly weight: number;
  /** Built on demand, so a fuzz run of one property does not build the rest. */
  readonly build: () => fc.IProperty<unknown>;
}

/** Splits `total` runs over the properties by weight; every property gets at least one. */
export function runsPerProperty(total: number, properties: readonly DecoderProperty[] = DECODER_PROPERTIES): number[] {
  const weights = properties.reduce((sum, p) => sum + p.weight, 0);
  return properties.map((p) => Math.max(1, Math.round((total * p.weight) / weights)));
}

// ---------------------------------------------------------------------------------------------
// What every result must look like

const EARLIEST_MS = Date.UTC(2000, 0, 1);
const DAY_MS = 86_400_000;
/** Details go into logs and the dead-letter table: previews of the input, never the input itself. */
const MAX_DETAIL_CHARS = 512;
const PAYLOAD_FORM_NAMES: ReadonlySet<string> = new Set<PayloadForm>([
  'canonical-json',
  'envelope-object',
  'envelope-tuple',
  'avro',
  'csv-row',
  'nmea-sentence',
]);
const CONTAINER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const INT_FIELDS: ReadonlySet<string> = new Set(['content_type', 'defrost_cycle']);
const BOOLEAN_FIELDS = ['fan_1', 'fan_2', 'fan_3', 'maintenance_required'] as const;

/** Throws unless `result` is an acceptance of a plausible reading or a rejection with a known reason. */
export function checkDecodeResult(result: DecodeResult, ctx: DecodeContext): void {
  assert.equal(typeof result, 'object');
  if (!result.ok) {
    assert.ok(REJECT_REASONS.includes(result.reason), `unknown reject reason ${JSON.stringify(result.reason)}`);
    assert.equal(typeof result.detail, 'string');
    assert.ok(result.detail.trim().length > 0, `empty detail for ${result.reason}`);
    assert.ok(result.detail.length <= MAX_DETAIL_CHARS, `${result.reason} detail of ${result.detail.length} characters: ${result.detail.slice(0, 200)}…`);
    return;
  }
  assert.ok(PAYLOAD_FORM_NAMES.has(result.form), `unknown form ${result.form}`);
  const r = result.reading;
  assert.deepEqual(Object.keys(r), [...REFERENCE_COLUMNS]);
  assert.match(r.container_id, CONTAINER_ID);
  if (ctx.topicContainerId !== undefined) assert.equal(r.container_id, ctx.topicContainerId);
  assert.ok(Number.isInteger(r.measurement_time), `measurement_time ${r.measurement_time}`);
  assert.ok(r.measurement_time >= EARLIEST_MS && r.measurement_time <= ctx.nowMs + DAY_MS, `measurement_time ${r.measurement_time} outside the window`);
  assert.ok(r.product_id === null || (typeof r.product_id === 'string' && r.product_id.trim() !== ''), `product_id ${JSON.stringify(r.product_id)}`);
  assert.equal(typeof r.temperature, 'number');
  for (const [field, range] of Object.entries(FIELD_RANGES)) {
    const value = r[field as keyof ReeferReading];
    if (value === null && field !== 'temperature') continue;
    assert.equal(typeof value, 'number', `${field} ${String(value)}`);
    const n = value as number;
    assert.ok(Number.isFinite(n) && n >= range.min && n <= range.max, `${field} ${n} outside ${range.min}..${range.max}`);
    assert.ok(!Object.is(n, -0), `${field} is -0`);
    if (INT_FIELDS.has(field)) assert.ok(Number.isInteger(n), `${field} ${n} is not an integer`);
  }
  for (const field of BOOLEAN_FIELDS) assert.ok(r[field] === null || typeof r[field] === 'boolean', `${field} ${String(r[field])}`);
}

export function checkLineResult(result: LineResult, ctx: DecodeContext): void {
  if (isSkipped(result)) {
    assert.ok(result.skipped === 'blank' || result.skipped === 'header', `skipped ${String(result.skipped)}`);
    return;
  }
  checkDecodeResult(result, ctx);
}

/** The reading a decoder must give for `r`: -0 is 0, and a blank product id is not reported. */
function canonicalReading(r: ReeferReading): ReeferReading {
  const out = { ...r } as Record<string, unknown>;
  for (const [key, value] of Object.entries(out)) if (value === 0) out[key] = 0;
  if (typeof r.product_id === 'string' && r.product_id.trim() === '') out.product_id = null;
  return out as unknown as ReeferReading;
}

function expectReading(result: LineResult, expected: ReeferReading, form: PayloadForm, encoded: () => string): void {
  if (isSkipped(result) || !result.ok) {
    assert.fail(`valid reading rejected: ${JSON.stringify(result)}\n  encoded as ${encoded()}`);
  }
  assert.equal(result.form, form);
  assert.deepStrictEqual(result.reading, expected, `decoded from ${encoded()}`);
}

// ---------------------------------------------------------------------------------------------
// Choices: how a valid reading is written (which spelling, quoting, time format, …)

/**
 * A list of numbers that the encoders below consume to choose how to write each value. Generated
 * by fast-check, so a failure shrinks towards all zeros: the plainest way of writing the reading.
 */
class Choices {
  private next = 0;
  constructor(private readonly values: readonly number[]) {}
  pick(n: number): number {
    const v = this.values[this.next++];
    return v === undefined ? 0 : v % n;
  }
  chance(oneIn: number): boolean {
    return this.pick(oneIn) === 1;
  }
  of<T>(items: readonly T[]): T {
    return items[this.pick(items.length)]!;
  }
}

const arbChoices = fc.array(fc.nat({ max: 0xffff }), { minLength: 192, maxLength: 192 }).map((v) => new Choices(v));

// ---------------------------------------------------------------------------------------------
// Valid readings

/** Which characters a product id may hold, by where it is written. */
type TextKind =
  /** Any UTF-16 string, lone surrogates too: JSON escapes what UTF-8 cannot carry. */
  | 'json'
  /** Well-formed Unicode: Avro strings are UTF-8. */
  | 'unicode'
  /** Well-formed Unicode without control characters other than tab: a serial line's text. */
  | 'line';

const oneCodePoint = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 });
const oneCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const lineCodePoint = oneCodePoint.filter((c) => {
  const code = c.codePointAt(0)!;
  return code === 0x09 || (code >= 0x20 && code !== 0x7f);
});
/** Characters that quoting, escaping and the sentence framing have to get right. */
const trickyChar = fc.constantFrom('"', "'", ',', '\\', '$', '*', ' ', '\t', '(', ')', '\u00a0', '\ufeff', '\u2028', 'é', '😀');

function arbText(kind: TextKind, maxLength: number): fc.Arbitrary<string> {
  const unit =
    kind === 'json' ? fc.oneof(oneCodePoint, oneCodeUnit, trickyChar) : kind === 'unicode' ? fc.oneof(oneCodePoint, trickyChar) : fc.oneof(lineCodePoint, trickyChar);
  return fc.string({ unit, maxLength, size: 'max' });
}

const containerIdChars = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-'];
const arbContainerId = fc.string({ unit: fc.constantFrom(...containerIdChars), minLength: 1, maxLength: 64, size: 'max' });

function arbDouble(field: keyof typeof FIELD_RANGES): fc.Arbitrary<number> {
  const { min, max } = FIELD_RANGES[field];
  return fc.oneof(
    { weight: 4, arbitrary: fc.double({ min, max, noNaN: true }) },
    // Two decimals, as sensors report them.
    { weight: 2, arbitrary: fc.integer({ min: min * 100, max: max * 100 }).map((n) => n / 100) },
    { weight: 1, arbitrary: fc.constantFrom(min, max, 0, -0).filter((n) => n >= min && n <= max) },
  );
}

const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(arb, { nil: null, freq: 6 });

interface TimedReading {
  reading: ReeferReading;
  /** The gateway clock: measurement_time is at most 24 h after it. */
  nowMs: number;
}

/**
 * Valid readings: every value within FIELD_RANGES, measurement times from 2000-01-01 up to 24 h
 * after the gateway clock, optional values sometimes absent.
 */
function arbValidReading(text: TextKind, options: { wholeSeconds?: boolean } = {}): fc.Arbitrary<TimedReading> {
  const time = fc.integer({ min: EARLIEST_MS, max: Date.UTC(2099, 11, 31) }).map((ms) => (options.wholeSeconds ? ms - (ms % 1000) : ms));
  return fc
    .record({
      reading: fc.record({
        container_id: arbContainerId,
        measurement_time: time,
        product_id: optional(arbText(text, 24)),
        temperature: arbDouble('temperature'),
        target_temperature: optional(arbDouble('target_temperature')),
        ambient_temperature: optional(arbDouble('ambient_temperature')),
        kilowatts: optional(arbDouble('kilowatts')),
        time_door_open: optional(arbDouble('time_door_open')),
        content_type: optional(fc.integer({ min: FIELD_RANGES.content_type.min, max: FIELD_RANGES.content_type.max })),
        defrost_cycle: optional(fc.integer({ min: FIELD_RANGES.defrost_cycle.min, max: FIELD_RANGES.defrost_cycle.max })),
        oxygen_level: optional(arbDouble('oxygen_level')),
        nitrogen_level: optional(arbDouble('nitrogen_level')),
        humidity_level: optional(arbDouble('humidity_level')),
        carbon_dioxide_level: optional(arbDouble('carbon_dioxide_level')),
        fan_1: optional(fc.boolean()),
        fan_2: optional(fc.boolean()),
        fan_3: optional(fc.boolean()),
        latitude: optional(arbDouble('latitude')),
        longitude: optional(arbDouble('longitude')),
        maintenance_required: optional(fc.boolean()),
      }),
      // How far the gateway clock is past the measurement: up to 24 h behind it, or years ahead.
      clockAheadMs: fc.oneof(fc.integer({ min: -DAY_MS, max: DAY_MS }), fc.integer({ min: 0, max: 20 * 365 * DAY_MS })),
    })
    .map(({ reading, clockAheadMs }) => ({ reading, nowMs: reading.measurement_time + clockAheadMs }));
}

// ---------------------------------------------------------------------------------------------
// Writing values the ways devices do

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Zones whose zone-less wall times equal UTC. */
const UTC_ZONES = ['UTC', 'Etc/UTC', 'GMT', ''];
/** Zones with DST, half- and quarter-hour offsets, a skipped day (Apia 2011) and negative DST (Dublin). */
const SITE_ZONES = [
  'Europe/Amsterdam',
  'America/New_York',
  'America/St_Johns',
  'America/Sao_Paulo',
  'Australia/Lord_Howe',
  'Asia/Kathmandu',
  'Asia/Tehran',
  'Pacific/Chatham',
  'Pacific/Apia',
  'Africa/Casablanca',
  'Europe/Dublin',
  'Antarctica/Troll',
];

/** `YYYY-MM-DD?HH:MM[:SS[.fff]]` of a wall time given as if it were UTC, with the fraction exact. */
function wallText(wallMs: number, c: Choices): string {
  const d = new Date(wallMs);
  const date = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
  const sep = c.of(['T', ' ', 't']);
  const hm = `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}`;
  const ms = d.getUTCMilliseconds();
  const s = d.getUTCSeconds();
  if (ms === 0 && s === 0 && c.chance(4)) return `${date}${sep}${hm}`;
  let fraction = '';
  if (ms !== 0 || c.chance(3)) {
    const digits = pad(ms, 3);
    switch (c.pick(3)) {
      case 0:
        fraction = digits;
        break;
      case 1:
        // Digits past the millisecond are cut, not rounded.
        fraction = digits + String(c.pick(1_000_000));
        break;
      default:
        fraction = digits.replace(/0+$/, '') || '0';
    }
    fraction = `${c.of(['.', ','])}${fraction}`;
  }
  return `${date}${sep}${hm}:${pad(s, 2)}${fraction}`;
}

/** A timestamp string for `ms`; zone-less only when the site's zone is UTC. */
function timeText(ms: number, siteIsUtc: boolean, c: Choices): string {
  const space = c.chance(5) ? c.of([' ', '  ', '\t']) : '';
  switch (c.pick(siteIsUtc ? 5 : 4)) {
    case 0:
      return `${wallText(ms, c)}${space}${c.of(['Z', 'z'])}`;
    case 1:
      return String(ms);
    case 2:
      return pad(ms, 13 + c.pick(3));
    case 3: {
      const offsetMin = c.pick(2 * 24 * 60 - 1) - (24 * 60 - 1);
      const sign = offsetMin < 0 || (offsetMin === 0 && c.chance(2)) ? '-' : '+';
      const hh = pad(Math.floor(Math.abs(offsetMin) / 60), 2);
      const mm = pad(Math.abs(offsetMin) % 60, 2);
      const zone = mm === '00' && c.chance(3) ? `${sign}${hh}` : `${sign}${hh}${c.of([':', ''])}${mm}`;
      return `${wallText(ms + offsetMin * 60_000, c)}${space}${zone}`;
    }
    default:
      return wallText(ms, c);
  }
}

/** A number as text that Number() and the decoders read back exactly. */
function numberText(x: number, c: Choices): string {
  const plain = String(x);
  switch (c.pick(6)) {
    case 1:
      return x.toExponential();
    case 2:
      return plain.startsWith('-') ? plain : `+${plain}`;
    case 3:
      return Number.isInteger(x) && !plain.includes('e') ? `${plain}.0` : plain;
    case 4:
      return Number.isInteger(x) && !plain.includes('e') ? `${plain}e0` : plain;
    default:
      return plain;
  }
}

/** Python's float repr: `5.0`, `1e-07`, `1.5e+16`. */
function pythonFloat(x: number): string {
  const js = String(x);
  const e = js.indexOf('e');
  if (e !== -1) {
    const exp = Number(js.slice(e + 1));
    return `${js.slice(0, e)}e${exp < 0 ? '-' : '+'}${pad(Math.abs(exp), 2)}`;
  }
  return Number.isInteger(x) ? `${js}.0` : js;
}

const PYTHON_NAMED_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A Python string literal for `s`, as repr() writes it or with any character escaped the other ways
 * Python reads: \xhh, \uhhhh, \Uhhhhhhhh, and surrogate pairs as two \u escapes.
 */
function pythonString(s: string, c: Choices): string {
  const quote = c.chance(3) || (s.includes("'") && !s.includes('"')) ? '"' : "'";
  const mode = c.pick(4);
  let out = quote;
  let index = 0;
  for (const ch of s) {
    index += 1;
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') {
      out += `\\${ch}`;
      continue;
    }
    const named = PYTHON_NAMED_ESCAPES[ch];
    const printable = cp >= 0x20 && cp !== 0x7f && !(cp >= 0x80 && cp <= 0xa0) && !(cp >= 0xd800 && cp <= 0xdfff);
    const escapeIt = mode === 3 || (mode === 2 && cp > 0x7e) || (mode === 1 && !printable);
    if (!escapeIt) {
      out += ch;
    } else if (named !== undefined && index % 2 === 0) {
      out += named;
    } else if (cp < 0x100 && index % 3 !== 0) {
      out += `\\x${cp.toString(16).padStart(2, '0')}`;
    } else if (cp < 0x10000 && index % 3 !== 1) {
      const hex = cp.toString(16).padStart(4, '0');
      out += `\\u${index % 2 === 0 ? hex.toUpperCase() : hex}`;
    } else if (cp >= 0x10000 && index % 3 === 2) {
      out += ch.split('').map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    } else {
      out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
  }
  return out + quote;
}

type Column = (typeof REFERENCE_COLUMNS)[number];
const REFERENCE_SPELLING: Readonly<Partial<Record<Column, string>>> = Object.fromEntries(
  Object.entries(FIELD_ALIASES).map(([alias, name]) => [name, alias]),
);

/** A field name in the canonical or the reference spelling. */
function fieldName(column: Column, c: Choices): string {
  const alias = REFERENCE_SPELLING[column];
  return alias !== undefined && c.chance(2) ? alias : column;
}

function jsonValue(column: Column, value: unknown, siteIsUtc: boolean, c: Choices): unknown {
  if (value === null) return c.of([null, null, '', '  ']);
  if (column === 'measurement_time') {
    const ms = value as number;
    switch (c.pick(4)) {
      case 0:
        return ms;
      case 1:
        // Fractions of a millisecond are rounded away.
        return ms + c.of([0.25, -0.25]);
      default:
        return timeText(ms, siteIsUtc, c);
    }
  }
  if (typeof value === 'boolean') {
    switch (c.pick(4)) {
      case 1:
        return value ? 1 : 0;
      case 2:
        return value ? 'true' : 'false';
      case 3:
        return c.of(value ? ['TRUE', ' True ', '1'] : ['FALSE', ' False ', '0']);
      default:
        return value;
    }
  }
  if (typeof value === 'number') {
    return c.pick(3) === 0 ? numberText(value, c) : c.chance(4) ? ` ${numberText(value, c)}\t` : value;
  }
  return value;
}

/** The reading as a JSON object of reference fields; `omitContainerId` leaves it to the envelope. */
function readingObject(r: ReeferReading, siteIsUtc: boolean, c: Choices, omitContainerId: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const column of REFERENCE_COLUMNS) {
    if (column === 'container_id' && omitContainerId) continue;
    const value = r[column];
    // A value not reported may be left out altogether.
    if (value === null && c.chance(3)) continue;
    out[fieldName(column, c)] = jsonValue(column, value, siteIsUtc, c);
  }
  // Unknown keys are ignored; a canonical name wins over its alias.
  if (c.chance(4)) out.firmware = c.of(['1.2.3', 42, null, { nested: [1, 2] }]);
  if (Object.hasOwn(out, 'fan_1') && c.chance(6)) out.vent_1 = 'not a boolean';
  return out;
}

function tupleValue(column: Column, value: unknown, siteIsUtc: boolean, c: Choices): string {
  if (value === null) return c.of(['None', 'None', "''", '" "']);
  if (column === 'measurement_time') {
    return c.pick(4) === 0 ? String(value) : pythonString(timeText(value as number, siteIsUtc, c), c);
  }
  if (typeof value === 'boolean') return c.of(value ? ['True', '1', "'true'"] : ['False', '0', "'False'"]);
  if (typeof value === 'number') {
    switch (c.pick(4)) {
      case 0:
        return INT_FIELDS.has(column) ? String(value) : pythonFloat(value);
      case 1:
        return pythonString(numberText(value, c), c);
      default:
        return numberText(value, c);
    }
  }
  return pythonString(value as string, c);
}

const TUPLE_SEPARATORS = [', ', ',', ' , ', ',\n ', '\t,'];

/** The 20 values as a Python tuple (or list) literal, as str(tuple) writes it and looser. */
function tupleText(r: ReeferReading, siteIsUtc: boolean, c: Choices): string {
  const values = REFERENCE_COLUMNS.map((column) => tupleValue(column, r[column], siteIsUtc, c));
  const [open, close] = c.chance(5) ? ['[', ']'] : ['(', ')'];
  const sep = c.pick(3) === 0 ? c.of(TUPLE_SEPARATORS) : ', ';
  const trailing = c.chance(5) ? ',' : '';
  const space = c.chance(5) ? ' ' : '';
  return `${space}${open}${space}${values.join(sep)}${trailing}${space}${close}${space}`;
}

function csvCell(column: Column, value: unknown, siteIsUtc: boolean, c: Choices): string {
  if (value === null) return c.of(['', '', ' ', '""']);
  let text: string;
  if (column === 'measurement_time') text = timeText(value as number, siteIsUtc, c);
  else if (typeof value === 'boolean') text = c.of(value ? ['True', '1', 'true', 'TRUE'] : ['False', '0', 'false', 'FALSE']);
  else if (typeof value === 'number') text = numberText(value, c);
  else text = value as string;
  const mustQuote = /[",]/.test(text) || text.trim() !== text || text === '';
  const cell = mustQuote || c.chance(5) ? `"${text.replace(/"/g, '""')}"` : text;
  // Space and tabs around a cell are dropped.
  return c.chance(6) ? `${c.of([' ', '\t', '  '])}${cell}${c.of(['', ' ', '\t'])}` : cell;
}

function csvText(r: ReeferReading, siteIsUtc: boolean, c: Choices): string {
  return REFERENCE_COLUMNS.map((column) => csvCell(column, r[column], siteIsUtc, c)).join(',');
}

/** Text without `$` or control characters, that a receiver must skip before the sentence. */
const arbLineNoise = fc.string({ unit: lineCodePoint.filter((ch) => ch !== '$'), maxLength: 12, size: 'max' });

function sentenceText(r: ReeferReading, siteIsUtc: boolean, c: Choices, noise: string): string {
  const body = `RFR,${csvText(r, siteIsUtc, c)}`;
  const sum = formatChecksum(sentenceChecksum(Buffer.from(body, 'utf8')));
  const written = c.chance(3) ? sum.toLowerCase() : sum;
  return `${c.chance(3) ? noise : ''}$${body}*${written}${c.chance(5) ? c.of([' ', '\t', '   ']) : ''}`;
}

/** JSON text that a serial line may carry: DEL escaped like the other control characters. */
function jsonLineText(value: unknown): string {
  return JSON.stringify(value).replace(/\u007f/g, '\\u007f');
}

// ---------------------------------------------------------------------------------------------
// Contexts

function roundTripContext(nowMs: number, containerId: string, c: Choices): { ctx: DecodeContext; siteIsUtc: boolean } {
  const timeZone = c.pick(3) === 0 ? c.of(SITE_ZONES) : c.of(UTC_ZONES);
  return {
    ctx: {
      timeZone,
      nowMs,
      maxPayloadBytes: 64 * 1024,
      topicContainerId: c.chance(2) ? containerId : undefined,
    },
    siteIsUtc: UTC_ZONES.includes(timeZone),
  };
}

/** Any context a gateway may run with, including tiny payload limits and an unknown zone. */
const arbContext: fc.Arbitrary<DecodeContext> = fc.record(
  {
    timeZone: fc.constantFrom('UTC', '', ...SITE_ZONES, 'Mars/Olympus_Mons'),
    nowMs: fc.oneof(fc.integer({ min: EARLIEST_MS - DAY_MS, max: Date.UTC(2100, 0, 1) }), fc.constant(Date.UTC(2020, 0, 16))),
    maxPayloadBytes: fc.oneof({ weight: 9, arbitrary: fc.constant(64 * 1024) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 512 }) }),
    topicContainerId: fc.option(fc.oneof(arbContainerId, fc.constantFrom('C01', 'C0001')), { nil: undefined }),
  },
  { requiredKeys: ['timeZone', 'nowMs', 'maxPayloadBytes'] },
);

// ---------------------------------------------------------------------------------------------
// Valid encodings, as a list of generators shared by the round-trip and the mutation properties

interface Encoded {
  /** What went over the wire: an MQTT payload, or one serial line without its ending. */
  bytes: Buffer;
  /** decodeReading for MQTT payloads, a framing for serial lines. */
  via: 'mqtt' | SerialFraming;
  form: PayloadForm;
  expected: ReeferReading;
  ctx: DecodeContext;
}

type Encoder = (t: TimedReading, c: Choices, noise: string) => Encoded;

const ENCODERS: Readonly<Record<string, { text: TextKind; encode: Encoder }>> = {
  'canonical JSON': {
    text: 'json',
    encode({ reading, nowMs }, c) {
      const { ctx, siteIsUtc } = roundTripContext(nowMs, reading.container_id, c);
      const text = JSON.stringify(readingObject(reading, siteIsUtc, c, false));
      const bytes = Buffer.from(c.chance(8) ? `\ufeff${text}` : text, 'utf8');
      return { bytes, via: 'mqtt', form: 'canonical-json', expected: canonicalReading(reading), ctx };
    },
  },
  'reference envelope with an object payload': {
    text: 'json',
    encode({ reading, nowMs }, c) {
      const { ctx, siteIsUtc } = roundTripContext(nowMs, reading.container_id, c);
      const inEnvelope = c.pick(3);
      const envelope: Record<string, unknown> = {
        containerID: inEnvelope === 2 ? null : reading.container_id,
        timestamp: c.chance(2) ? 'whatever the device thinks' : timeText(reading.measurement_time, true, c),
        type: 'ReeferTelemetries',
        payload: readingObject(reading, siteIsUtc, c, inEnvelope === 1),
      };
      if (inEnvelope === 2 && c.chance(2)) delete envelope.containerID;
      const bytes = Buffer.from(JSON.stringify(envelope), 'utf8');
      return { bytes, via: 'mqtt', form: 'envelope-object', expected: canonicalReading(reading), ctx };
    },
  },
  'reference envelope with a tuple string': {
    text: 'json',
    encode({ reading, nowMs }, c) {
      const { ctx, siteIsUtc } = roundTripContext(nowMs, reading.container_id, c);
      const envelope = { containerID: c.chance(4) ? null : reading.container_id, type: 'ReeferTelemetries', payload: tupleText(reading, siteIsUtc, c) };
      const bytes = Buffer.from(JSON.stringify(envelope), 'utf8');
      return { bytes, via: 'mqtt', form: 'envelope-tuple', expected: canonicalReading(reading), ctx };
    },
  },
  'Avro single-object': {
    text: 'unicode',
    encode({ reading, nowMs }, c) {
      const { ctx } = roundTripContext(nowMs, reading.container_id, c);
      const bytes = c.chance(3)
        ? encodeTelemetrySingleObject({ ...reading, gateway_id: 'gw-upstream', seq: c.pick(1_000_000), transport: 'mqtt', received_time: nowMs })
        : encodeReadingSingleObject(reading);
      return { bytes, via: 'mqtt', form: 'avro', expected: canonicalReading(reading), ctx };
    },
  },
  'serial JSON line': {
    text: 'json',
    encode({ reading, nowMs }, c) {
      const { ctx, siteIsUtc } = roundTripContext(nowMs, reading.container_id, c);
      const bytes = Buffer.from(jsonLineText(readingObject(reading, siteIsUtc, c, false)), 'utf8');
      return { bytes, via: 'json', form: 'canonical-json', expected: canonicalReading(reading), ctx };
    },
  },
  'serial CSV row': {
    text: 'line',
    encode({ reading, nowMs }, c) {
      const { ctx, siteIsUtc } = roundTripContext(nowMs, reading.container_id, c);
      const bytes = Buffer.from(csvText(reading, siteIsUtc, c), 'utf8');
      return { bytes, via: 'csv', form: 'csv-row', expected: canonicalReading(reading), ctx };
    },
  },
  'checksummed sentence': {
    text: 'line',
    encode({ reading, nowMs }, c, noise) {
      const { ctx, siteIsUtc } = roundTripContext(nowMs, reading.container_id, c);
      const bytes = Buffer.from(sentenceText(reading, siteIsUtc, c, noise), 'utf8');
      return { bytes, via: 'nmea', form: 'nmea-sentence', expected: canonicalReading(reading), ctx };
    },
  },
};

function decodeEncoded(e: { bytes: Buffer; via: Encoded['via'] }, ctx: DecodeContext): LineResult {
  return e.via === 'mqtt' ? decodeReading(e.bytes, ctx) : SERIAL_FRAMERS[e.via](e.bytes, ctx);
}

const showBytes = (bytes: Buffer): string => (isUtf8(bytes) ? JSON.stringify(bytes.toString('utf8')) : bytes.toString('hex'));

function arbEncoded(name: string): fc.Arbitrary<Encoded> {
  const { text, encode } = ENCODERS[name]!;
  return fc.tuple(arbValidReading(text), arbChoices, arbLineNoise).map(([t, c, noise]) => encode(t, c, noise));
}

const arbAnyEncoded: fc.Arbitrary<Encoded> = fc.oneof(...Object.keys(ENCODERS).map(arbEncoded));

// ---------------------------------------------------------------------------------------------
// Mutations

type Mutation = { op: number; at: number; length: number; bytes: Uint8Array };

/** Bytes that mean something to one of the formats. */
const STRUCTURAL_BYTES = [...Buffer.from('{}[]()"\',:\\$*.-+eE0 \t\r\n', 'latin1'), 0x00, 0x7f, 0xc3, 0x01, 0xff, 0xe2, 0x80];
const arbMutationByte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...STRUCTURAL_BYTES));
const arbMutations = fc.array(
  fc.record({
    op: fc.integer({ min: 0, max: 6 }),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 16 }),
    bytes: fc.array(arbMutationByte, { minLength: 1, maxLength: 8 }).map((b) => Uint8Array.from(b)),
  }),
  { minLength: 1, maxLength: 6 },
);

/** Flips, overwrites, deletes, inserts, truncates, duplicates and swaps bytes, like a noisy link. */
function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    const byte = m.bytes[0]!;
    switch (m.op) {
      case 0:
        if (at < b.length) b[at] = b[at]! ^ (1 << (byte % 8));
        break;
      case 1:
        if (at < b.length) b[at] = byte;
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 4:
        b = b.subarray(0, at);
        break;
      case 5:
        b = Buffer.concat([b.subarray(0, at + m.length), b.subarray(at, at + m.length), b.subarray(at + m.length)]);
        break;
      default: {
        const other = b.length === 0 ? 0 : byte % b.length;
        if (at < b.length && other < b.length) [b[at], b[other]] = [b[other]!, b[at]!];
      }
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Hostile input

const arbHostileString = fc.oneof(
  fc.string({ unit: fc.oneof(oneCodePoint, oneCodeUnit, trickyChar), maxLength: 40, size: 'max' }),
  fc.constantFrom('', ' ', 'nan', 'NaN', 'inf', '-inf', 'Infinity', '1e400', '-1e400', '0x10', '1_000', '١٢', '5,02', '+', '.', 'e5', '--1', '2020-02-30 00:00:00', '2019-12-31T23:59:59Z', '2020-01-15 24:00:00', '2020-01-15T17:59:45+24:00', '9999999999999999', 'true', 'None'),
  fc.double().map(String),
  fc.integer().map(String),
  fc.integer({ min: EARLIEST_MS - DAY_MS, max: Date.UTC(2101, 0, 1) }).map((ms) => new Date(ms).toISOString()),
);

/** JSON values a device could send in a field: the right type, the wrong type, or out of range. */
const arbHostileJsonValue: fc.Arbitrary<unknown> = fc.oneof(
  arbHostileString,
  fc.double(),
  fc.integer({ min: -2_000_000, max: 2_000_000 }),
  fc.integer({ min: EARLIEST_MS - DAY_MS, max: Date.UTC(2101, 0, 1) }),
  fc.constantFrom(null, true, false, 0, 1, -1, 1.5, 1e21, Number.MAX_SAFE_INTEGER, -0),
  fc.jsonValue({ maxDepth: 2 }),
);

const HOSTILE_KEYS = [...REFERENCE_COLUMNS, ...Object.keys(FIELD_ALIASES), 'payload', 'containerID', 'timestamp', 'type', '__proto__', 'constructor', 'toString'];
const arbHostileKey = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...HOSTILE_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 12, size: 'max' }) });

const arbHostileObject = fc.dictionary(arbHostileKey, arbHostileJsonValue, { maxKeys: 24, size: 'max' });

/** Objects that look like readings: mostly valid values, now and then a hostile one. */
const arbNearReadingObject: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(arbValidReading('json'), arbChoices, fc.array(fc.tuple(arbHostileKey, arbHostileJsonValue), { maxLength: 3 }))
  .map(([{ reading }, c, hostile]) => {
    const obj = readingObject(reading, true, c, false);
    for (const [key, value] of hostile) obj[key] = value;
    return obj;
  });

/** Pieces of Python tuple text, good and bad, to assemble into tuple strings. */
const arbTupleToken = fc.oneof(
  fc.constantFrom('(', ')', '[', ']', ',', ', ', ' ', "'", '"', '\\', 'True', 'False', 'None', 'nan', 'inf', '-inf', '+inf', 'nul', "'\\x4'", "'\\u12'", "'\\U0001F600'", "'\\U00110000'", "'\\q'", "'abc", '1e', '-', '.5', '5.', '0x1F'),
  fc.double({ noNaN: true }).map(pythonFloat),
  fc.integer().map(String),
  fc.string({ maxLength: 8, size: 'max' }).map((s) => `'${s}'`),
  arbHostileString,
);
const arbTupleString = fc.oneof(
  fc.array(arbTupleToken, { maxLength: 50, size: 'max' }).map((tokens) => tokens.join('')),
  // Twenty values between brackets, so validation sees them.
  fc
    .tuple(fc.constantFrom(['(', ')'], ['[', ']'], ['(', ']']), fc.array(arbTupleToken, { minLength: 18, maxLength: 22 }))
    .map(([[open, close], tokens]) => `${open}${tokens.join(', ')}${close}`),
);

const arbAnything = fc.anything({
  maxDepth: 2,
  maxKeys: 6,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
});

/** Lines a serial port may deliver: binary noise, text noise, and near-miss rows and sentences. */
const arbHostileLine: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200, size: 'max' }).map((b) => Buffer.from(b.filter((byte) => byte !== 0x0a))),
  fc.string({ unit: fc.oneof(oneCodePoint, trickyChar), maxLength: 200, size: 'max' }).map((s) => Buffer.from(s.replace(/\n/g, ''), 'utf8')),
  fc.array(fc.oneof(arbHostileString, fc.constantFrom('"', '""', ',', ' ', 'container_id')), { maxLength: 24, size: 'max' }).map((cells) => Buffer.from(cells.join(',').replace(/[\n\r]/g, ''), 'utf8')),
  // Sentences with a correct checksum over whatever body, so what follows the checksum check is reached.
  fc
    .tuple(fc.constantFrom('RFR,', 'RFR', 'GPGGA,', ''), fc.array(arbHostileString, { maxLength: 24, size: 'max' }), fc.constantFrom('', '  ', 'x', '*', '**'))
    .map(([talker, cells, tail]) => {
      const body = `${talker}${cells.join(',')}`.replace(/[\n\r]/g, '');
      return Buffer.from(`$${body}*${formatChecksum(sentenceChecksum(Buffer.from(body, 'utf8')))}${tail}`, 'utf8');
    }),
  // Whatever follows the star of a sentence.
  fc.string({ maxLength: 600, size: 'max' }).map((tail) => Buffer.from(`$RFR,C01*${tail.replace(/[\n\r]/g, '')}`, 'utf8')),
);

/** Single-object values: the real headers (and near misses) over random or cut bodies. */
const arbHostileAvro: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        Buffer.concat([SINGLE_OBJECT_MAGIC, READING_FINGERPRINT]),
        Buffer.concat([SINGLE_OBJECT_MAGIC, TELEMETRY_FINGERPRINT]),
        Buffer.concat([SINGLE_OBJECT_MAGIC, READING_FINGERPRINT.subarray(0, 5)]),
        SINGLE_OBJECT_MAGIC,
        Buffer.from([0xc3]),
      ),
      fc.uint8Array({ maxLength: 160, size: 'max' }),
    )
    .map(([header, body]) => Buffer.concat([header, body])),
  fc.tuple(arbEncoded('Avro single-object'), fc.nat()).map(([e, cut]) => e.bytes.subarray(0, cut % (e.bytes.length + 1))),
);

// ---------------------------------------------------------------------------------------------
// The line splitter, against a plain model of it

/** What the splitter must produce for `input` in one piece: the model its chunked runs are held to. */
function modelSplit(input: Buffer, max: number): LineEvent[] {
  const events: LineEvent[] = [];
  let from = 0;
  for (;;) {
    const lf = input.indexOf(0x0a, from);
    if (lf === -1) break;
    let line = input.subarray(from, lf);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    events.push(line.length > max ? { kind: 'oversized', bytes: line.subarray(0, max), maxLineBytes: max } : { kind: 'line', bytes: line });
    from = lf + 1;
  }
  const rest = input.subarray(from);
  // One byte of slack for the CR of a CR/LF ending still on its way.
  if (rest.length > max + 1) events.push({ kind: 'oversized', bytes: rest.subarray(0, max), maxLineBytes: max });
  else if (rest.length > 0) events.push({ kind: 'partial', bytes: rest });
  return events;
}

const arbStreamByte = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 255 }) }, { weight: 1, arbitrary: fc.constantFrom(0x0a, 0x0d) });
const arbChunks = fc.array(fc.array(arbStreamByte, { maxLength: 40, size: 'max' }).map((b) => Buffer.from(b)), { maxLength: 12, size: 'max' });

const eventsAsText = (events: readonly LineEvent[]): string[] => events.map((e) => `${e.kind}:${e.bytes.toString('hex')}`);

// ---------------------------------------------------------------------------------------------
// Zone-less timestamps in a site's zone

const wallFormatters = new Map<string, Intl.DateTimeFormat>();

/** The wall clock reading in `zone` at `utcMs`, as `YYYY-MM-DD HH:MM:SS.mmm`. */
function wallClock(utcMs: number, zone: string): string {
  let f = wallFormatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    wallFormatters.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(utcMs).map((part) => [part.type, part.value]));
  return `${pad(Number(p.year), 4)}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}.${pad(((utcMs % 1000) + 1000) % 1000, 3)}`;
}

// ---------------------------------------------------------------------------------------------
// Large inputs

const BIG_INPUT_PLACES = ['payload', 'json-number', 'json-time', 'json-text', 'envelope-id', 'tuple', 'tuple-quoted', 'csv', 'csv-quoted', 'sentence', 'json-line'] as const;

/** `filler` put where a decoder has to scan it: a field's value, a tuple item, a cell, a sentence. */
function bigInput(place: (typeof BIG_INPUT_PLACES)[number], filler: string): { bytes: Buffer; via: Encoded['via'] } {
  const tuple = (item: string): string => `('C01', '2020-01-15 17:59:45', 'P05', ${item}, 5.0, 20.5, 2.6, 0, 1, 5, 21.5, 75.9, 39.8, 4.7, True, True, True, '37.82', '-122.32', 0)`;
  const json = (field: string): Buffer => Buffer.from(JSON.stringify({ container_id: 'C01', measurement_time: '2020-01-15 17:59:45', temperature: 5, [field]: filler }));
  const row = (cell: string): string => `C01,2020-01-15 17:59:45,P05,${cell},5.0,20.5,2.6,0,1,5,21.5,75.9,39.8,4.7,True,True,True,37.82,-122.32,0`;
  const text = (t: string): Buffer => Buffer.from(t.replace(/[\r\n]/g, ''), 'utf8');
  switch (place) {
    case 'payload':
      return { bytes: text(filler), via: 'mqtt' };
    case 'json-number':
      return { bytes: json('temperature'), via: 'mqtt' };
    case 'json-time':
      return { bytes: json('measurement_time'), via: 'mqtt' };
    case 'json-text':
      return { bytes: json('product_id'), via: 'mqtt' };
    case 'envelope-id':
      return { bytes: Buffer.from(JSON.stringify({ containerID: filler, payload: tuple('5.0') })), via: 'mqtt' };
    case 'tuple':
      return { bytes: Buffer.from(JSON.stringify({ containerID: 'C01', payload: tuple(filler) })), via: 'mqtt' };
    case 'tuple-quoted':
      return { bytes: Buffer.from(JSON.stringify({ containerID: 'C01', payload: tuple(`'${filler}'`) })), via: 'mqtt' };
    case 'csv':
      return { bytes: text(row(filler)), via: 'csv' };
    case 'csv-quoted':
      return { bytes: text(row(`"${filler}"`)), via: 'csv' };
    case 'sentence': {
      const body = `RFR,${row(filler)}`.replace(/[\r\n]/g, '');
      return { bytes: text(`$${body}*${formatChecksum(sentenceChecksum(Buffer.from(body, 'utf8')))}`), via: 'nmea' };
    }
    case 'json-line':
      return { bytes: text(json('temperature').toString('utf8')), via: 'json' };
  }
}

// ---------------------------------------------------------------------------------------------
// The properties

const property = <Ts extends [unknown, ...unknown[]]>(
  name: string,
  weight: number,
  build: () => fc.IProperty<Ts>,
): DecoderProperty => ({ name, weight, build: build as unknown as () => fc.IProperty<unknown> });

const roundTrips: DecoderProperty[] = Object.keys(ENCODERS).map((name) =>
  property(`decodes every valid reading written as ${name} back to the same reading`, 8, () =>
    fc.property(arbEncoded(name), (e) => {
      expectReading(decodeEncoded(e, e.ctx), e.expected, e.form, () => showBytes(e.bytes));
    }),
  ),
);

export const DECODER_PROPERTIES: readonly DecoderProperty[] = [
  ...roundTrips,

  property('decodes what the device simulator publishes and writes, in every form, back to the same reading', 3, () =>
    fc.property(arbValidReading('line', { wholeSeconds: true }), fc.constantFrom(...PAYLOAD_FORMS, ...SERIAL_FRAMINGS), ({ reading, nowMs }, form) => {
      fc.pre(form !== 'nmea' || !reading.product_id?.includes('$'));
      const ctx: DecodeContext = { timeZone: 'UTC', nowMs, maxPayloadBytes: 64 * 1024 };
      const isSerial = (SERIAL_FRAMINGS as readonly string[]).includes(form);
      const bytes = isSerial ? Buffer.from(encodeLine(reading, form as SerialFraming).replace(/\r\n$/, ''), 'utf8') : encodePayload(reading, form as (typeof PAYLOAD_FORMS)[number]);
      const result = isSerial ? SERIAL_FRAMERS[form as SerialFraming](bytes, ctx) : decodeReading(bytes, ctx);
      const expectedForm: PayloadForm = form === 'json' ? 'canonical-json' : form === 'csv' ? 'csv-row' : form === 'nmea' ? 'nmea-sentence' : (form as PayloadForm);
      expectReading(result, canonicalReading(reading), expectedForm, () => showBytes(bytes));
    }),
  ),

  property('builds the same reading from its own values, as an object or as 20 columns', 3, () =>
    fc.property(arbValidReading('json'), ({ reading, nowMs }) => {
      const ctx: DecodeContext = { timeZone: 'UTC', nowMs, maxPayloadBytes: 0 };
      const expected = canonicalReading(reading);
      expectReading(readingFromObject({ ...reading }, ctx), expected, 'canonical-json', () => JSON.stringify(reading));
      expectReading(readingFromColumns(REFERENCE_COLUMNS.map((c) => reading[c]), ctx, 'csv-row'), expected, 'csv-row', () => JSON.stringify(reading));
    }),
  ),

  property("reads a zone-less timestamp as the site's wall clock, taking the earlier of a repeated hour", 4, () =>
    fc.property(fc.integer({ min: EARLIEST_MS, max: Date.UTC(2040, 0, 1) }), fc.constantFrom(...SITE_ZONES), (utcMs, zone) => {
      const wall = wallClock(utcMs, zone);
      const payload = Buffer.from(JSON.stringify({ container_id: 'C01', measurement_time: wall, temperature: 5 }));
      const result = decodeReading(payload, { timeZone: zone, nowMs: Date.UTC(2100, 0, 1), maxPayloadBytes: 4096 });
      if (!result.ok) assert.fail(`${wall} in ${zone} rejected: ${result.detail}`);
      const read = result.reading.measurement_time;
      assert.equal(wallClock(read, zone), wall, `${wall} in ${zone} read as ${new Date(read).toISOString()}`);
      assert.ok(read <= utcMs, `${wall} in ${zone} read as ${new Date(read).toISOString()}, after ${new Date(utcMs).toISOString()}`);
    }),
  ),

  property('never throws on arbitrary bytes, and rejects them with a known reason', 10, () =>
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 300, size: 'max' }).map((b) => Buffer.from(b)), arbHostileAvro), arbContext, (bytes, ctx) => {
      checkDecodeResult(decodeReading(bytes, ctx), ctx);
    }),
  ),

  property('never throws on arbitrary JSON, objects with reading and envelope keys, or near-valid readings', 10, () =>
    fc.property(
      fc.oneof(
        fc.jsonValue({ maxDepth: 3 }),
        arbHostileObject,
        arbNearReadingObject,
        fc.record({ containerID: arbHostileJsonValue, payload: fc.oneof(arbHostileObject, arbNearReadingObject, arbHostileJsonValue) }, { requiredKeys: ['payload'] }),
      ),
      arbContext,
      (value, ctx) => {
        checkDecodeResult(decodeReading(Buffer.from(JSON.stringify(value) ?? 'null', 'utf8'), ctx), ctx);
      },
    ),
  ),

  property('never throws on tuple strings in an envelope, well formed or not', 8, () =>
    fc.property(arbTupleString, fc.option(arbContainerId, { nil: undefined }), arbContext, (tuple, containerID, ctx) => {
      checkDecodeResult(decodeReading(Buffer.from(JSON.stringify({ containerID, payload: tuple }), 'utf8'), ctx), ctx);
    }),
  ),

  property('never throws when handed any JavaScript values as columns or as an object', 6, () =>
    fc.property(
      fc.oneof(fc.array(arbAnything, { minLength: 20, maxLength: 20 }), fc.array(arbAnything, { maxLength: 24 })),
      fc.dictionary(arbHostileKey, arbAnything, { maxKeys: 24, size: 'max' }),
      arbContext,
      (columns, obj, ctx) => {
        checkDecodeResult(readingFromColumns(columns, ctx), ctx);
        checkDecodeResult(readingFromObject(obj, ctx), ctx);
      },
    ),
  ),

  property('never throws on any line in any framing, and rejects it with a known reason or skips it', 12, () =>
    fc.property(arbHostileLine, fc.constantFrom(...SERIAL_FRAMINGS), arbContext, (bytes, framing, ctx) => {
      checkLineResult(SERIAL_FRAMERS[framing](bytes, ctx), ctx);
    }),
  ),

  property('never throws on valid payloads and lines with bytes flipped, cut, inserted, deleted or moved', 14, () =>
    fc.property(arbAnyEncoded, arbMutations, arbContext, (e, mutations, ctx) => {
      const bytes = mutate(e.bytes, mutations);
      checkLineResult(decodeEncoded({ bytes, via: e.via }, e.ctx), e.ctx);
      checkLineResult(decodeEncoded({ bytes, via: e.via }, ctx), ctx);
    }),
  ),

  property('never accepts a sentence with one byte of its body corrupted', 4, () =>
    fc.property(arbEncoded('checksummed sentence'), fc.nat(), fc.integer({ min: 1, max: 255 }), (e, at, xor) => {
      const text = e.bytes.toString('utf8');
      const start = text.indexOf('$');
      const star = text.lastIndexOf('*');
      const bodyStart = Buffer.byteLength(text.slice(0, start + 1), 'utf8');
      const bodyEnd = Buffer.byteLength(text.slice(0, star), 'utf8');
      fc.pre(bodyEnd > bodyStart);
      const bytes = Buffer.from(e.bytes);
      const i = bodyStart + (at % (bodyEnd - bodyStart));
      bytes[i] = bytes[i]! ^ xor;
      // A byte turned into a newline would end the line before the decoder sees it.
      fc.pre(bytes[i] !== 0x0a);
      const result = SERIAL_FRAMERS.nmea(bytes, e.ctx);
      checkLineResult(result, e.ctx);
      assert.ok(isSkipped(result) || !result.ok, `corrupted sentence ${showBytes(bytes)} accepted`);
    }),
  ),

  property('never accepts a cut-off MQTT payload or sentence', 5, () =>
    fc.property(
      fc.oneof(...['canonical JSON', 'reference envelope with an object payload', 'reference envelope with a tuple string', 'Avro single-object', 'checksummed sentence'].map(arbEncoded)),
      fc.nat(),
      (e, cut) => {
        const text = e.bytes.toString('latin1');
        // Space after a JSON value or a checksum changes nothing.
        const meaningful = e.via === 'nmea' ? text.trimEnd().length : text.length;
        const bytes = e.bytes.subarray(0, cut % meaningful);
        const result = decodeEncoded({ bytes, via: e.via }, e.ctx);
        checkLineResult(result, e.ctx);
        assert.ok(isSkipped(result) || !result.ok, `cut-off ${e.form} ${showBytes(bytes)} accepted`);
      },
    ),
  ),

  property('never throws on single-object values with real headers and random or cut bodies', 4, () =>
    fc.property(arbHostileAvro, (bytes) => {
      const result = decodeSingleObject(bytes);
      if (!result.ok) assert.ok(typeof result.detail === 'string' && result.detail.length > 0 && result.detail.length <= MAX_DETAIL_CHARS);
    }),
  ),

  property('splits any byte stream into the same lines however it is chunked, holding at most the line limit', 8, () =>
    fc.property(arbChunks, fc.integer({ min: 1, max: 48 }), (chunks, max) => {
      const split = createLineSplitter({ maxLineBytes: max });
      const events: LineEvent[] = [];
      for (const chunk of chunks) {
        events.push(...split.push(chunk));
        assert.ok(split.pendingBytes() <= max + 1, `holds ${split.pendingBytes()} bytes with a limit of ${max}`);
      }
      const last = split.end();
      if (last) events.push(last);
      assert.equal(split.pendingBytes(), 0);
      assert.deepEqual(eventsAsText(events), eventsAsText(modelSplit(Buffer.concat(chunks), max)));
      for (const e of events) {
        assert.ok(e.bytes.length <= (e.kind === 'partial' ? max + 1 : max));
        if (e.kind !== 'line') checkDecodeResult(rejectLineEvent(e), { timeZone: 'UTC', nowMs: 0, maxPayloadBytes: 0 });
      }
    }),
  ),

  property('reads back every reading written to a serial stream, whatever the chunking, line endings and noise between', 4, () =>
    fc.property(
      fc.constantFrom(...SERIAL_FRAMINGS),
      fc.array(fc.tuple(arbValidReading('line'), arbChoices, fc.constantFrom('\n', '\r\n'), fc.option(fc.uint8Array({ maxLength: 20, size: 'max' }), { freq: 3, nil: null })), { minLength: 1, maxLength: 6, size: 'max' }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
      (framing, items, chunkSizes) => {
        const nowMs = Math.max(...items.map(([t]) => t.nowMs));
        const ctx: DecodeContext = { timeZone: 'UTC', nowMs, maxPayloadBytes: 64 * 1024 };
        const parts: Buffer[] = [];
        const expected: ReeferReading[] = [];
        for (const [{ reading }, c, ending, noise] of items) {
          if (framing === 'csv' && reading.container_id === 'container_id') continue;
          const text = framing === 'json' ? jsonLineText(readingObject(reading, true, c, false)) : framing === 'csv' ? csvText(reading, true, c) : sentenceText(reading, true, c, '');
          parts.push(Buffer.from(text + ending, 'utf8'));
          expected.push(canonicalReading(reading));
          // A line that starts with 0xff is not UTF-8, in any framing: rejected as line noise.
          if (noise !== null) parts.push(Buffer.concat([Buffer.from([0xff]), Buffer.from(noise.filter((b) => b !== 0x0a)), Buffer.from(ending)]));
        }
        const stream = Buffer.concat(parts);
        const split = createLineSplitter({ maxLineBytes: 64 * 1024 });
        const read: ReeferReading[] = [];
        for (let at = 0, i = 0; at < stream.length; i++) {
          const size = chunkSizes[i % chunkSizes.length]!;
          for (const event of split.push(stream.subarray(at, at + size))) {
            assert.equal(event.kind, 'line');
            const result = SERIAL_FRAMERS[framing](event.bytes, ctx);
            checkLineResult(result, ctx);
            if (!isSkipped(result) && result.ok) read.push(result.reading);
            else if (!isSkipped(result)) assert.equal(result.reason, 'line-noise', `${showBytes(event.bytes)}: ${result.detail}`);
          }
          at += size;
        }
        assert.equal(split.end(), undefined);
        assert.deepStrictEqual(read, expected);
      },
    ),
  ),

  // Few runs, large inputs: a decoder that is quadratic in some input (a backtracking regular
  // expression, repeated concatenation) does not end within the test's time.
  property('terminates on payloads and lines of up to 200 KB made of one short piece repeated', 0.3, () =>
    fc.property(
      fc.string({ unit: fc.constantFrom(...'0123456789.eE+-, \t"\'\\()[]$*:TZx'), minLength: 1, maxLength: 4, size: 'max' }),
      fc.integer({ min: 1, max: 200_000 }),
      fc.constantFrom('', 'x', ' ', '"', '.', 'e', ',', '*', ')'),
      fc.constantFrom(...BIG_INPUT_PLACES),
      (piece, count, suffix, place) => {
        const filler = piece.repeat(Math.max(1, Math.floor(count / piece.length))) + suffix;
        const ctx: DecodeContext = { timeZone: 'Europe/Amsterdam', nowMs: Date.UTC(2020, 0, 16), maxPayloadBytes: 256 * 1024 };
        checkLineResult(decodeEncoded(bigInput(place, filler), ctx), ctx);
      },
    ),
  ),

  property('parses any row of quoted cells back to the same cells', 4, () =>
    fc.property(fc.array(fc.string({ unit: fc.oneof(lineCodePoint, trickyChar), maxLength: 12, size: 'max' }), { minLength: 1, maxLength: 24, size: 'max' }), arbChoices, (cells, c) => {
      const row = cells.map((cell) => (/[",]/.test(cell) || cell.trim() !== cell || c.chance(2) ? `"${cell.replace(/"/g, '""')}"` : cell)).join(',');
      assert.deepEqual(parseCsvRow(row), { ok: true, values: cells });
    }),
  ),
];
