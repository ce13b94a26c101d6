/**
 * An MQTT 3.1.1 client written byte by byte on a plain socket, for devices that misbehave in ways a
 * real client library will not: frames larger than the broker allows, frames cut off halfway, bytes
 * that are not MQTT at all, a connection reset in the middle of a publish.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/** MQTT's remaining length: 7 bits a byte, least significant first, the top bit set on all but the last. */
export function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

function utf8Field(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** CONNECT with a clean session, MQTT 3.1.1 unless `protocolLevel` says otherwise. */
export function connectPacket(clientId: string, options: { keepaliveS?: number; protocolLevel?: number } = {}): Buffer {
  const keepalive = Buffer.alloc(2);
  keepalive.writeUInt16BE(options.keepaliveS ?? 60);
  const body = Buffer.concat([utf8Field('MQTT'), Buffer.from([options.protocolLevel ?? 4, 0x02]), keepalive, utf8Field(clientId)]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

/** PUBLISH at QoS 1 with the given packet id. */
export function publishPacket(topic: string, payload: Buffer, packetId: number): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId);
  const body = Buffer.concat([utf8Field(topic), id, payload]);
  return Buffer.concat([Buffer.from([0x32]), remainingLength(body.length), body]);
}

export interface RawMqttClient {
  readonly socket: Socket;
  /** Resolves with the CONNACK return code (0 = accepted). */
  connack(): Promise<number>;
  /** Resolves once the PUBACK for `packetId` arrives; rejects if the connection closes first. */
  puback(packetId: number): Promise<void>;
  write(bytes: Buffer): void;
  /** Resolves once the broker (or we) closed the connection. */
  closed(): Promise<void>;
  /** Drops the connection with a TCP reset, as a device losing power or signal does. */
  reset(): void;
}

/** Opens a TCP connection to `url` (mqtt://host:port) and reads CONNACK and PUBACK packets off it. */
export async function openRawMqtt(url: string): Promise<RawMqttClient> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  socket.setNoDelay(true);
  await once(socket, 'connect');

  let inbox = Buffer.alloc(0);
  let connackCode: number | undefined;
  const acked = new Set<number>();
  const waiters = new Set<() => void>();
  let isClosed = false;
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  socket.on('data', (chunk: Buffer) => {
    inbox = Buffer.concat([inbox, chunk]);
    // Only CONNACK and PUBACK are expected, both two-byte bodies with a one-byte remaining length.
    while (inbox.length >= 2 && inbox.length >= 2 + inbox[1]!) {
      const type = inbox[0]! >> 4;
      const body = inbox.subarray(2, 2 + inbox[1]!);
      if (type === 2) connackCode = body[1];
      if (type === 4) acked.add(body.readUInt16BE(0));
      inbox = inbox.subarray(2 + inbox[1]!);
    }
    notify();
  });
  // A reset or a refused packet surfaces as an error before close; close tells the waiters.
  socket.on('error', () => undefined);
  socket.on('close', () => {
    isClosed = true;
    notify();
  });

  const waitFor = <T>(ready: () => T | undefined, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const value = ready();
        if (value !== undefined) {
          waiters.delete(check);
          resolve(value);
        } else if (isClosed) {
          waiters.delete(check);
          reject(new Error(`connection closed before ${what}`));
        }
      };
      waiters.add(check);
      check();
    });

  return {
    socket,
    connack: () => waitFor(() => connackCode, 'CONNACK'),
    puback: (packetId) => waitFor(() => (acked.has(packetId) ? true : undefined), `PUBACK ${packetId}`).then(() => undefined),
    write: (bytes) => {
      if (!isClosed) socket.write(bytes);
    },
    // Not once(socket, 'close'): that rejects on the 'error' a reset raises first.
    closed: () => new Promise<void>((resolve) => (isClosed ? resolve() : socket.once('close', () => resolve()))),
    reset: () => socket.resetAndDestroy(),
  };
}
