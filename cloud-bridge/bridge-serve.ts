/**
 * `reefer-bridge serve`: the MQTT uplink bridge, the composition root of the bridge service. Gateways
 * on links that cannot hold a Kafka connection (satellite, captive networks) connect here over MQTT
 * with TLS; their batches are written to Kafka exactly once, and commands flow back to them.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { BRIDGE_FLAGS, BridgeConfigError, parseBridgeUsersFile, resolveBridgeConfig, type BridgeConfig, type BridgeFlag } from './bridge-config.js';
import { createBridgeServer, type BridgeServer } from './bridge-server.js';
import { createBridgeService, type BridgeService } from './bridge-service.js';
import { readConfigFile } from './config-support.js';
import { createKafkaClient } from './kafka-client.js';
import type { BridgeSubcommand } from './subcommand.js';

export const SERVE_USAGE = `Usage: reefer-bridge serve [--config FILE] [flags]

Runs the MQTT uplink bridge: gateways in uplink mode mqtt connect over MQTT (TLS, user name and
password); each batch is written to Kafka in one transaction and acknowledged only after Kafka
committed it; commands on reefer-commands are forwarded to their gateway. Run several instances
side by side and list them all in each gateway's uplink.bridge.urls. See docs/bridge.md.

Options:
  -c, --config FILE        YAML configuration file (see docs/bridge.md)
${Object.entries(BRIDGE_FLAGS)
  .map(([flag, spec]) => `      --${flag.padEnd(19)}${spec.help} (${spec.key})`)
  .join('\n')}
  -h, --help               print this help and exit
`;

export interface RunningBridge {
  /** Plain MQTT port bound; 0 without one. */
  port(): number;
  tlsPort(): number;
  service: BridgeService;
  server: BridgeServer;
  close(): Promise<void>;
}

function loadLogins(config: Readonly<BridgeConfig>): { username: string; passwordHash: string }[] {
  const logins = [...config.mqtt.users];
  const file = config.mqtt.usersFile;
  if (file === undefined) return logins;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new BridgeConfigError([`mqtt.usersFile: cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`]);
  }
  const parsed = parseBridgeUsersFile(text);
  const inline = new Set(logins.map((u) => u.username));
  for (const user of parsed.users) if (inline.has(user.username)) parsed.problems.push(`gateway ${user.username} is also in mqtt.users`);
  if (parsed.problems.length > 0) throw new BridgeConfigError(parsed.problems.map((p) => `mqtt.usersFile ${file}: ${p}`));
  return [...logins, ...parsed.users];
}

/** Starts the bridge: Kafka first (topics, if asked), then the MQTT listeners. */
export async function startBridge(config: Readonly<BridgeConfig>, deps: { logger: Logger }): Promise<RunningBridge> {
  const logger = deps.logger;
  const logins = loadLogins(config);
  // The kafka section's connection keys are named as the adapter's options.
  const kafka = createKafkaClient({ ...config.kafka, logger });
  const admin = kafka.admin();
  if (config.topics.create) {
    const topics = [...config.topics.allow, ...(config.commands.topic && !config.topics.allow.includes(config.commands.topic) ? [config.commands.topic] : [])];
    await admin.ensureTopics(
      topics.map((topic) =>
        topic === 'gateway-status' ? { topic, partitions: 1, config: { 'cleanup.policy': 'compact' } } : { topic, partitions: config.topics.partitions },
      ),
    );
  }
  const service = createBridgeService(
    {
      allowTopics: config.topics.allow,
      commandsTopic: config.commands.topic,
      kafkaCompression: config.kafka.compression,
      transactionTimeoutMs: config.kafka.transactionTimeoutMs,
      commandCompression: 'deflate',
      commandStoreTimeoutMs: config.commands.storeTimeoutMs,
    },
    {
      kafka,
      admin,
      logger,
      // Called only once the server below has started.
      publish: (gatewayId, channel, payload) => server.publish(gatewayId, channel, payload),
    },
  );
  const server = createBridgeServer(
    { host: config.mqtt.host, port: config.mqtt.port, tls: config.mqtt.tls, logins },
    {
      logger,
      onRequest: (connection, payload) => service.handleRequest(connection, payload),
      onCommandsWanted: (connection) => service.commandsWanted(connection),
      onConnectionGone: (connection) => service.connectionGone(connection),
    },
  );
  try {
    await server.start();
  } catch (error) {
    await server.close();
    await service.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  logger.info({ port: server.port(), tlsPort: server.tlsPort(), kafka: config.kafka.brokers, topics: config.topics.allow, gateways: logins.length }, 'bridge started');
  return {
    port: () => server.port(),
    tlsPort: () => server.tlsPort(),
    service,
    server,
    close() {
      closing ??= (async () => {
        // Gateways see the bridge go and move to another instance; their sessions there fence these.
        await server.close();
        await service.close();
        logger.info('bridge stopped');
      })();
      return closing;
    },
  };
}

export type ServeArgs = { ok: true; help: boolean; configPath?: string; flags: Partial<Record<BridgeFlag, string>> } | { ok: false; message: string };

export function parseServeArgs(argv: readonly string[]): ServeArgs {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(Object.keys(BRIDGE_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
    const flags: Partial<Record<BridgeFlag, string>> = {};
    for (const flag of Object.keys(BRIDGE_FLAGS) as BridgeFlag[]) {
      const value = (values as Record<string, unknown>)[flag];
      if (typeof value === 'string') flags[flag] = value;
    }
    return { ok: true, help: values.help === true, configPath: typeof values.config === 'string' ? values.config : undefined, flags };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

export function loadBridgeConfig(
  args: { configPath?: string; flags: Partial<Record<BridgeFlag, string>> },
  env: Readonly<Record<string, string | undefined>> = {},
): Readonly<BridgeConfig> {
  const read = readConfigFile(args.configPath);
  if (!read.ok) throw new BridgeConfigError([read.problem]);
  return resolveBridgeConfig({ file: read.file, fileName: args.configPath, env, flags: args.flags });
}

export const serveSubcommand: BridgeSubcommand = {
  summary: 'the MQTT uplink bridge: gateways in uplink mode mqtt write to Kafka through it',
  async run(argv, io) {
    const args = parseServeArgs(argv);
    if (!args.ok) {
      io.stderr.write(`reefer-bridge serve: ${args.message}\n\n${SERVE_USAGE}`);
      return 2;
    }
    if (args.help) {
      io.stdout.write(SERVE_USAGE);
      return 0;
    }
    let config: Readonly<BridgeConfig>;
    try {
      config = loadBridgeConfig(args, io.env);
    } catch (error) {
      if (error instanceof BridgeConfigError) {
        io.stderr.write(`reefer-bridge serve: ${error.message}\n`);
        return 2;
      }
      throw error;
    }
    const logger = pino({ name: 'reefer-bridge', level: config.log.level, base: { name: 'reefer-bridge' } }, pino.destination({ dest: 2, sync: false }));
    let bridge: RunningBridge;
    try {
      bridge = await startBridge(config, { logger });
    } catch (error) {
      if (error instanceof BridgeConfigError) {
        io.stderr.write(`reefer-bridge serve: ${error.message}\n`);
        return 2;
      }
      throw error;
    }
    const signal = await io.stopRequested;
    logger.info({ signal }, 'stopping');
    await bridge.close();
    logger.flush();
    return 0;
  },
};
