#!/usr/bin/env node
/**
 * `reefer-gateway`: reads the configuration (file < environment < flags), starts the gateway and
 * stops it cleanly on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { readConfigFile } from '../cloud-bridge/config-support.js';
import { CONFIG_FLAGS, ConfigError, resolveConfig, type ConfigFlag, type GatewayConfig } from './config.js';
import { isEntryPoint } from '../cloud-bridge/entry-point.js';
import { runHashPassword } from './hash-password.js';
import { startGateway, type Gateway } from './main.js';
import { createLogger } from './ops/logger.js';

export const GATEWAY_USAGE = `Usage: reefer-gateway [--config FILE] [flags]
       reefer-gateway hash-password [--user NAME] (a device's password hash; --help for more)

Receives reefer telemetry over MQTT, keeps it durable in a SQLite outbox and forwards it to Kafka.

Options:
  -c, --config FILE        YAML configuration file (see docs/configuration.md)
${Object.entries(CONFIG_FLAGS)
  .map(([flag, spec]) => `      --${flag.padEnd(19)}${spec.help} (${spec.key})`)
  .join('\n')}
  -h, --help               print this help and exit

Environment variables REEFER_<FLAG> (e.g. REEFER_KAFKA_BROKERS) override the file; flags override both.
`;

export type GatewayArgs = { ok: true; help: boolean; configPath?: string; flags: Partial<Record<ConfigFlag, string>> } | { ok: false; message: string };

export function parseGatewayArgs(argv: readonly string[]): GatewayArgs {
  const flagOptions = Object.fromEntries(Object.keys(CONFIG_FLAGS).map((flag) => [flag, { type: 'string' as const }]));
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { ...flagOptions, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    const flags: Partial<Record<ConfigFlag, string>> = {};
    for (const flag of Object.keys(CONFIG_FLAGS) as ConfigFlag[]) {
      const value = (values as Record<string, unknown>)[flag];
      if (typeof value === 'string') flags[flag] = value;
    }
    return { ok: true, help: values.help === true, configPath: typeof values.config === 'string' ? values.config : undefined, flags };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

export function loadGatewayConfig(args: { configPath?: string; flags: Partial<Record<ConfigFlag, string>> }, env: Record<string, string | undefined>): Readonly<GatewayConfig> {
  const read = readConfigFile(args.configPath);
  if (!read.ok) throw new ConfigError([read.problem]);
  return resolveConfig({ file: read.file, fileName: args.configPath, env, flags: args.flags });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'hash-password') {
    process.exitCode = await runHashPassword(process.argv.slice(3), process);
    return;
  }
  const args = parseGatewayArgs(process.argv.slice(2));
  if (!args.ok) {
    process.stderr.write(`reefer-gateway: ${args.message}\n\n${GATEWAY_USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(GATEWAY_USAGE);
    return;
  }
  let config: Readonly<GatewayConfig>;
  try {
    config = loadGatewayConfig(args, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`reefer-gateway: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.log.level);
  const starting = startGateway(config, { logger });
  let stopping = false;
  const closeAndExit = (running: Gateway) =>
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error instanceof Error ? error.message : String(error) }, 'error while stopping');
        process.exit(1);
      },
    );
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    // A stop asked for while starting waits for the start, then closes cleanly; a failed start exits on its own.
    void starting.then(closeAndExit, () => undefined);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await starting;
}

if (isEntryPoint(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`reefer-gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
