/** Starts a gateway in this process on a free MQTT port, a temp data folder and its own topic. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { resolveConfig, type GatewayConfig } from '../../gateway/config.js';
import { startGateway, type Gateway } from '../../gateway/main.js';
import { createLogger, type Logger } from '../../gateway/ops/logger.js';

export interface GatewayUnderTest {
  gateway: Gateway;
  config: Readonly<GatewayConfig>;
  topic: string;
  mqttUrl: string;
  dataDir: string;
  close(): Promise<void>;
}

/** `deps.logger` replaces the silent (or REEFER_TEST_LOG) logger, for tests that check what the gateway logs. */
export async function startTestGateway(
  bootstrap: string,
  overrides: Record<string, unknown> = {},
  deps: { logger?: Logger } = {},
): Promise<GatewayUnderTest> {
  const dataDir = mkdtempSync(join(tmpdir(), 'reefer-gw-'));
  const topic = `reefer-telemetry-${randomUUID().slice(0, 8)}`;
  const config = resolveConfig({
    file: {
      gatewayId: 'gw-test',
      dataDir,
      http: { host: '127.0.0.1', port: 0 },
      kafka: { brokers: [bootstrap], topic, deadLetterTopic: `${topic}-deadletter`, requestTimeoutMs: 5000, connectionTimeoutMs: 1000 },
      uplink: { minBackoffMs: 100, maxBackoffMs: 1000 },
      log: { level: process.env.REEFER_TEST_LOG ?? 'silent' },
      ...overrides,
      // The suite's devices connect anonymously; tests of credentials and TLS pass their own mqtt.auth.
      mqtt: { host: '127.0.0.1', port: 0, auth: { allowAnonymous: true }, ...(overrides.mqtt as Record<string, unknown> | undefined) },
    },
  });
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, { logger: deps.logger ?? createLogger(config.log.level) });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    gateway,
    config,
    topic,
    mqttUrl: `mqtt://127.0.0.1:${gateway.mqttPort()}`,
    dataDir,
    async close() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The value of one series in the gateway's Prometheus exposition (/metrics), or undefined when absent. */
export async function gatewayMetric(gw: GatewayUnderTest, series: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${gw.gateway.httpPort()}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
