/**
 * Readings as a device writes them on a serial line, one per line (docs/serial.md): a JSON object,
 * a CSV row in reference column order, or the checksummed sentence `$RFR,<the CSV row>*HH`.
 */
import { REFERENCE_COLUMNS, type ReeferReading } from '../schemas/reefer-reading.js';
import { SENTENCE_TALKER, SERIAL_FRAMINGS, formatChecksum, sentenceChecksum, type SerialFraming } from '../schemas/serial-sentence.js';
import { encodePayload } from './payload-forms.js';

export { SERIAL_FRAMINGS, type SerialFraming };

export function isSerialFraming(value: string): value is SerialFraming {
  return (SERIAL_FRAMINGS as readonly string[]).includes(value);
}

/** The CSV header row, which devices may send first and the gateway skips. */
export const CSV_HEADER = REFERENCE_COLUMNS.join(',');

const NEEDS_QUOTES = /[",]|^\s|\s$/;

function csvField(column: keyof ReeferReading, value: ReeferReading[keyof ReeferReading]): string {
  if (value === null) return '';
  switch (column) {
    // UTC with milliseconds, so the time survives whatever zone the gateway reads zone-less times in.
    case 'measurement_time':
      return new Date(value as number).toISOString();
    // 0/1, as the reference writes it.
    case 'maintenance_required':
      return value ? '1' : '0';
  }
  if (typeof value === 'string') {
    if (/[\r\n]/.test(value)) throw new RangeError(`${column} ${JSON.stringify(value)} cannot be written on a serial line: it holds a line break`);
    return NEEDS_QUOTES.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
  }
  // JavaScript's shortest round-trip form: the gateway reads back the very same number.
  return String(value);
}

/** The 20 values in reference column order, comma-separated; missing values are empty fields. */
export function csvRow(reading: ReeferReading): string {
  return REFERENCE_COLUMNS.map((c) => csvField(c, reading[c])).join(',');
}

/** `$RFR,<csv row>*HH`, HH the XOR of every byte between `$` and `*` in two upper-case hex digits. */
export function nmeaSentence(reading: ReeferReading): string {
  const body = `${SENTENCE_TALKER},${csvRow(reading)}`;
  // A receiver takes "$" as the start of a sentence wherever it appears.
  if (body.includes('$')) throw new RangeError(`reading of ${reading.container_id} cannot be written as a sentence: a value holds "$"`);
  return `$${body}*${formatChecksum(sentenceChecksum(Buffer.from(body, 'utf8')))}`;
}

/** One reading as one line in the framing, CR/LF-terminated like most serial devices. */
export function encodeLine(reading: ReeferReading, framing: SerialFraming): string {
  switch (framing) {
    case 'json':
      return `${encodePayload(reading, 'canonical-json').toString('utf8')}\r\n`;
    case 'csv':
      return `${csvRow(reading)}\r\n`;
    case 'nmea':
      return `${nmeaSentence(reading)}\r\n`;
  }
}
