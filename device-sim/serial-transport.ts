/**
 * A simulated device's end of a serial line: the only device-sim file that imports serialport.
 * It writes readings as lines in one framing (serial-forms.ts), or raw bytes for noise and torn lines.
 */
import { SerialPort } from 'serialport';
import type { ReeferReading } from '../schemas/reefer-reading.js';
import { CSV_HEADER, encodeLine, type SerialFraming } from './serial-forms.js';

export interface SerialDeviceOptions {
  /** The port to write to, e.g. /dev/ttyUSB0 or one end of a pseudo-terminal pair. */
  path: string;
  framing: SerialFraming;
  /** 9,600 by default; pseudo-terminals ignore it. */
  baudRate?: number;
  /** csv framing only: write the header row once the port is open. */
  csvHeader?: boolean;
}

export interface SerialDevice {
  /** Writes one reading as one line; resolves once the bytes were handed to the operating system. */
  send(reading: ReeferReading): Promise<void>;
  /** Writes bytes as they are: noise, half a line, a sentence with a wrong checksum. */
  write(data: string | Buffer): Promise<void>;
  readonly isOpen: boolean;
  /** Safe to call twice; writes still pending fail. */
  close(): Promise<void>;
}

export type OpenSerialDevice = (options: SerialDeviceOptions) => Promise<SerialDevice>;

export const openSerialDevice: OpenSerialDevice = async (options) => {
  const port = new SerialPort({ path: options.path, baudRate: options.baudRate ?? 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));

  const pending = new Set<(error: Error) => void>();
  let closing: Promise<void> | undefined;
  const failAll = (why: string): void => {
    for (const fail of [...pending]) fail(new Error(`${options.path}: ${why}`));
  };
  // Unplugged, or the other end went away: writes in flight will never drain.
  port.on('close', () => failAll('port closed'));
  port.on('error', (error: Error) => failAll(error.message));

  const write = (data: string | Buffer): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      // serialport queues writes to a closed port until it opens again, which for a vanished port is never.
      if (closing || !port.isOpen) {
        reject(new Error(`${options.path}: port is not open`));
        return;
      }
      let settled = false;
      const settle = (error?: Error | null): void => {
        if (settled) return;
        settled = true;
        pending.delete(settle);
        if (error) reject(error);
        else resolve();
      };
      pending.add(settle);
      port.write(data, (error) => {
        if (error) settle(error);
        else port.drain((drainError) => settle(drainError));
      });
    });

  if (options.csvHeader && options.framing === 'csv') await write(`${CSV_HEADER}\r\n`);

  return {
    send: (reading) => write(encodeLine(reading, options.framing)),
    write,
    get isOpen() {
      return port.isOpen && !closing;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        failAll('port closed');
        if (!port.isOpen) resolve();
        else port.close(() => resolve());
      });
      return closing;
    },
  };
};
