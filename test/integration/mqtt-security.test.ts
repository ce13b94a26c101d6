import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectDevice, type DeviceConnection, type DeviceConnectionOptions } from '../../device-sim/mqtt-transport.js';
import { hashPassword } from '../../gateway/ingest/mqtt-auth.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { createTestCertificates, type TestCertificates } from '../harness/test-certs.js';
import { readTopic, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const C01_PASSWORD = 'c01-device-password';
const C02_PASSWORD = 'c02-device-password';

let dir: string;
let certs: TestCertificates;
let gw: GatewayUnderTest;
let reader: TopicReader;
const logLines: string[] = [];
const devices: DeviceConnection[] = [];

/** `reefer-gateway hash-password --user`, run as an operator would, password on standard input. */
function credentialsLine(user: string, password: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli.ts', 'hash-password', '--user', user, '--cost', '10'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end(`${password}\n`);
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`hash-password exited with ${code}`)))));
}

function capturingLogger() {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(...chunk.toString().split('\n').filter((l) => l.length > 0));
      callback();
    },
  });
  return pino({ level: 'debug' }, sink);
}

const refused = (reason: string) => gw.gateway.status().security.refused[reason as keyof ReturnType<typeof gw.gateway.status>['security']['refused']] ?? 0;
const overTls = (): Pick<DeviceConnectionOptions, 'url' | 'tls'> => ({ url: `mqtts://127.0.0.1:${gw.gateway.mqttTlsPort()}`, tls: { ca: readFileSync(certs.caFile) } });

async function device(options: Partial<DeviceConnectionOptions> & { clientId: string }): Promise<DeviceConnection> {
  const connection = await connectDevice({ ...overTls(), qos: 1, reconnectPeriodMs: 0, connectTimeoutMs: 20_000, ...options });
  devices.push(connection);
  return connection;
}

function reading(containerId: string, minute: number): Buffer {
  return Buffer.from(JSON.stringify({ container_id: containerId, measurement_time: new Date(Date.UTC(2026, 2, 1, 0, minute)).toISOString(), temperature: 4.5 }));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'reefer-mqtt-security-'));
  certs = createTestCertificates(join(dir, 'certs'));
  const usersFile = join(dir, 'devices.txt');
  writeFileSync(usersFile, `# made by reefer-gateway hash-password\n${await credentialsLine('C01', C01_PASSWORD)}`);
  gw = await startTestGateway(
    bootstrap,
    {
      mqtt: {
        port: 0,
        tls: { port: 0, certFile: certs.server.certFile, keyFile: certs.server.keyFile },
        auth: { users: [{ username: 'C02', passwordHash: await hashPassword(C02_PASSWORD, { logN: 10, r: 8, p: 1 }) }], usersFile },
      },
    },
    { logger: capturingLogger() },
  );
  reader = await readTopic(bootstrap, gw.topic);
});

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
  await reader?.close();
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('MQTT security', () => {
  it('delivers the reading of a device logged in over TLS with its credentials to Kafka', async () => {
    const c01 = await device({ clientId: 'c01', username: 'C01', password: C01_PASSWORD });
    await c01.publish('reefer/C01/telemetry', reading('C01', 0));
    const [record] = await reader.waitFor(1, 30_000);
    expect(record!.value).toMatchObject({ container_id: 'C01', temperature: 4.5, transport: 'mqtt' });
  });

  it('refuses a wrong password, a missing password, no credentials and an unknown user, and counts each', async () => {
    await expect(device({ clientId: 'c01-wrong', username: 'C01', password: 'guess' })).rejects.toThrow(/Bad username or password/);
    await expect(device({ clientId: 'c01-none', username: 'C01' })).rejects.toThrow(/Bad username or password/);
    await expect(device({ clientId: 'anonymous' })).rejects.toThrow(/Not authorized/);
    await expect(device({ clientId: 'who', username: 'C99', password: C01_PASSWORD })).rejects.toThrow(/Bad username or password/);
    expect(refused('bad-password')).toBe(2);
    expect(refused('no-credentials')).toBe(1);
    expect(refused('unknown-user')).toBe(1);
  });

  it("closes the connection of a device publishing to another device's topic, stores nothing of it, and counts it", async () => {
    const accepted = gw.gateway.status().stats.acceptedTotal;
    const c02 = await device({ clientId: 'c02-spoof', username: 'C02', password: C02_PASSWORD });
    // Settled into a value at once: the refusal fails this publish while the test is still polling.
    const spoofed = c02.publish('reefer/C01/telemetry', reading('C01', 5)).then(
      () => 'acknowledged',
      (error: unknown) => error,
    );
    await expect.poll(() => refused('publish-denied'), { timeout: 20_000 }).toBe(1);
    await expect.poll(() => c02.connected, { timeout: 20_000 }).toBe(false);
    await c02.close();
    expect(await spoofed).toBeInstanceOf(Error);
    expect(gw.gateway.status().stats.acceptedTotal).toBe(accepted);
  });

  it("refuses subscriptions to another device's commands, and to all of them by wildcard, and keeps the device connected", async () => {
    const c02 = await device({ clientId: 'c02-sub', username: 'C02', password: C02_PASSWORD });
    expect(await c02.subscribe('reefer/C01/commands')).toBe(128);
    expect(await c02.subscribe('reefer/+/commands')).toBe(128);
    expect(await c02.subscribe('reefer/C01/telemetry')).toBe(128);
    expect(await c02.subscribe('reefer/C02/commands')).toBe(1);
    expect(refused('subscribe-denied')).toBe(3);
    expect(c02.connected).toBe(true);
    await c02.publish('reefer/C02/telemetry', reading('C02', 0));
  });

  it('refuses a device on the plain TCP port while TLS is required, even with good credentials, and counts it', async () => {
    await expect(device({ url: gw.mqttUrl, tls: undefined, clientId: 'c01-plain', username: 'C01', password: C01_PASSWORD })).rejects.toThrow(/Not authorized/);
    expect(refused('tls-required')).toBe(1);
  });

  it('logs each refusal with its reason, and no password, hash or payload of any device', async () => {
    const refusals = logLines.map((l) => JSON.parse(l) as { msg: string; reason?: string }).filter((l) => l.msg === 'MQTT refused');
    expect(new Set(refusals.map((l) => l.reason))).toEqual(new Set(['bad-password', 'no-credentials', 'unknown-user', 'publish-denied', 'subscribe-denied', 'tls-required']));
    const text = logLines.join('\n');
    expect(text).not.toContain(C01_PASSWORD);
    expect(text).not.toContain(C02_PASSWORD);
    expect(text).not.toContain('guess');
    expect(text).not.toContain('$scrypt$');
  });
});

describe('MQTT over TLS with device certificates required', () => {
  it('refuses devices without a certificate signed by the configured CA, counted as tls-handshake, and takes one with it', async () => {
    const hash = await hashPassword(C01_PASSWORD, { logN: 10, r: 8, p: 1 });
    const own = createTestCertificates(join(dir, 'mtls'), ['c01-device']);
    const strict = await startTestGateway(bootstrap, {
      mqtt: {
        port: null,
        tls: { port: 0, certFile: own.server.certFile, keyFile: own.server.keyFile, caFile: own.caFile, requireClientCert: true },
        auth: { users: [{ username: 'C01', passwordHash: hash }] },
      },
    });
    const opened: DeviceConnection[] = [];
    try {
      const base = { url: `mqtts://127.0.0.1:${strict.gateway.mqttTlsPort()}`, clientId: 'c01', qos: 1 as const, reconnectPeriodMs: 0, username: 'C01', password: C01_PASSWORD };
      const ca = readFileSync(own.caFile);
      await expect(connectDevice({ ...base, tls: { ca } })).rejects.toThrow();
      const stranger = { ca, cert: readFileSync(own.stranger.certFile), key: readFileSync(own.stranger.keyFile) };
      await expect(connectDevice({ ...base, tls: stranger })).rejects.toThrow();
      await expect.poll(() => strict.gateway.status().security.refused['tls-handshake'], { timeout: 20_000 }).toBe(2);

      const client = own.clients['c01-device']!;
      const good = await connectDevice({ ...base, tls: { ca, cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) } });
      opened.push(good);
      await good.publish('reefer/C01/telemetry', reading('C01', 30));
      expect(strict.gateway.status().stats.acceptedTotal).toBe(1);
      expect(strict.gateway.mqttPort()).toBe(0);
    } finally {
      await Promise.all(opened.map((d) => d.close()));
      await strict.close();
    }
  });
});
