import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { REFERENCE_COLUMNS, type ReeferReading } from '../schemas/reefer-reading.js';
import { formatReferenceTime } from './payload-forms.js';
import type { ReadingLabel } from './reefer-model.js';

// The reference's CSV spells these columns differently from the canonical record.
const REFERENCE_HEADER_NAMES: Partial<Record<keyof ReeferReading, string>> = {
  ambient_temperature: 'ambiant_temperature',
  fan_1: 'vent_1',
  fan_2: 'vent_2',
  fan_3: 'vent_3',
};

/** The reference's 20 columns in its order and spelling, then the simulator's label. */
export const CSV_EXPORT_COLUMNS: readonly string[] = [...REFERENCE_COLUMNS.map((c) => REFERENCE_HEADER_NAMES[c] ?? c), 'failure'];

// Columns the reference writes as floats (pandas: 5.0, not 5).
const FLOAT_COLUMNS: ReadonlySet<keyof ReeferReading> = new Set([
  'temperature',
  'target_temperature',
  'ambient_temperature',
  'kilowatts',
  'oxygen_level',
  'nitrogen_level',
  'humidity_level',
  'carbon_dioxide_level',
]);

function csvText(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function cell(reading: ReeferReading, column: keyof ReeferReading): string {
  const value = reading[column];
  if (value === null) return '';
  if (column === 'measurement_time') return formatReferenceTime(value as number);
  // The reference's label column is 0/1, its fans True/False.
  if (column === 'maintenance_required') return value ? '1' : '0';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'string') return csvText(value);
  if (FLOAT_COLUMNS.has(column) && Number.isInteger(value)) return `${value}.0`;
  return String(value);
}

/** The header line, without a line ending. */
export function csvHeader(): string {
  return CSV_EXPORT_COLUMNS.join(',');
}

/** One reading as a CSV line in reference column order, with its failure label last; no line ending. */
export function csvRow(reading: ReeferReading, label: ReadingLabel): string {
  return [...REFERENCE_COLUMNS.map((c) => cell(reading, c)), label.failure].join(',');
}

export interface CsvExport {
  write(reading: ReeferReading, label: ReadingLabel): void;
  /** Rows written so far, the header not counted. */
  readonly rows: number;
  /** Flushes and closes the file; rejects if any write failed. Safe to call twice. */
  close(): Promise<void>;
}

/** Creates (or truncates) the file and writes the header; rejects when the file cannot be opened. */
export async function openCsvExport(path: string): Promise<CsvExport> {
  const stream = createWriteStream(path, { encoding: 'utf8' });
  let failure: Error | null = null;
  stream.on('error', (error) => (failure ??= error));
  try {
    // Rejects with the stream's error when the file cannot be opened.
    await once(stream, 'open');
  } catch (error) {
    throw new Error(`cannot write "${path}": ${(error as Error).message}`, { cause: error });
  }
  stream.write(`${csvHeader()}\n`);
  let rows = 0;
  let closing: Promise<void> | null = null;
  return {
    write(reading, label) {
      if (closing) throw new Error(`${path}: export already closed`);
      rows += 1;
      // A write buffers in memory while the disk is slower; readings arrive at most a few 10,000 a second.
      stream.write(`${csvRow(reading, label)}\n`);
    },
    get rows() {
      return rows;
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        stream.end(() => (failure ? reject(new Error(`cannot write "${path}": ${failure.message}`)) : resolve()));
      });
      return closing;
    },
  };
}
