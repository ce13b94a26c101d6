/**
 * Bridge service instances for tests: in this process, on a free (or given) port, against the
 * harness's Kafka, with test logins hashed at the lowest scrypt cost so logins stay fast.
 */
import { hashPassword } from '../../cloud-bridge/bridge-password.js';
import { resolveBridgeConfig } from '../../cloud-bridge/bridge-config.js';
import { createBridgeLink, type BridgeLink, type BridgeLinkOptions } from '../../cloud-bridge/bridge-link.js';
import { startBridge, type RunningBridge } from '../../cloud-bridge/bridge-serve.js';
import { createLogger } from '../../gateway/ops/logger.js';

export interface TestLogin {
  username: string;
  password: string;
}

export interface TestBridgeOptions {
  logins: readonly TestLogin[];
  allow: readonly string[];
  /** Plain port to listen on (0: any); ignored with tls. */
  port?: number;
  tls?: { port?: number; certFile: string; keyFile: string; caFile?: string; requireClientCert?: boolean };
  createTopics?: boolean;
  commandsTopic?: string;
}

export interface TestBridge {
  bridge: RunningBridge;
  /** mqtt://127.0.0.1:<port>, or mqtts:// with tls. */
  url: string;
  close(): Promise<void>;
}

const hashes = new Map<string, Promise<string>>();

/** One hash per password for the whole run: scrypt at cost 10 still takes milliseconds. */
function hashOf(password: string): Promise<string> {
  let hash = hashes.get(password);
  if (!hash) {
    hash = hashPassword(password, { logN: 10, r: 8, p: 1 });
    hashes.set(password, hash);
  }
  return hash;
}

export async function startTestBridge(bootstrap: string, options: TestBridgeOptions): Promise<TestBridge> {
  const users = await Promise.all(options.logins.map(async (l) => ({ username: l.username, passwordHash: await hashOf(l.password) })));
  const config = resolveBridgeConfig({
    file: {
      mqtt: {
        host: '127.0.0.1',
        port: options.tls ? null : (options.port ?? 0),
        ...(options.tls ? { tls: { port: 0, ...options.tls } } : {}),
        users,
      },
      kafka: { brokers: [bootstrap], requestTimeoutMs: 5000, connectionTimeoutMs: 1000 },
      topics: { allow: options.allow, create: options.createTopics ?? false },
      commands: { topic: options.commandsTopic ?? '' },
      log: { level: process.env.REEFER_TEST_LOG ?? 'silent' },
    },
  });
  const bridge = await startBridge(config, { logger: createLogger(config.log.level, 'reefer-bridge') });
  const url = options.tls ? `mqtts://127.0.0.1:${bridge.tlsPort()}` : `mqtt://127.0.0.1:${bridge.port()}`;
  return { bridge, url, close: () => bridge.close() };
}

/** A gateway's link to a bridge with the tests' timings, started; the caller closes it. */
export function startTestLink(options: {
  url: string;
  login: TestLogin;
  topic: string;
  tls?: BridgeLinkOptions['tls'];
  compression?: BridgeLinkOptions['compression'];
}): BridgeLink {
  const link = createBridgeLink(
    {
      gatewayId: options.login.username,
      urls: [options.url],
      username: options.login.username,
      password: options.login.password,
      tls: options.tls,
      compression: options.compression ?? 'brotli',
      topic: options.topic,
      keepaliveS: 30,
      connectTimeoutMs: 3000,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
      requestTimeoutMs: 10_000,
    },
    { logger: createLogger((process.env.REEFER_TEST_LOG ?? 'silent') as 'silent') },
  );
  link.start();
  return link;
}
