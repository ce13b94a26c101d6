/**
 * A lean MQTT 3.1.1 publisher for the benchmark's load: CONNECT, QoS 1 PUBLISH and their
 * acknowledgements written and read straight on a TCP socket, the packets of one tick in one write.
 * It spends a fraction of a general client's CPU per reading, so on a machine the benchmark shares
 * with the gateway and the broker, more of the cores go to the gateway. Nothing else of MQTT: no
 * keep-alive (0), no subscriptions, no QoS 2, no reconnection.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connectPacket, remainingLength } from '../harness/raw-mqtt-client.js';

export interface LeanDevice {
  /** Resolves once the broker's PUBACK for this publish arrives; rejects if the connection ends first. */
  publish(topic: string, payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

const CONNACK = 0x20;
const PUBACK = 0x40;

export function connectLeanDevice(url: string, clientId: string, timeoutMs: number): Promise<LeanDevice> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connectTcp({ host: hostname, port: Number(port || 1883), noDelay: true });
    const waiting = new Map<number, { resolve(): void; reject(error: Error): void }>();
    let nextId = 1;
    let pending: Buffer[] = [];
    let flushQueued = false;
    let input: Buffer = Buffer.alloc(0);
    let connected = false;
    const timer = setTimeout(() => fail(new Error(`${clientId}: no CONNACK within ${timeoutMs} ms`)), timeoutMs);

    function fail(error: Error): void {
      clearTimeout(timer);
      socket.destroy();
      if (!connected) reject(error);
      for (const w of waiting.values()) w.reject(error);
      waiting.clear();
    }

    function flush(): void {
      flushQueued = false;
      const packets = pending;
      pending = [];
      socket.write(packets.length === 1 ? packets[0]! : Buffer.concat(packets));
    }

    socket.on('error', fail);
    socket.on('close', () => fail(new Error(`${clientId}: connection closed`)));
    socket.on('data', (chunk: Buffer) => {
      input = input.length === 0 ? chunk : Buffer.concat([input, chunk]);
      let at = 0;
      while (input.length - at >= 2) {
        let length = 0;
        let multiplier = 1;
        let i = at + 1;
        for (;;) {
          if (i >= input.length) break;
          const byte = input[i++]!;
          length += (byte & 0x7f) * multiplier;
          multiplier *= 128;
          if ((byte & 0x80) === 0) break;
        }
        if (i + length > input.length || (input[i - 1]! & 0x80) !== 0) break;
        const type = input[at]! & 0xf0;
        if (type === PUBACK) {
          const id = input.readUInt16BE(i);
          const w = waiting.get(id);
          waiting.delete(id);
          w?.resolve();
        } else if (type === CONNACK && !connected) {
          clearTimeout(timer);
          if (input[i + 1] !== 0) return fail(new Error(`${clientId}: CONNACK refused with code ${input[i + 1]}`));
          connected = true;
          resolve(device);
        }
        at = i + length;
      }
      input = at === input.length ? Buffer.alloc(0) : input.subarray(at);
    });
    socket.once('connect', () => socket.write(connectPacket(clientId, { keepaliveS: 0 })));

    const device: LeanDevice = {
      publish(topic, payload) {
        const id = nextId;
        nextId = nextId === 0xffff ? 1 : nextId + 1;
        const topicLength = Buffer.byteLength(topic);
        const remaining = 2 + topicLength + 2 + payload.length;
        const header = remainingLength(remaining);
        const packet = Buffer.allocUnsafe(1 + header.length + remaining);
        let at = 0;
        packet[at++] = 0x32; // PUBLISH, QoS 1
        at += header.copy(packet, at);
        packet.writeUInt16BE(topicLength, at);
        at += 2;
        at += packet.write(topic, at, 'utf8');
        packet.writeUInt16BE(id, at);
        at += 2;
        payload.copy(packet, at);
        pending.push(packet);
        if (!flushQueued) {
          flushQueued = true;
          setImmediate(flush);
        }
        return new Promise<void>((resolvePublish, rejectPublish) => waiting.set(id, { resolve: resolvePublish, reject: rejectPublish }));
      },
      close() {
        if (socket.destroyed) return Promise.resolve();
        return new Promise<void>((resolveClose) => {
          socket.once('close', () => resolveClose());
          socket.end(Buffer.from([0xe0, 0x00])); // DISCONNECT
        });
      },
    };
  });
}
