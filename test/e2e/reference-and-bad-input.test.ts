import { afterEach, describe, expect, inject, it } from 'vitest';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { encodeReadingSingleObject } from '../../schemas/avro.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { readRawTopic, readTopic, type TopicReader } from '../harness/topic-reader.js';
import { REFERENCE_READING, REFERENCE_TUPLE } from '../harness/reference-reading.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(): Promise<{ gw: GatewayUnderTest; reader: TopicReader }> {
  const gw = await startTestGateway(bootstrap);
  cleanups.push(() => gw.close());
  const reader = await readTopic(bootstrap, gw.topic);
  cleanups.push(() => reader.close());
  return { gw, reader };
}


const EXPECTED_C01 = { ...REFERENCE_READING };

describe('reference payloads', () => {
  it('turns the reference envelope with a tuple string and with an object payload into canonical records', async () => {
    const { gw, reader } = await setup();
    const device = await connectDevice({ url: gw.mqttUrl, clientId: 'ref-c01', qos: 1 });
    cleanups.push(() => device.close());
    await device.publish(
      'reefer/C01/telemetry',
      Buffer.from(JSON.stringify({ containerID: 'C01', timestamp: '2020-01-15 17:59:45', type: 'ReeferTelemetries', payload: REFERENCE_TUPLE })),
    );
    await device.publish(
      'reefer/C01/telemetry',
      Buffer.from(
        JSON.stringify({
          containerID: 'C01',
          timestamp: '2020-01-15 18:04:45',
          type: 'ReeferTelemetries',
          payload: {
            container_id: 'C01',
            measurement_time: '2020-01-15 18:04:45',
            product_id: 'P05',
            temperature: 5.02,
            target_temperature: 5.0,
            ambiant_temperature: 20.5,
            kilowatts: 2.6,
            time_door_open: 0,
            content_type: 1,
            defrost_cycle: 5,
            oxygen_level: 21.5,
            nitrogen_level: 75.9,
            humidity_level: 39.8,
            carbon_dioxide_level: 4.7,
            vent_1: true,
            vent_2: true,
            vent_3: true,
            latitude: '37.82',
            longitude: '-122.32',
            maintenance_required: 0,
          },
        }),
      ),
    );
    const records = await reader.waitFor(2, 30_000);
    expect(records.map((r) => r.key)).toEqual(['C01', 'C01']);
    expect(records[0]!.value).toMatchObject(EXPECTED_C01);
    expect(records[1]!.value).toMatchObject({ ...EXPECTED_C01, measurement_time: Date.UTC(2020, 0, 15, 18, 4, 45) });
  });
});

describe('bad input', () => {
  const valid = (minute: number) =>
    Buffer.from(JSON.stringify({ container_id: 'C02', measurement_time: `2024-03-01T10:${String(minute).padStart(2, '0')}:00Z`, temperature: 4.1 }));

  const cases: { reason: string; payload: Buffer; topic?: string }[] = [
    { reason: 'malformed-json', payload: Buffer.from('{"container_id": "C02", "temperature": ') },
    { reason: 'unknown-form', payload: Buffer.from('[1, 2, 3]') },
    { reason: 'missing-field', payload: Buffer.from(JSON.stringify({ measurement_time: '2024-03-01T10:00:00Z', temperature: 4 })) },
    { reason: 'wrong-type', payload: Buffer.from(JSON.stringify({ container_id: 'C02', measurement_time: '2024-03-01T10:00:00Z', temperature: 'cold' })) },
    { reason: 'out-of-range', payload: Buffer.from(JSON.stringify({ container_id: 'C02', measurement_time: '2024-03-01T10:00:00Z', temperature: 999 })) },
    { reason: 'bad-timestamp', payload: Buffer.from(JSON.stringify({ container_id: 'C02', measurement_time: 'yesterday', temperature: 4 })) },
    { reason: 'bad-tuple', payload: Buffer.from(JSON.stringify({ containerID: 'C02', type: 'ReeferTelemetries', payload: "('C02', '2024-03-01 10:00:00', 5.0" })) },
    { reason: 'bad-avro', payload: Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9]) },
    { reason: 'container-mismatch', payload: Buffer.from(JSON.stringify({ container_id: 'C99', measurement_time: '2024-03-01T10:00:00Z', temperature: 4 })) },
    { reason: 'oversized', payload: Buffer.alloc(70 * 1024, 0x20) },
  ];

  it.each(cases)('rejects $reason with a counted, dead-lettered reason and keeps the device connected', async ({ reason, payload }) => {
    const { gw, reader } = await setup();
    const device = await connectDevice({ url: gw.mqttUrl, clientId: `bad-${reason}`, qos: 1 });
    cleanups.push(() => device.close());

    await device.publish('reefer/C02/telemetry', payload);
    await device.publish('reefer/C02/telemetry', valid(1));

    const records = await reader.waitFor(1, 30_000);
    expect(records.map((r) => r.value.measurement_time)).toEqual([Date.parse('2024-03-01T10:01:00Z')]);
    expect(device.connected).toBe(true);
    const status = gw.gateway.status();
    expect(status.stats.rejected).toEqual({ mqtt: { [reason]: 1 } });
    expect(status.stats.accepted).toEqual({ mqtt: 1 });
    expect(status.ledger).toEqual([{ containerId: 'C02', reason, count: 1 }]);

    // The rejected input reaches the dead-letter topic with its reason and detail.
    const dead = await readRawTopic(bootstrap, `${gw.topic}-deadletter`);
    try {
      await expect.poll(() => dead.records().length, { timeout: 30_000 }).toBe(1);
      const letter = JSON.parse(dead.records()[0]!.value!.toString('utf8')) as { reason: string; detail: string; source: string; payloadBase64: string };
      expect(letter.reason).toBe(reason);
      expect(letter.detail.length).toBeGreaterThan(0);
      expect(letter.source).toBe('reefer/C02/telemetry');
      expect(Buffer.from(letter.payloadBase64, 'base64')).toEqual(payload.subarray(0, 4096));
    } finally {
      await dead.close();
    }
    await expect.poll(() => gw.gateway.status().deadLetters).toBe(0);
  });

  it('accepts an Avro reading a device encoded itself', async () => {
    const { gw, reader } = await setup();
    const device = await connectDevice({ url: gw.mqttUrl, clientId: 'avro-dev', qos: 1 });
    cleanups.push(() => device.close());
    await device.publish('reefer/C01/telemetry', encodeReadingSingleObject(EXPECTED_C01));
    const [record] = await reader.waitFor(1, 30_000);
    expect(record!.value).toMatchObject(EXPECTED_C01);
  });
});
