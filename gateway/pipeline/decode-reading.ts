/**
 * Turns one device payload into a canonical ReeferReading, or into a counted rejection with a reason.
 *
 * Accepted forms, detected per message: Avro single-object (ReeferReading or ReeferTelemetry),
 * canonical JSON, and the reference architecture's envelope whose `payload` is either an object
 * or a Python tuple string of the 20 reference values. Device data is untrusted: nothing here
 * throws, and every rejection names the field, the value and what was expected.
 */
import type { Buffer } from 'node:buffer';
import { decodeSingleObject, isSingleObject } from '../../schemas/avro.js';
import { FIELD_ALIASES, REFERENCE_COLUMNS, type ReeferReading } from '../../schemas/reefer-reading.js';

export type RejectReason =
  | 'oversized'
  | 'malformed-json'
  | 'unknown-form'
  | 'bad-tuple'
  | 'bad-avro'
  | 'missing-field'
  | 'wrong-type'
  | 'out-of-range'
  | 'bad-timestamp'
  | 'container-mismatch'
  | 'bad-checksum'
  | 'line-noise'
  | 'partial-line';

/** What each rejection reason means, for the metrics reference and the dead-letter topic. */
export const REJECT_REASON_MEANINGS: Readonly<Record<RejectReason, string>> = {
  oversized: 'The payload is larger than the configured maximum payload size.',
  'malformed-json': 'The payload is neither Avro single-object encoded nor valid UTF-8 JSON.',
  'unknown-form': 'The payload is JSON but not a reading object nor a reference envelope.',
  'bad-tuple': 'The values are not 20 reference values in column order, or the tuple string does not parse.',
  'bad-avro': 'The payload carries the Avro single-object marker but an unknown fingerprint or a corrupt body.',
  'missing-field': 'A required field (container_id, measurement_time or temperature) is absent, null or empty.',
  'wrong-type': 'A field holds the wrong kind of value, a non-finite number, or a container id that is not valid.',
  'out-of-range': 'A measurement lies outside its plausible range (FIELD_RANGES).',
  'bad-timestamp': 'measurement_time does not parse, is before 2000-01-01, or is more than 24 h after the gateway clock.',
  'container-mismatch': "The reading's container id differs from the envelope's containerID or from the MQTT topic.",
  'bad-checksum': 'A serial sentence has no `*HH` checksum, or its checksum differs from the XOR of its bytes.',
  'line-noise': 'A serial line holds bytes that are not UTF-8 text or control characters other than tab.',
  'partial-line': 'A serial line was cut off before its newline because the port closed or went away.',
};

export const REJECT_REASONS: readonly RejectReason[] = Object.freeze(
  Object.keys(REJECT_REASON_MEANINGS) as RejectReason[],
);

export type PayloadForm = 'canonical-json' | 'envelope-object' | 'envelope-tuple' | 'avro' | 'csv-row' | 'nmea-sentence';

export type DecodeResult =
  | { ok: true; reading: ReeferReading; form: PayloadForm }
  | { ok: false; reason: RejectReason; detail: string };

export interface DecodeContext {
  /** Container id taken from the MQTT topic; the reading must carry the same one. */
  topicContainerId?: string;
  /** IANA zone that zone-less timestamps are read in, e.g. 'UTC' or 'Europe/Amsterdam'. */
  timeZone: string;
  /** The gateway clock, UTC milliseconds; readings more than 24 h after it are rejected. */
  nowMs: number;
  /** Larger payloads are rejected before any parsing. */
  maxPayloadBytes: number;
}

export interface FieldRange {
  readonly min: number;
  readonly max: number;
  readonly unit: string;
}

type NumericField =
  | 'temperature'
  | 'target_temperature'
  | 'ambient_temperature'
  | 'kilowatts'
  | 'time_door_open'
  | 'content_type'
  | 'defrost_cycle'
  | 'oxygen_level'
  | 'nitrogen_level'
  | 'humidity_level'
  | 'carbon_dioxide_level'
  | 'latitude'
  | 'longitude';

/**
 * Plausible bounds of each measurement, inclusive. Wide enough for every failure mode the
 * analytics look for (a dying CO2 sensor reads below 0, a vaccine reefer runs at −50 °C),
 * narrow enough to catch unit mix-ups and corrupt frames.
 */
export const FIELD_RANGES: Readonly<Record<NumericField, FieldRange>> = {
  temperature: { min: -70, max: 80, unit: '°C' },
  target_temperature: { min: -70, max: 80, unit: '°C' },
  ambient_temperature: { min: -60, max: 70, unit: '°C' },
  kilowatts: { min: 0, max: 100, unit: 'kW' },
  time_door_open: { min: 0, max: 100_000, unit: 'min' },
  content_type: { min: 1, max: 9, unit: '' },
  defrost_cycle: { min: 0, max: 1000, unit: 'cycles' },
  oxygen_level: { min: 0, max: 100, unit: '%' },
  nitrogen_level: { min: 0, max: 100, unit: '%' },
  humidity_level: { min: 0, max: 100, unit: '%' },
  carbon_dioxide_level: { min: -100, max: 100, unit: '%' },
  latitude: { min: -90, max: 90, unit: '°' },
  longitude: { min: -180, max: 180, unit: '°' },
};

type FieldKind = 'container-id' | 'time' | 'text' | 'double' | 'int' | 'boolean';

const FIELD_KINDS: Readonly<Record<keyof ReeferReading, FieldKind>> = {
  container_id: 'container-id',
  measurement_time: 'time',
  product_id: 'text',
  temperature: 'double',
  target_temperature: 'double',
  ambient_temperature: 'double',
  kilowatts: 'double',
  time_door_open: 'double',
  content_type: 'int',
  defrost_cycle: 'int',
  oxygen_level: 'double',
  nitrogen_level: 'double',
  humidity_level: 'double',
  carbon_dioxide_level: 'double',
  fan_1: 'boolean',
  fan_2: 'boolean',
  fan_3: 'boolean',
  latitude: 'double',
  longitude: 'double',
  maintenance_required: 'boolean',
};

const REQUIRED_FIELDS: ReadonlySet<string> = new Set(['container_id', 'measurement_time', 'temperature']);

const COLUMN_COUNT = REFERENCE_COLUMNS.length;

/** Column metadata resolved once, so the per-reading loop does no lookups by name. */
const COLUMNS = REFERENCE_COLUMNS.map((name) => ({
  name,
  kind: FIELD_KINDS[name],
  required: REQUIRED_FIELDS.has(name),
  range: (FIELD_RANGES as Partial<Record<string, FieldRange>>)[name],
  aliases: Object.keys(FIELD_ALIASES).filter((alias) => FIELD_ALIASES[alias] === name),
}));

const CONTAINER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
// The fraction hangs off the dot: with `\d+\.?\d*` a long run of digits followed by a non-digit can be
// split between the two quantifiers in quadratically many ways, and a 64 KB payload held the event loop for seconds.
const NUMBER_PATTERN = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const EPOCH_MS_PATTERN = /^\d{1,15}$/;
const EARLIEST_MEASUREMENT_MS = Date.UTC(2000, 0, 1);
const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;
const DETAIL_VALUE_CHARS = 80;

interface Reject {
  ok: false;
  reason: RejectReason;
  detail: string;
}

function reject(reason: RejectReason, detail: string): Reject {
  return { ok: false, reason, detail };
}

function isReject(value: unknown): value is Reject {
  return typeof value === 'object' && value !== null;
}

/**
 * Decodes one payload as received from a device. Never throws, whatever the bytes: a payload that
 * cannot become a valid reading comes back as `ok: false` with a reason and a detail.
 */
export function decodeReading(payload: Buffer, ctx: DecodeContext): DecodeResult {
  if (payload.length > ctx.maxPayloadBytes) {
    return reject('oversized', `payload of ${payload.length} bytes exceeds the limit of ${ctx.maxPayloadBytes} bytes`);
  }
  if (isSingleObject(payload)) {
    const decoded = decodeSingleObject(payload);
    if (!decoded.ok) {
      return reject('bad-avro', decoded.detail);
    }
    // A ReeferTelemetry carries gateway metadata after the sensor fields; only the sensor fields are taken.
    return fromObject(decoded.value as unknown as Record<string, unknown>, ctx, 'avro', undefined);
  }

  let text = payload.toString('utf8');
  // Some serial terminals and Windows tools prefix UTF-8 text with a byte order mark.
  if (text.charCodeAt(0) === 0xfeff) {
    text = text.slice(1);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return reject(
      'malformed-json',
      text.trim() === ''
        ? 'payload is empty; expected a JSON object or an Avro single-object value'
        : `payload ${show(text)} is not JSON (${truncate(why)}); expected a JSON object or an Avro single-object value`,
    );
  }
  if (!isPlainObject(parsed)) {
    return reject('unknown-form', `payload is ${describeType(parsed)}; expected a JSON object: a reading or a reference envelope`);
  }
  if (Object.hasOwn(parsed, 'payload')) {
    return fromEnvelope(parsed, ctx);
  }
  if (
    Object.hasOwn(parsed, 'container_id') ||
    Object.hasOwn(parsed, 'measurement_time') ||
    Object.hasOwn(parsed, 'temperature')
  ) {
    return fromObject(parsed, ctx, 'canonical-json', undefined);
  }
  const keys = Object.keys(parsed);
  return reject(
    'unknown-form',
    `JSON object with ${keys.length === 0 ? 'no keys' : `keys ${truncate(keys.join(', '))}`}; expected a reading ` +
      '(container_id, measurement_time, temperature, …) or a reference envelope with a payload',
  );
}

/**
 * Builds a reading from the 20 reference values in REFERENCE_COLUMNS order, as tuple strings and
 * CSV rows carry them. `form` is what a successful result reports.
 */
export function readingFromColumns(
  values: readonly unknown[],
  ctx: DecodeContext,
  form: PayloadForm = 'envelope-tuple',
): DecodeResult {
  return fromColumns(values, ctx, form, undefined);
}

/**
 * Builds a reading from an object with the reference field names (aliases such as
 * ambiant_temperature and vent_1 accepted; unknown keys ignored). `form` is what a successful
 * result reports.
 */
export function readingFromObject(
  obj: Record<string, unknown>,
  ctx: DecodeContext,
  form: PayloadForm = 'canonical-json',
): DecodeResult {
  return fromObject(obj, ctx, form, undefined);
}

function fromEnvelope(envelope: Record<string, unknown>, ctx: DecodeContext): DecodeResult {
  const envelopeId = envelope['containerID'];
  if (envelopeId !== undefined && envelopeId !== null && typeof envelopeId !== 'string') {
    return reject('wrong-type', `containerID ${show(envelopeId)} is ${describeType(envelopeId)}; expected a string`);
  }
  const inner = envelope['payload'];
  if (typeof inner === 'string') {
    const tuple = parseTuple(inner);
    if (!tuple.ok) {
      return reject('bad-tuple', tuple.detail);
    }
    return fromColumns(tuple.values, ctx, 'envelope-tuple', envelopeId ?? undefined);
  }
  if (isPlainObject(inner)) {
    return fromObject(inner, ctx, 'envelope-object', envelopeId ?? undefined);
  }
  return reject(
    'unknown-form',
    `envelope payload ${show(inner)} is ${describeType(inner)}; expected an object with the reference fields or a tuple string`,
  );
}

function fromObject(
  obj: Record<string, unknown>,
  ctx: DecodeContext,
  form: PayloadForm,
  envelopeId: string | undefined,
): DecodeResult {
  const values = new Array<unknown>(COLUMN_COUNT);
  for (let i = 0; i < COLUMN_COUNT; i++) {
    const column = COLUMNS[i]!;
    let value = obj[column.name];
    for (let a = 0; value === undefined && a < column.aliases.length; a++) {
      value = obj[column.aliases[a]!];
    }
    values[i] = value;
  }
  return fromColumns(values, ctx, form, envelopeId);
}

function fromColumns(
  values: readonly unknown[],
  ctx: DecodeContext,
  form: PayloadForm,
  envelopeId: string | undefined,
): DecodeResult {
  if (values.length !== COLUMN_COUNT) {
    return reject(
      'bad-tuple',
      `expected ${COLUMN_COUNT} values in reference column order (${REFERENCE_COLUMNS[0]} … ${REFERENCE_COLUMNS[COLUMN_COUNT - 1]}), got ${values.length}`,
    );
  }
  const out = new Array<unknown>(COLUMN_COUNT);
  for (let i = 0; i < COLUMN_COUNT; i++) {
    const column = COLUMNS[i]!;
    let raw = values[i];
    if (i === 0 && isAbsent(raw) && envelopeId !== undefined) {
      raw = envelopeId;
    }
    if (isAbsent(raw)) {
      if (column.required) {
        return reject('missing-field', `${column.name} is missing; a reading needs container_id, measurement_time and temperature`);
      }
      out[i] = null;
      continue;
    }
    let value: unknown;
    switch (column.kind) {
      case 'container-id':
        value = normaliseContainerId(raw, ctx, envelopeId);
        break;
      case 'time':
        value = normaliseTime(raw, ctx);
        break;
      case 'text':
        value = typeof raw === 'string' ? raw : wrongType(column.name, raw, 'a string');
        break;
      case 'double':
        value = normaliseNumber(column.name, raw, false);
        break;
      case 'int':
        value = normaliseNumber(column.name, raw, true);
        break;
      case 'boolean':
        value = normaliseBoolean(column.name, raw);
        break;
    }
    if (isReject(value)) {
      return value;
    }
    const range = column.range;
    if (range !== undefined && ((value as number) < range.min || (value as number) > range.max)) {
      return reject(
        'out-of-range',
        `${column.name} ${show(value)} is outside ${range.min}..${range.max}${range.unit === '' ? '' : ` ${range.unit}`}`,
      );
    }
    out[i] = value;
  }
  const reading: ReeferReading = {
    container_id: out[0] as string,
    measurement_time: out[1] as number,
    product_id: out[2] as string | null,
    temperature: out[3] as number,
    target_temperature: out[4] as number | null,
    ambient_temperature: out[5] as number | null,
    kilowatts: out[6] as number | null,
    time_door_open: out[7] as number | null,
    content_type: out[8] as number | null,
    defrost_cycle: out[9] as number | null,
    oxygen_level: out[10] as number | null,
    nitrogen_level: out[11] as number | null,
    humidity_level: out[12] as number | null,
    carbon_dioxide_level: out[13] as number | null,
    fan_1: out[14] as boolean | null,
    fan_2: out[15] as boolean | null,
    fan_3: out[16] as boolean | null,
    latitude: out[17] as number | null,
    longitude: out[18] as number | null,
    maintenance_required: out[19] as boolean | null,
  };
  return { ok: true, reading, form };
}

/** An empty CSV cell or tuple item means "not reported", like null. */
function isAbsent(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

function normaliseContainerId(raw: unknown, ctx: DecodeContext, envelopeId: string | undefined): string | Reject {
  if (typeof raw !== 'string') {
    return wrongType('container_id', raw, 'a string');
  }
  if (!CONTAINER_ID_PATTERN.test(raw)) {
    return reject(
      'wrong-type',
      `container_id ${show(raw)} is not a valid container id; expected 1..64 characters of A-Z, a-z, 0-9, ".", "_" or "-"`,
    );
  }
  if (envelopeId !== undefined && raw !== envelopeId) {
    return reject('container-mismatch', `container_id ${show(raw)} differs from the envelope's containerID ${show(envelopeId)}`);
  }
  if (ctx.topicContainerId !== undefined && raw !== ctx.topicContainerId) {
    return reject(
      'container-mismatch',
      `container_id ${show(raw)} differs from the container id ${show(ctx.topicContainerId)} in the topic`,
    );
  }
  return raw;
}

function normaliseNumber(field: string, raw: unknown, integer: boolean): number | Reject {
  let n: number;
  if (typeof raw === 'number') {
    n = raw;
  } else if (typeof raw === 'string') {
    const trimmed = raw.trim();
    if (!NUMBER_PATTERN.test(trimmed)) {
      return reject('wrong-type', `${field} ${show(raw)} is not a number; expected ${integer ? 'an integer' : 'a number'}`);
    }
    n = Number(trimmed);
  } else {
    return wrongType(field, raw, integer ? 'an integer' : 'a number');
  }
  if (!Number.isFinite(n)) {
    return reject('wrong-type', `${field} ${show(raw)} is not a finite number`);
  }
  if (integer && !Number.isInteger(n)) {
    return reject('wrong-type', `${field} ${show(raw)} is not an integer`);
  }
  // -0 would encode and compare as a distinct value downstream for no physical reason.
  return n === 0 ? 0 : n;
}

function normaliseBoolean(field: string, raw: unknown): boolean | Reject {
  if (typeof raw === 'boolean') {
    return raw;
  }
  if (raw === 1 || raw === 0) {
    return raw === 1;
  }
  if (typeof raw === 'string') {
    switch (raw.trim().toLowerCase()) {
      case 'true':
      case '1':
        return true;
      case 'false':
      case '0':
        return false;
    }
  }
  return reject('wrong-type', `${field} ${show(raw)} is not a boolean; expected true/false, 1/0 or "true"/"false"`);
}

function wrongType(field: string, raw: unknown, expected: string): Reject {
  return reject('wrong-type', `${field} ${show(raw)} is ${describeType(raw)}; expected ${expected}`);
}

// ---------------------------------------------------------------------------------------------
// measurement_time

const TIMESTAMP_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

function normaliseTime(raw: unknown, ctx: DecodeContext): number | Reject {
  let ms: number;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) {
      return reject('bad-timestamp', `measurement_time ${show(raw)} is not a finite number of epoch milliseconds`);
    }
    ms = Math.round(raw);
  } else if (typeof raw === 'string') {
    const trimmed = raw.trim();
    const parsed = EPOCH_MS_PATTERN.test(trimmed) ? Number(trimmed) : parseTimestamp(trimmed, ctx.timeZone);
    if (isReject(parsed)) {
      return parsed;
    }
    if (Number.isNaN(parsed)) {
      return reject(
        'bad-timestamp',
        `measurement_time ${show(raw)} is not a timestamp; expected "YYYY-MM-DD HH:MM:SS" (read in ${ctx.timeZone || 'UTC'}), ` +
          'ISO 8601 with Z or an offset, or epoch milliseconds',
      );
    }
    ms = parsed;
  } else {
    return reject(
      'wrong-type',
      `measurement_time ${show(raw)} is ${describeType(raw)}; expected a timestamp string or epoch milliseconds`,
    );
  }
  if (ms < EARLIEST_MEASUREMENT_MS) {
    const hint = typeof raw === 'number' && ms * 1000 >= EARLIEST_MEASUREMENT_MS ? ' (seconds sent where milliseconds are expected?)' : '';
    return reject('bad-timestamp', `measurement_time ${show(raw)} (${isoOrValue(ms)}) is before 2000-01-01T00:00:00Z${hint}`);
  }
  if (ms > ctx.nowMs + MAX_FUTURE_SKEW_MS) {
    return reject(
      'bad-timestamp',
      `measurement_time ${show(raw)} (${isoOrValue(ms)}) is more than 24 h after the gateway clock (${isoOrValue(ctx.nowMs)})`,
    );
  }
  return ms;
}

/** UTC milliseconds, NaN when the text is no timestamp, or a rejection for an unusable zone. */
function parseTimestamp(text: string, timeZone: string): number | Reject {
  const m = TIMESTAMP_PATTERN.exec(text);
  if (m === null) {
    return Number.NaN;
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return Number.NaN;
  }
  const wallMs = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  if (m[8] !== undefined) {
    return wallMs;
  }
  if (m[9] !== undefined) {
    const offsetHours = Number(m[10]);
    const offsetMinutes = m[11] === undefined ? 0 : Number(m[11]);
    if (offsetHours > 23 || offsetMinutes > 59) {
      return Number.NaN;
    }
    const offsetMs = (offsetHours * 60 + offsetMinutes) * 60_000;
    return m[9] === '-' ? wallMs + offsetMs : wallMs - offsetMs;
  }
  return wallTimeToUtcMs(wallMs, timeZone);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  }
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

const UTC_ZONES: ReadonlySet<string> = new Set(['', 'UTC', 'Etc/UTC', 'GMT', 'Etc/GMT', 'Z']);
const DAY_MS = 24 * 60 * 60 * 1000;

/** One formatter per zone: building one costs far more than using it. `null` marks an unknown zone. */
const zoneFormatters = new Map<string, Intl.DateTimeFormat | null>();

function zoneFormatter(timeZone: string): Intl.DateTimeFormat | null {
  let formatter = zoneFormatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      formatter = null;
    }
    zoneFormatters.set(timeZone, formatter);
  }
  return formatter;
}

/** How far the zone's wall clock is ahead of UTC at instant `utcMs`. */
function zoneOffsetMs(formatter: Intl.DateTimeFormat, utcMs: number): number {
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of formatter.formatToParts(utcMs)) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        hour = Number(part.value) % 24;
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        second = Number(part.value);
        break;
    }
  }
  const wholeSecondMs = utcMs - (((utcMs % 1000) + 1000) % 1000);
  return Date.UTC(year, month - 1, day, hour, minute, second) - wholeSecondMs;
}

/**
 * The instant at which the zone's clocks showed `wallMs` (a wall time written as if it were UTC).
 * A wall time that occurs twice when clocks go back is the first occurrence; one skipped when they
 * go forward is moved forward by the gap, the way java.time resolves both.
 */
function wallTimeToUtcMs(wallMs: number, timeZone: string): number | Reject {
  if (UTC_ZONES.has(timeZone)) {
    return wallMs;
  }
  const formatter = zoneFormatter(timeZone);
  if (formatter === null) {
    return reject('bad-timestamp', `time zone ${show(timeZone)} is not a known IANA zone; expected e.g. "UTC" or "Europe/Amsterdam"`);
  }
  const offsetBefore = zoneOffsetMs(formatter, wallMs - DAY_MS);
  const offsetAfter = zoneOffsetMs(formatter, wallMs + DAY_MS);
  const early = wallMs - offsetBefore;
  if (offsetBefore === offsetAfter) {
    return early;
  }
  const late = wallMs - offsetAfter;
  const earlyHolds = zoneOffsetMs(formatter, early) === offsetBefore;
  const lateHolds = zoneOffsetMs(formatter, late) === offsetAfter;
  if (earlyHolds && lateHolds) {
    return Math.min(early, late);
  }
  if (lateHolds) {
    return late;
  }
  return early;
}

// ---------------------------------------------------------------------------------------------
// Python tuple strings, as the reference simulators format a reading with str(tuple)

type TupleResult = { ok: true; values: unknown[] } | { ok: false; detail: string };

const TUPLE_NUMBER = /[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;
const TUPLE_WORD = /[+-]?[A-Za-z_][A-Za-z0-9_]*/y;
const TUPLE_WORDS: ReadonlyMap<string, unknown> = new Map<string, unknown>([
  ['True', true],
  ['False', false],
  ['None', null],
  // str() of a float from a failing sensor; kept so validation can name the field.
  ['nan', Number.NaN],
  ['inf', Number.POSITIVE_INFINITY],
  ['+inf', Number.POSITIVE_INFINITY],
  ['-inf', Number.NEGATIVE_INFINITY],
]);

function parseTuple(text: string): TupleResult {
  const fail = (what: string, at: number): TupleResult => ({
    ok: false,
    detail: `payload tuple ${show(text)}: ${what} at offset ${at}; expected a tuple such as ('C01', '2020-01-15 17:59:45', 'P05', 5.02, …)`,
  });
  let i = skipSpace(text, 0);
  const open = text[i];
  if (open !== '(' && open !== '[') {
    return fail(`expected "(" but found ${showChar(text, i)}`, i);
  }
  const close = open === '(' ? ')' : ']';
  i = skipSpace(text, i + 1);
  const values: unknown[] = [];
  if (text[i] === close) {
    i++;
  } else {
    for (;;) {
      const ch = text[i];
      if (ch === "'" || ch === '"') {
        const str = readQuoted(text, i);
        if ('error' in str) {
          return fail(str.error, str.at);
        }
        values.push(str.value);
        i = str.end;
      } else {
        TUPLE_NUMBER.lastIndex = i;
        TUPLE_WORD.lastIndex = i;
        const number = TUPLE_NUMBER.exec(text);
        const word = number === null ? TUPLE_WORD.exec(text) : null;
        if (number !== null) {
          values.push(Number(number[0]));
          i += number[0].length;
        } else if (word !== null && TUPLE_WORDS.has(word[0])) {
          values.push(TUPLE_WORDS.get(word[0]));
          i += word[0].length;
        } else {
          return fail(`unexpected ${showChar(text, i)}`, i);
        }
      }
      i = skipSpace(text, i);
      if (text[i] === ',') {
        i = skipSpace(text, i + 1);
        if (text[i] === close) {
          i++;
          break;
        }
      } else if (text[i] === close) {
        i++;
        break;
      } else {
        return fail(`expected "," or "${close}" but found ${showChar(text, i)}`, i);
      }
    }
  }
  i = skipSpace(text, i);
  if (i !== text.length) {
    return fail(`unexpected ${showChar(text, i)} after the closing "${close}"`, i);
  }
  if (values.length !== COLUMN_COUNT) {
    return {
      ok: false,
      detail: `payload tuple ${show(text)} has ${values.length} values; expected ${COLUMN_COUNT} in reference column order`,
    };
  }
  return { ok: true, values };
}

const HEX_DIGITS = /^[0-9A-Fa-f]+$/;

const ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  n: '\n',
  r: '\r',
  t: '\t',
  '0': '\0',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
};

/** A quoted string with Python escapes starting at `start`, or what broke it and where. */
function readQuoted(text: string, start: number): { value: string; end: number } | { error: string; at: number } {
  const quote = text[start];
  let value = '';
  let i = start + 1;
  let runStart = i;
  while (i < text.length) {
    const ch = text[i];
    if (ch === quote) {
      return { value: value + text.slice(runStart, i), end: i + 1 };
    }
    if (ch !== '\\') {
      i++;
      continue;
    }
    value += text.slice(runStart, i);
    const next = text[i + 1];
    if (next === undefined) {
      break;
    }
    const simple = ESCAPES[next];
    if (simple !== undefined) {
      value += simple;
      i += 2;
    } else if (next === 'x' || next === 'u' || next === 'U') {
      // repr() writes \U and eight digits for a character outside the BMP that is not printable.
      const digits = next === 'x' ? 2 : next === 'u' ? 4 : 8;
      const hex = text.slice(i + 2, i + 2 + digits);
      const code = parseInt(hex, 16);
      if (hex.length !== digits || !HEX_DIGITS.test(hex) || code > 0x10ffff) {
        return { error: `bad escape \\${next}${hex}`, at: i };
      }
      value += String.fromCodePoint(code);
      i += 2 + digits;
    } else {
      // Python keeps an unknown escape as written.
      value += '\\' + next;
      i += 2;
    }
    runStart = i;
  }
  return { error: 'unterminated string', at: start };
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) {
    i++;
  }
  return i;
}

function showChar(text: string, i: number): string {
  return i >= text.length ? 'the end' : JSON.stringify(text[i]);
}

// ---------------------------------------------------------------------------------------------
// details

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'object':
      return 'an object';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    default:
      return `a ${typeof value}`;
  }
}

/** A value as it appears in a detail: JSON-like, cut to about 80 characters. */
function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') {
    text = JSON.stringify(value.length > DETAIL_VALUE_CHARS ? value.slice(0, DETAIL_VALUE_CHARS) : value);
  } else if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    text = String(value);
  } else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = describeType(value);
    }
  }
  return truncate(text);
}

function truncate(text: string): string {
  return text.length > DETAIL_VALUE_CHARS ? `${text.slice(0, DETAIL_VALUE_CHARS - 1)}…` : text;
}

function isoOrValue(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}
