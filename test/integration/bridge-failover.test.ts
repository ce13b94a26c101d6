import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { encodePayload } from '../../device-sim/payload-forms.js';
import { resolveConfig } from '../../gateway/config.js';
import { startGateway, type Gateway } from '../../gateway/main.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { startTestBridge, type TestBridge } from '../harness/bridge-under-test.js';
import { checkDelivery } from '../harness/delivery-check.js';
import { startFaultLoad } from '../harness/fault-load.js';
import { awaitDelivery } from '../harness/fault-report.js';
import { freePort } from '../harness/free-port.js';
import { createGatewayProcess } from '../harness/gateway-process.js';
import { readTopic, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Site {
  gatewayId: string;
  topic: string;
  allow: string[];
  login: { username: string; password: string };
  dataDir: string;
  reader: TopicReader;
}

async function newSite(prefix: string): Promise<Site> {
  const gatewayId = `${prefix}-${randomUUID().slice(0, 6)}`;
  const topic = `${prefix}-${randomUUID().slice(0, 8)}`;
  const dataDir = mkdtempSync(join(tmpdir(), `reefer-${prefix}-`));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const reader = await readTopic(bootstrap, topic);
  cleanups.push(() => reader.close());
  return { gatewayId, topic, allow: [topic, `${topic}-deadletter`, `${topic}-status`], login: { username: gatewayId, password: `pw-${gatewayId}` }, dataDir, reader };
}

/** A gateway in uplink mode mqtt on a fixed MQTT port, so devices find it again after a restart. */
async function startMqttModeGateway(site: Site, mqttPort: number, urls: string[], compression: 'deflate' | 'brotli'): Promise<Gateway> {
  const config = resolveConfig({
    file: {
      gatewayId: site.gatewayId,
      dataDir: site.dataDir,
      http: { enabled: false },
      mqtt: { host: '127.0.0.1', port: mqttPort, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
      // No Kafka address the gateway could reach: everything goes through the bridge.
      kafka: { brokers: ['127.0.0.1:1'], topic: site.topic, deadLetterTopic: `${site.topic}-deadletter` },
      uplink: {
        mode: 'mqtt',
        bridge: { urls, password: site.login.password, compression, reconnectMinMs: 100, reconnectMaxMs: 500, connectTimeoutMs: 2000 },
        statusTopic: `${site.topic}-status`,
        batchSize: 500,
        minBackoffMs: 100,
        maxBackoffMs: 500,
        operationTimeoutMs: 5000,
        closeTimeoutMs: 2000,
      },
      log: { level: process.env.REEFER_TEST_LOG ?? 'silent' },
    },
  });
  return startGateway(config, { logger: createLogger(config.log.level) });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('uplink mode mqtt through the bridge service', () => {
  it('delivers every acknowledged reading once, in per-container order, across a bridge failover and a gateway restart', async () => {
    const site = await newSite('bridge-fo');
    const [portA, mqttPort] = await Promise.all([freePort(), freePort()]);
    let bridgeA: TestBridge | undefined = await startTestBridge(bootstrap, { logins: [site.login], allow: site.allow, port: portA, createTopics: true });
    const bridgeB = await startTestBridge(bootstrap, { logins: [site.login], allow: site.allow });
    cleanups.push(() => bridgeB.close());
    cleanups.push(() => bridgeA?.close());
    const urls = [bridgeA.url, bridgeB.url];
    let gateway: Gateway | undefined = await startMqttModeGateway(site, mqttPort, urls, 'deflate');
    cleanups.push(() => gateway?.close());

    const load = startFaultLoad({ mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, devices: 12, ratePerSecond: 600, seed: 7 });
    let loadStopped = false;
    cleanups.push(() => (loadStopped ? undefined : load.stop()));

    await site.reader.waitFor(400, 15_000);
    // The gateway is on the first URL: that instance goes away mid-stream.
    expect(gateway.status().bridge?.connectedUrl).toBe(bridgeA.url);
    expect(bridgeA.bridge.service.stats().commits).toBeGreaterThan(0);
    await bridgeA.close();
    bridgeA = undefined;
    const beforeFailover = site.reader.records().length;
    await site.reader.waitFor(beforeFailover + 400, 15_000);
    expect(bridgeB.bridge.service.stats().commits).toBeGreaterThan(0);
    expect(gateway.status().bridge).toMatchObject({ connectedUrl: bridgeB.url, connections: 2 });

    // The instance comes back on its port; then the gateway restarts on the same data folder.
    bridgeA = await startTestBridge(bootstrap, { logins: [site.login], allow: site.allow, port: portA });
    await gateway.close();
    gateway = undefined;
    await sleep(300);
    gateway = await startMqttModeGateway(site, mqttPort, urls, 'deflate');
    const beforeRestart = site.reader.records().length;
    await site.reader.waitFor(beforeRestart + 400, 15_000);

    await load.stop();
    loadStopped = true;
    const acknowledged = load.acknowledged();
    await site.reader.waitFor(acknowledged.length, 20_000).catch(() => undefined);
    const delivered = await site.reader.settle(1500);
    const report = checkDelivery(acknowledged, delivered);
    console.log(`bridge failover + gateway restart: ${JSON.stringify({ ...report, altered: report.altered.length })}`);
    expect(report.acknowledged).toBeGreaterThan(1200);
    expect(report.lost).toBe(0);
    expect(report.duplicated).toBe(0);
    expect(report.unexpected).toBe(0);
    expect(report.altered).toEqual([]);
    expect(report.outOfOrder).toEqual([]);
    expect(report.wrongKey).toBe(0);
  });

  it('delivers every acknowledged reading once through the bridge when the gateway process is killed (-9) mid-stream, twice', async () => {
    const site = await newSite('bridge-kill');
    const bridge = await startTestBridge(bootstrap, { logins: [site.login], allow: site.allow, createTopics: true });
    cleanups.push(() => bridge.close());
    const mqttPort = await freePort();
    const gateway = createGatewayProcess({
      dir: site.dataDir,
      config: {
        gatewayId: site.gatewayId,
        dataDir: join(site.dataDir, 'data'),
        mqtt: { host: '127.0.0.1', port: mqttPort, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
        kafka: { brokers: ['127.0.0.1:1'], topic: site.topic, deadLetterTopic: `${site.topic}-deadletter` },
        uplink: {
          mode: 'mqtt',
          bridge: { urls: [bridge.url], password: site.login.password, reconnectMinMs: 100, reconnectMaxMs: 500 },
          statusTopic: `${site.topic}-status`,
          batchSize: 300,
          minBackoffMs: 100,
          maxBackoffMs: 500,
        },
        log: { level: 'info' },
      },
    });
    cleanups.push(() => gateway.kill());
    await gateway.start();
    const load = startFaultLoad({ mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, devices: 10, ratePerSecond: 500, seed: 23 });
    let loadStopped = false;
    cleanups.push(() => (loadStopped ? undefined : load.stop()));
    for (let kill = 0; kill < 2; kill += 1) {
      const before = site.reader.records().length;
      await site.reader.waitFor(before + 200 + Math.floor(Math.random() * 200), 15_000);
      await gateway.kill();
      await gateway.start();
    }
    await site.reader.waitFor(site.reader.records().length + 200, 15_000);
    await load.stop();
    loadStopped = true;
    const report = await awaitDelivery('bridge, kill -9 x2', site.reader, load.acknowledged(), { timeoutMs: 20_000, quietMs: 1500 });
    expect(report.acknowledged, gateway.logs().slice(-3000)).toBeGreaterThan(600);
    expect(report.lost).toBe(0);
    expect(report.duplicated).toBe(0);
    expect(report.unexpected).toBe(0);
    expect(report.outOfOrder).toEqual([]);
    expect(report.wrongKey).toBe(0);
  });

  it('measures uplink bytes per reading through the bridge against the devices’ JSON, for deflate and brotli', async () => {
    const figures: string[] = [];
    for (const compression of ['deflate', 'brotli'] as const) {
      const site = await newSite(`bridge-${compression}`);
      const mqttPort = await freePort();
      const bridgePort = await freePort();
      // The link is down while the readings arrive (a ship out of coverage); they go up as a backlog.
      const gateway = await startMqttModeGateway(site, mqttPort, [`mqtt://127.0.0.1:${bridgePort}`], compression);
      cleanups.push(() => gateway.close());
      const load = startFaultLoad({ mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, devices: 20, ratePerSecond: 2000, seed: 11 });
      await sleep(1500);
      await load.stop();
      const acknowledged = load.acknowledged();
      const bridge = await startTestBridge(bootstrap, { logins: [site.login], allow: site.allow, port: bridgePort, createTopics: true });
      cleanups.push(() => bridge.close());
      const upMs = Date.now();
      await site.reader.waitFor(acknowledged.length, 20_000);
      const drainMs = Date.now() - upMs;
      const report = checkDelivery(acknowledged, await site.reader.settle(500));
      expect(report.lost).toBe(0);
      expect(report.duplicated).toBe(0);

      const stats = bridge.bridge.service.stats();
      const jsonBytes = acknowledged.reduce((n, r) => n + encodePayload(r, 'canonical-json').length, 0);
      const wirePerReading = stats.commitBytes / stats.commitReadings;
      const jsonPerReading = jsonBytes / acknowledged.length;
      expect(stats.commitReadings).toBe(acknowledged.length);
      expect(wirePerReading).toBeLessThan(jsonPerReading);
      figures.push(
        `${compression}: ${wirePerReading.toFixed(1)} B/reading on the bridge link (${stats.commitBytes} B in ${stats.commits} batches, ${stats.commitReadings} readings) vs devices' JSON ${jsonPerReading.toFixed(1)} B/reading (${(jsonPerReading / wirePerReading).toFixed(1)}x smaller); backlog drained in ${drainMs} ms from the bridge's start, reconnect included`,
      );
    }
    console.log(`uplink bytes per reading (backlog batches of up to 500):\n  ${figures.join('\n  ')}`);
  });
});
