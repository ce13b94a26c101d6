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

/** Longest a closing serial link waits for lines still being written. */
const CLOSE_DRAIN_MS = 5_000;

export interface SerialTransportOptions {
  /** One port per device, handed out in the order devices open their links. */
  paths: readonly string[];
  framing: SerialFraming;
  baudRate?: number;
}

/**
 * Devices that each own a serial line, for a fleet that mixes serial devices with MQTT ones. A line has
 * no acknowledgement: a reading counts as sent once it was written.
 */
export function createSerialTransport(options: SerialTransportOptions, deps: { openSerialDevice?: OpenSerialDevice } = {}) {
  const open = deps.openSerialDevice ?? openSerialDevice;
  const byContainer = new Map<string, string>();
  let next = 0;
  return {
    kind: 'serial',
    async open(containerId: string) {
      let path = byContainer.get(containerId);
      if (path === undefined) {
        path = options.paths[next];
        if (path === undefined) throw new Error(`no serial port left for ${containerId}: ${options.paths.length} configured`);
        next += 1;
        byContainer.set(containerId, path);
      }
      const device = await open({ path, framing: options.framing, baudRate: options.baudRate, csvHeader: true });
      const writing = new Set<Promise<unknown>>();
      return {
        send: (reading: ReeferReading) => {
          const write = device.send(reading);
          const settled = write.catch(() => undefined).finally(() => writing.delete(settled));
          writing.add(settled);
          return write;
        },
        // Lines already handed over are let through before the port closes, as an MQTT device waits for its acks.
        close: async () => {
          await Promise.race([Promise.all([...writing]), new Promise((resolve) => setTimeout(resolve, CLOSE_DRAIN_MS))]);
          await device.close();
        },
        get connected() {
          return device.isOpen;
        },
      };
    },
  };
}
