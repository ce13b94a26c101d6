/**
 * The device side of the reconnect storm (test/integration/reconnect-storm.test.ts): 1,800
 * well-behaved devices and 200 that misbehave, all connecting within a couple of seconds. Run in a
 * process of its own (storm-devices-child.ts), so the devices' work does not slow the gateway's event
 * loop and each process holds one end of the 2,000 connections.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { connectDevice, jitteredBackoffMs, type DeviceConnection } from '../../device-sim/mqtt-transport.js';
import { encodePayload, telemetryTopic, type PayloadForm } from '../../device-sim/payload-forms.js';
import type { RejectReason } from '../../gateway/pipeline/decode-reading.js';
import { READING_FINGERPRINT, SINGLE_OBJECT_MAGIC } from '../../schemas/avro.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { sampleReading } from './reference-reading.js';
import { connectPacket, openRawMqtt, publishPacket, remainingLength, type RawMqttClient } from './raw-mqtt-client.js';

export interface StormOptions {
  mqttUrl: string;
  /** The gateway's mqtt.maxPayloadBytes and mqtt.limits.maxPacketBytes, to size the oversized frames. */
  maxPayloadBytes: number;
  maxPacketBytes: number;
  wellBehaved: number;
  readingsPerDevice: number;
  /** Devices per misbehaviour; there are five. */
  perMisbehaviour: number;
  /** Devices start connecting spread evenly over this window. */
  connectWindowMs: number;
  /** Readings each flooding device sends at once. */
  floodReadings: number;
  /** Measurement time of every device's first reading, whole seconds. */
  startMs: number;
}

const MISBEHAVIOURS = ['garbage payloads', 'oversized frames', 'broken frames', 'flood', 'abrupt disconnect'] as const;
const FORMS: readonly PayloadForm[] = ['canonical-json', 'envelope-object', 'envelope-tuple', 'avro'];

/**
 * A plausible reading, the `n`th a device sends, one second after the one before. `startMs` is whole
 * seconds, so every payload form carries the time exactly.
 */
export function stormReading(containerId: string, n: number, startMs: number): ReeferReading {
  return sampleReading({
    container_id: containerId,
    measurement_time: startMs + n * 1000,
    product_id: 'P02',
    temperature: 6 + (n % 10) / 10,
    target_temperature: 6,
    ambient_temperature: 20.5,
    kilowatts: 2.6,
    content_type: 2,
    humidity_level: 60,
  });
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** What a confused or broken device publishes, with the reason the gateway must give. */
function garbage(containerId: string, startMs: number): { payload: Buffer; reason: RejectReason }[] {
  const good = { ...stormReading(containerId, 0, startMs), measurement_time: '2026-01-01 00:00:00' };
  return [
    { payload: Buffer.from([0xff, 0x00, 0x13, 0x37, 0x0a]), reason: 'malformed-json' },
    { payload: Buffer.from('{"container_id": "G", "temperature": '), reason: 'malformed-json' },
    { payload: Buffer.alloc(0), reason: 'malformed-json' },
    { payload: Buffer.from('[1, 2, 3]'), reason: 'unknown-form' },
    { payload: json({ containerID: containerId, payload: "('C01', 'half a tuple'" }), reason: 'bad-tuple' },
    { payload: Buffer.concat([SINGLE_OBJECT_MAGIC, READING_FINGERPRINT, Buffer.from([0xff, 0xff, 0xff])]), reason: 'bad-avro' },
    { payload: json({ ...good, temperature: 'warm' }), reason: 'wrong-type' },
    { payload: json({ ...good, temperature: 500 }), reason: 'out-of-range' },
    { payload: json({ ...good, measurement_time: '2026-02-30 00:00:00' }), reason: 'bad-timestamp' },
    { payload: json({ ...good, container_id: 'C0001' }), reason: 'container-mismatch' },
    { payload: json({ container_id: containerId, temperature: 5 }), reason: 'missing-field' },
  ];
}

export interface StormTally {
  /** Readings the gateway acknowledged, by who sent them. */
  ackedWellBehaved: ReeferReading[];
  ackedFlood: ReeferReading[];
  ackedAbrupt: ReeferReading[];
  /** Complete publishes an abrupt device sent without waiting for their acknowledgement. */
  unackedAbrupt: ReeferReading[];
  /** Flood publishes not acknowledged before the gateway dropped the connection. */
  /** Publishes an abrupt device cut off halfway: they can never become readings. */
  halfWritten: ReeferReading[];
  unackedFlood: ReeferReading[];
  expectedRejections: Partial<Record<RejectReason, number>>;
  /** Connections closed for announcing a packet over mqtt.limits.maxPacketBytes. */
  tooLargeFrames: number;
  /** Milliseconds from the start of the storm at which each device was connected. */
  connectedAtMs: number[];
  /** Milliseconds each device waited from its first try to its CONNACK (or, for bytes that are not MQTT, its TCP connection). */
  connectMs: number[];
}

function countRejection(tally: StormTally, reason: RejectReason): void {
  tally.expectedRejections[reason] = (tally.expectedRejections[reason] ?? 0) + 1;
}

/** Devices retry a first connection that fails in the crowd, as the fleet's do; only well-behaved ones reconnect later. */
async function connectWithRetry(o: StormOptions, clientId: string, options: { reconnect?: boolean } = {}): Promise<DeviceConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectDevice({ url: o.mqttUrl, clientId, qos: 1, reconnectPeriodMs: options.reconnect ? 1_000 : 0 });
    } catch (error) {
      if (attempt === 5) throw error;
      await delay(jitteredBackoffMs(attempt - 1, 250, 5_000));
    }
  }
}

/** How long a device waits for its CONNACK before it tries again; MQTT.js's default. */
const CONNACK_TIMEOUT_MS = 10_000;

/** A raw MQTT connection that, like connectWithRetry, tries again when the crowd delays or drops its CONNACK. */
async function connectRaw(o: StormOptions, clientId: string): Promise<RawMqttClient> {
  for (let attempt = 1; ; attempt++) {
    let client: RawMqttClient | undefined;
    const timeout = new AbortController();
    try {
      client = await openRawMqtt(o.mqttUrl);
      client.write(connectPacket(clientId));
      const code = await Promise.race([
        client.connack(),
        delay(CONNACK_TIMEOUT_MS, undefined, { signal: timeout.signal }).then(() => Promise.reject(new Error('CONNACK timeout'))),
      ]);
      if (code !== 0) throw new Error(`CONNACK return code ${code}, expected 0`);
      return client;
    } catch (error) {
      client?.socket.destroy();
      if (attempt === 5) throw error;
      await delay(jitteredBackoffMs(attempt - 1, 250, 5_000));
    } finally {
      timeout.abort();
    }
  }
}

/** Publishes the garbage list over a real MQTT client; each is acknowledged (and dead-lettered). */
async function garbagePublisher(o: StormOptions, id: string, tally: StormTally, connected: () => void): Promise<void> {
  const conn = await connectWithRetry(o, id);
  connected();
  try {
    for (const { payload, reason } of garbage(id, o.startMs)) {
      await conn.publish(telemetryTopic(id), payload);
      countRejection(tally, reason);
    }
  } finally {
    await conn.close();
  }
}

/**
 * Even devices publish a reading over mqtt.maxPayloadBytes but within the packet limit: it is
 * acknowledged and dead-lettered as oversized. Odd ones announce a packet over the limit and start
 * streaming it: the gateway closes the connection before buffering it.
 */
async function oversizedPublisher(o: StormOptions, index: number, tally: StormTally, connected: () => void): Promise<void> {
  const id = `O${index}`;
  const { maxPayloadBytes, maxPacketBytes } = o;
  const client = await connectRaw(o, id);
  connected();
  if (index % 2 === 0) {
    const room = maxPacketBytes - maxPayloadBytes - 1024;
    const payload = Buffer.alloc(maxPayloadBytes + 1 + ((index * 7919) % room), 0x20);
    json(stormReading(id, 0, o.startMs)).copy(payload);
    client.write(publishPacket(telemetryTopic(id), payload, 1));
    await client.puback(1);
    countRejection(tally, 'oversized');
    client.write(Buffer.from([0xe0, 0x00]));
    client.socket.end();
  } else {
    // Up to MQTT's largest remaining length (256 MB); only the first 64 KB are ever sent.
    const announced = index % 4 === 1 ? maxPacketBytes * 4 : 268_435_455;
    const topic = Buffer.from(telemetryTopic(id));
    client.write(Buffer.concat([Buffer.from([0x32]), remainingLength(announced), Buffer.from([0, topic.length]), topic]));
    client.write(Buffer.alloc(64 * 1024, 0x7b));
    await client.closed();
    tally.tooLargeFrames += 1;
  }
  await client.closed();
}

/** Bytes that are not MQTT, or MQTT the broker must refuse; each connection must be closed by the gateway. */
async function brokenFramer(o: StormOptions, index: number, tally: StormTally, connected: () => void): Promise<void> {
  const id = `B${index}`;
  const client = await openRawMqtt(o.mqttUrl);
  connected();
  switch (index % 4) {
    case 0:
      client.write(Buffer.from('GET /telemetry HTTP/1.1\r\nHost: gateway\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n'));
      break;
    case 1:
      // MQTT 5, which the embedded broker does not speak: refused in the CONNACK.
      client.write(connectPacket(id, { protocolLevel: 5 }));
      break;
    case 2:
      client.write(connectPacket(id));
      await client.connack();
      // A remaining length that runs on for five bytes is malformed [MQTT-2.2.3].
      client.write(Buffer.from([0x32, 0xff, 0xff, 0xff, 0xff, 0x7f]));
      break;
    default:
      // A publish before CONNECT [MQTT-3.1.0-1].
      client.write(publishPacket(telemetryTopic(id), json(stormReading(id, 0, o.startMs)), 1));
  }
  await client.closed();
}

/** Publishes as fast as the client library goes: everything at once, without waiting for acknowledgements. */
async function flooder(o: StormOptions, id: string, tally: StormTally, connected: () => void): Promise<void> {
  const conn = await connectWithRetry(o, id);
  connected();
  const readings = Array.from({ length: o.floodReadings }, (_, n) => stormReading(id, n, o.startMs));
  const outcomes = await Promise.allSettled(readings.map((r) => conn.publish(telemetryTopic(id), encodePayload(r, 'canonical-json'))));
  // The gateway may refuse a flood past its rate limit and drop the connection: what was not
  // acknowledged by then may or may not have been stored.
  outcomes.forEach((o, n) => (o.status === 'fulfilled' ? tally.ackedFlood : tally.unackedFlood).push(readings[n]!));
  await conn.close();
}

/**
 * One acknowledged reading, then three more sent without waiting and a fourth cut off halfway, and
 * the connection dropped: with a TCP reset (power or signal lost) or a plain close.
 */
async function abruptDisconnector(o: StormOptions, index: number, tally: StormTally, connected: () => void): Promise<void> {
  const id = `A${index}`;
  const client = await connectRaw(o, id);
  connected();
  const first = stormReading(id, 0, o.startMs);
  client.write(publishPacket(telemetryTopic(id), encodePayload(first, 'canonical-json'), 1));
  await client.puback(1);
  tally.ackedAbrupt.push(first);
  for (let n = 1; n <= 3; n++) {
    const r = stormReading(id, n, o.startMs);
    client.write(publishPacket(telemetryTopic(id), encodePayload(r, 'canonical-json'), n + 1));
    tally.unackedAbrupt.push(r);
  }
  const cut = stormReading(id, 4, o.startMs);
  const frame = publishPacket(telemetryTopic(id), encodePayload(cut, 'canonical-json'), 5);
  client.write(frame.subarray(0, Math.floor(frame.length / 2)));
  tally.halfWritten.push(cut);
  if (index % 2 === 0) client.reset();
  else client.socket.destroy();
  await client.closed();
}

/**
 * A well-behaved device: connects, publishes its readings at QoS 1 one after another in its payload
 * form, and stays connected until the storm is over, so all 2,000 connections are open at once.
 */
async function wellBehaved(o: StormOptions, index: number, tally: StormTally, connected: () => void, sent: () => void, stormOver: Promise<void>): Promise<void> {
  const id = `C${String(index + 1).padStart(4, '0')}`;
  const form = FORMS[index % FORMS.length]!;
  const conn = await connectWithRetry(o, id, { reconnect: true });
  connected();
  try {
    for (let n = 0; n < o.readingsPerDevice; n++) {
      const r = stormReading(id, n, o.startMs);
      await conn.publish(telemetryTopic(id), encodePayload(r, form));
      tally.ackedWellBehaved.push(r);
    }
    sent();
    await stormOver;
  } finally {
    await conn.close();
  }
}

/**
 * Runs the storm: every device starts at its moment in the window; the well-behaved ones hold their
 * connections until they and every misbehaving device are done, so all of them are open at once.
 */
export async function runStorm(o: StormOptions): Promise<StormTally & { failures: string[] }> {
  const tally: StormTally = {
    ackedWellBehaved: [],
    ackedFlood: [],
    ackedAbrupt: [],
    unackedAbrupt: [],
    halfWritten: [],
    unackedFlood: [],
    expectedRejections: {},
    tooLargeFrames: 0,
    connectedAtMs: [],
    connectMs: [],
  };
  const misbehaviours = [
    (i: number, connected: () => void) => garbagePublisher(o, `G${i}`, tally, connected),
    (i: number, connected: () => void) => oversizedPublisher(o, i, tally, connected),
    (i: number, connected: () => void) => brokenFramer(o, i, tally, connected),
    (i: number, connected: () => void) => flooder(o, `F${i}`, tally, connected),
    (i: number, connected: () => void) => abruptDisconnector(o, i, tally, connected),
  ];
  const devices = o.wellBehaved + misbehaviours.length * o.perMisbehaviour;
  let endStorm = (): void => {};
  const stormOver = new Promise<void>((resolve) => (endStorm = resolve));
  const failures: string[] = [];
  const misbehavingRuns: Promise<void>[] = [];
  const wellBehavedRuns: Promise<void>[] = [];
  const sendingDone: Promise<void>[] = [];
  const t0 = performance.now();
  // Names what a storm that does not end is waiting for; the test's own timeout decides when that is a failure.
  const busy = new Set<string>();
  const watchdog = setInterval(() => {
    process.stderr.write(`storm devices: ${busy.size} still busy after ${Math.round((performance.now() - t0) / 1000)} s: ${[...busy].slice(0, 12).join(', ')}\n`);
  }, 30_000);
  watchdog.unref();
  // Every tenth device misbehaves.
  for (let n = 0; n < devices; n++) {
    const misbehaves = n % 10 === 9 && misbehavingRuns.length < misbehaviours.length * o.perMisbehaviour;
    const index = misbehaves ? misbehavingRuns.length : wellBehavedRuns.length;
    const kind = index % misbehaviours.length;
    const label = misbehaves ? `misbehaving device ${index} (${MISBEHAVIOURS[kind]})` : `device ${index}`;
    busy.add(label);
    let resolveSent = (): void => {};
    if (!misbehaves) sendingDone.push(new Promise<void>((resolve) => (resolveSent = resolve)));
    // A well-behaved device is no longer busy once its readings are acknowledged, though it stays connected.
    const sent = (): void => {
      busy.delete(label);
      resolveSent();
    };
    const run = async (): Promise<void> => {
      await delay((n * o.connectWindowMs) / devices);
      const triedMs = performance.now();
      const connected = (): void => {
        const now = performance.now();
        tally.connectedAtMs.push(now - t0);
        tally.connectMs.push(now - triedMs);
      };
      if (misbehaves) await misbehaviours[kind]!(Math.floor(index / misbehaviours.length), connected);
      else await wellBehaved(o, index, tally, connected, sent, stormOver);
    };
    const outcome = run()
      .catch((error: unknown) => {
        failures.push(`${label}: ${String(error)}`);
      })
      .finally(sent);
    (misbehaves ? misbehavingRuns : wellBehavedRuns).push(outcome);
  }
  await Promise.all([...misbehavingRuns, ...sendingDone]);
  endStorm();
  await Promise.all(wellBehavedRuns);
  clearInterval(watchdog);
  return { ...tally, failures };
}
