import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createFleet } from '../../device-sim/fleet.js';
import { gatewayMetric, startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { startKafkaBroker, type KafkaBroker } from '../harness/kafka-broker.js';
import { startMosquitto } from '../harness/mosquitto.js';
import { connectDevice } from '../../device-sim/mqtt-transport.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function gateway(kafka: string, overrides: Record<string, unknown> = {}): Promise<GatewayUnderTest> {
  const gw = await startTestGateway(kafka, overrides);
  cleanups.push(() => gw.close());
  return gw;
}

async function get(gw: GatewayUnderTest, path: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${gw.gateway.httpPort()}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

async function json<T = Record<string, unknown>>(gw: GatewayUnderTest, path: string): Promise<{ status: number; body: T }> {
  const res = await get(gw, path);
  return { status: res.status, body: JSON.parse(res.text) as T };
}


describe('operations HTTP', () => {
  it('serves metrics that grow as a simulated fleet publishes and the uplink sends to Kafka', async () => {
    const gw = await gateway(bootstrap);
    const metrics = await get(gw, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    expect(await gatewayMetric(gw, 'reefer_readings_accepted_total{transport="mqtt"}')).toBe(0);

    const fleet = createFleet({ mqttUrl: gw.mqttUrl, devices: 10, countPerDevice: 10, ratePerSecond: 0, seed: 21, qos: 1, form: 'canonical-json' });
    cleanups.push(() => fleet.stop());
    expect((await fleet.run()).errors).toBe(0);
    const device = await connectDevice({ url: gw.mqttUrl, clientId: 'bad-device', qos: 1 });
    await device.publish('reefer/C0001/telemetry', Buffer.from('{"container_id": "C0001", '));
    await device.close();

    expect(await gatewayMetric(gw, 'reefer_readings_accepted_total{transport="mqtt"}')).toBe(100);
    expect(await gatewayMetric(gw, 'reefer_readings_rejected_total{transport="mqtt",reason="malformed-json"}')).toBe(1);
    expect(await gatewayMetric(gw, 'reefer_loss_ledger_readings_total{reason="malformed-json"}')).toBe(1);
    await expect.poll(() => gatewayMetric(gw, 'reefer_uplink_sent_readings_total'), { timeout: 60_000 }).toBe(100);
    await expect.poll(() => gatewayMetric(gw, 'reefer_outbox_readings'), { timeout: 30_000 }).toBe(0);
    expect(await gatewayMetric(gw, 'reefer_uplink_state{state="up"}')).toBe(1);
    expect(await gatewayMetric(gw, 'reefer_uplink_send_duration_seconds_count')).toBeGreaterThan(0);
    expect(await gatewayMetric(gw, 'reefer_uplink_batch_readings_sum')).toBe(100);
    expect(await gatewayMetric(gw, 'reefer_containers_online')).toBe(10);
    expect(await gatewayMetric(gw, 'reefer_disk_free_bytes')).toBeGreaterThan(0);
    expect(await gatewayMetric(gw, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const containers = await json<{ containers: { containerId: string; temperature: number }[]; online: number }>(gw, '/api/containers');
    expect(containers.body.containers.map((c) => c.containerId)).toHaveLength(10);
    expect(containers.body.online).toBe(10);
  });

  it('stays alive and ready through a Kafka outage, reporting the uplink down, and is unready while the disk refuses input', async () => {
    // This test stops Kafka, so it has a broker of its own.
    const broker: KafkaBroker = await startKafkaBroker();
    cleanups.push(() => broker.close());
    const gw = await gateway(broker.bootstrap, { uplink: { minBackoffMs: 100, maxBackoffMs: 1000, operationTimeoutMs: 3000, probeIntervalMs: 500 } });
    await expect.poll(async () => (await json(gw, '/readyz')).body.uplink, { timeout: 60_000 }).toBe('up');
    expect(await json(gw, '/readyz')).toEqual({ status: 200, body: { ready: true, mqtt: 'listening', outbox: 'writable', uplink: 'up' } });

    await broker.stop();
    await expect.poll(async () => (await json(gw, '/readyz')).body.uplink, { timeout: 60_000 }).toBe('down');
    expect(await json(gw, '/readyz')).toEqual({ status: 200, body: { ready: true, mqtt: 'listening', outbox: 'writable', uplink: 'down' } });
    expect(await json(gw, '/healthz')).toEqual({ status: 200, body: { status: 'alive' } });
    expect(await gatewayMetric(gw, 'reefer_uplink_state{state="down"}')).toBe(1);
    expect(await gatewayMetric(gw, 'reefer_uplink_errors_total')).toBeGreaterThan(0);

    await broker.start();
    await expect.poll(async () => (await json(gw, '/readyz')).body.uplink, { timeout: 90_000 }).toBe('up');

    // A disk below outbox.minFreeBytes: the gateway refuses input, so it is alive but not ready.
    const full = await gateway(broker.bootstrap, { outbox: { minFreeBytes: Number.MAX_SAFE_INTEGER } });
    expect(await json(full, '/readyz')).toMatchObject({ status: 503, body: { ready: false, mqtt: 'listening', outbox: 'refusing' } });
    expect((await get(full, '/healthz')).status).toBe(200);
  });

  it('never shows the password of a configured upstream broker in /api/status, /metrics or /readyz', async () => {
    const password = 'Sh1p-7-upstream-secret';
    const mosquitto = await startMosquitto();
    cleanups.push(() => mosquitto.close());
    const gw = await gateway(bootstrap, {
      upstream: { brokers: [{ url: mosquitto.url, clientId: 'ops-test-upstream', username: 'reefer-gateway', password, topics: ['reefer/+/telemetry'] }] },
    });
    await expect.poll(async () => (await json<{ upstream: { state: string }[] }>(gw, '/api/status')).body.upstream[0]?.state, { timeout: 30_000 }).toBe('up');

    const status = await get(gw, '/api/status');
    expect(status.status).toBe(200);
    const body = JSON.parse(status.text) as { gatewayId: string; upstream: { broker: string; clientId: string }[] };
    expect(body.gatewayId).toBe('gw-test');
    expect(body.upstream).toEqual([expect.objectContaining({ broker: mosquitto.url, clientId: 'ops-test-upstream', state: 'up' })]);
    for (const path of ['/api/status', '/metrics', '/readyz', '/api/containers', '/']) {
      const { text } = await get(gw, path);
      expect(text).not.toContain(password);
      expect(text).not.toMatch(/"password"/i);
    }
  });

  it('answers 404 for an unknown path and 405 for a method other than GET', async () => {
    const gw = await gateway(bootstrap);
    expect((await get(gw, '/nothing-here')).status).toBe(404);
    const res = await fetch(`http://127.0.0.1:${gw.gateway.httpPort()}/metrics`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('does not start when its HTTP port is taken, and names the key to change', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => squatter.close(() => resolve())));
    const port = (squatter.address() as AddressInfo).port;
    await expect(startTestGateway(bootstrap, { http: { host: '127.0.0.1', port } })).rejects.toThrow(/http\.port.*EADDRINUSE/);
  });

  it('serves nothing over HTTP when http.enabled is false', async () => {
    const gw = await gateway(bootstrap, { http: { enabled: false } });
    expect(gw.gateway.httpPort()).toBe(0);
  });
});
