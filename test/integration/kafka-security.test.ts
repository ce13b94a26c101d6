import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { startKafkaBroker, type KafkaBroker } from '../harness/kafka-broker.js';
import { readTopic } from '../harness/topic-reader.js';

// A broker of its own: the shared one listens on plaintext only.
const GATEWAY_PASSWORD = `gw-${randomUUID()}`;
const WRONG_PASSWORD = `not-${randomUUID()}`;

let broker: KafkaBroker;
beforeAll(async () => {
  broker = await startKafkaBroker({ saslSsl: { users: [{ name: 'gateway', password: GATEWAY_PASSWORD }] } });
});
afterAll(async () => {
  await broker?.close();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Every line the gateway logs, at debug level, kafkajs's routed lines included. */
function capturingLogger(lines: string[]) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return pino({ level: 'debug' }, sink);
}

async function gatewayOverSaslSsl(password: string, logLines: string[]): Promise<{ gw: GatewayUnderTest; topic: string }> {
  const topic = `secure-${randomUUID().slice(0, 8)}`;
  const gw = await startTestGateway(
    broker.bootstrap,
    {
      kafka: {
        brokers: [broker.saslSslBootstrap!],
        topic,
        deadLetterTopic: `${topic}-deadletter`,
        requestTimeoutMs: 5000,
        connectionTimeoutMs: 2000,
        tls: { caFile: broker.caFile },
        sasl: { mechanism: 'scram-sha-512', username: 'gateway', password },
      },
      uplink: { minBackoffMs: 100, maxBackoffMs: 1000, statusTopic: `${topic}-status` },
    },
    { logger: capturingLogger(logLines) },
  );
  cleanups.push(() => gw.close());
  return { gw, topic };
}

async function sendReadings(gw: GatewayUnderTest, count: number): Promise<void> {
  const device = await connectDevice({ url: gw.mqttUrl, clientId: 'secure-c01', qos: 1 });
  try {
    for (let minute = 0; minute < count; minute++) {
      const body = { container_id: 'C01', measurement_time: new Date(Date.UTC(2026, 4, 1, 0, minute)).toISOString(), temperature: 3.5 };
      await device.publish('reefer/C01/telemetry', Buffer.from(JSON.stringify(body)));
    }
  } finally {
    await device.close();
  }
}

describe('Kafka over SASL_SSL (SCRAM-SHA-512)', () => {
  it('delivers readings to the real broker over TLS with SCRAM credentials, and logs no password', async () => {
    const logLines: string[] = [];
    const { gw, topic } = await gatewayOverSaslSsl(GATEWAY_PASSWORD, logLines);
    // Read back over the broker's plaintext listener: what arrived, not how.
    const reader = await readTopic(broker.bootstrap, topic);
    cleanups.push(() => reader.close());
    await sendReadings(gw, 10);
    await reader.waitFor(10, 60_000);
    const delivered = await reader.settle(1000);
    expect(delivered.map((r) => r.value.container_id)).toEqual(Array(10).fill('C01'));
    expect(gw.gateway.status().uplink).toBe('up');
    await expect.poll(() => gw.gateway.status().outbox.count, { timeout: 30_000 }).toBe(0);
    expect(logLines.join('')).not.toContain(GATEWAY_PASSWORD);
  });

  it('keeps the uplink down with a wrong password, keeps the readings in the outbox, and never logs the password', async () => {
    const logLines: string[] = [];
    const { gw } = await gatewayOverSaslSsl(WRONG_PASSWORD, logLines);
    await sendReadings(gw, 3);
    await expect.poll(() => gw.gateway.status().stats.uplinkErrors, { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    const status = gw.gateway.status();
    expect(status.uplink).toBe('down');
    expect(status.stats.sent).toBe(0);
    expect(status.outbox.count).toBe(3);

    const text = logLines.join('');
    expect(text).toMatch(/authentication failed/i);
    expect(text).not.toContain(WRONG_PASSWORD);
    expect(text).not.toContain(GATEWAY_PASSWORD);
    expect(JSON.stringify(status)).not.toContain(WRONG_PASSWORD);
  });
});
