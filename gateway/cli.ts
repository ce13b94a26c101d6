#!/usr/bin/env node
/**
 * `reefer-gateway`: reads the configuration (file < environment < flags), starts the gateway and
 * stops it cleanly on SIGINT/SIGTERM.
 *
 * Only node's own modules are imported here up front; the rest is loaded once the V8 heap settings
 * below are set, because a young generation grown while libraries load (zod alone doubles it twice)
 * is kept from then on.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { isEntryPoint } from '../cloud-bridge/entry-point.js';
import type { CONFIG_FLAGS, ConfigFlag, GatewayConfig } from './config.js';
import type { Gateway } from './main.js';

type ConfigFlags = typeof CONFIG_FLAGS;

export function gatewayUsage(configFlags: ConfigFlags): string {
  return `Usage: reefer-gateway [--config FILE] [flags]
       reefer-gateway hash-password [--user NAME] (a device's password hash; --help for more)

Receives reefer telemetry over MQTT, keeps it durable in a SQLite outbox and forwards it to Kafka.

Options:
  -c, --config FILE        YAML configuration file (see docs/configuration.md)
${Object.entries(configFlags)
  .map(([flag, spec]) => `      --${flag.padEnd(19)}${spec.help} (${spec.key})`)
  .join('\n')}
  -h, --help               print this help and exit

Environment variables REEFER_<FLAG> (e.g. REEFER_KAFKA_BROKERS) override the file; flags override both.
`;
}

export type GatewayArgs = { ok: true; help: boolean; configPath?: string; flags: Partial<Record<ConfigFlag, string>> } | { ok: false; message: string };

export function parseGatewayArgs(argv: readonly string[], configFlags: ConfigFlags): GatewayArgs {
  const flagOptions = Object.fromEntries(Object.keys(configFlags).map((flag) => [flag, { type: 'string' as const }]));
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { ...flagOptions, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    const flags: Partial<Record<ConfigFlag, string>> = {};
    for (const flag of Object.keys(configFlags) as ConfigFlag[]) {
      const value = (values as Record<string, unknown>)[flag];
      if (typeof value === 'string') flags[flag] = value;
    }
    return { ok: true, help: values.help === true, configPath: typeof values.config === 'string' ? values.config : undefined, flags };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

/** Throws the configuration module's ConfigError for a bad file, value or key. */
export async function loadGatewayConfig(args: { configPath?: string; flags: Partial<Record<ConfigFlag, string>> }, env: Record<string, string | undefined>): Promise<Readonly<GatewayConfig>> {
  const [{ readConfigFile }, { ConfigError, resolveConfig }] = await Promise.all([import('../cloud-bridge/config-support.js'), import('./config.js')]);
  const read = readConfigFile(args.configPath);
  if (!read.ok) throw new ConfigError([read.problem]);
  return resolveConfig({ file: read.file, fileName: args.configPath, env, flags: args.flags });
}

/**
 * V8 heap settings the gateway gives itself, so that it holds 2,000 connected devices in about 91 MB
 * of resident memory instead of ~136 without anyone passing node flags (docs/performance.md).
 * - The young generation stays at the size it has when they are set (1 MB a semi-space, as node
 *   starts) instead of doubling up to 16 MB under load, which held 25–30 MB of RSS for bursts.
 * - The old generation may grow by 50 % past what survived the last full collection before the next
 *   one, instead of V8's default of up to 4×.
 * Both give way to V8's defaults while collecting garbage takes much of the time (gcLoadMode), so
 * running flat out costs no throughput. Unlike --max-semi-space-size or --max-old-space-size, V8
 * reads both each time it resizes the heap, so they take effect when set after start (before the
 * libraries load, see above). A size flag given to node (on its command line or in NODE_OPTIONS) is
 * the user's choice and wins over the setting it concerns.
 */
export const GATEWAY_HEAP_FLAGS: readonly { flag: string; value: string; busyValue: string; yieldsTo: readonly string[] }[] = [
  { flag: '--semi-space-growth-factor', value: '1', busyValue: '2', yieldsTo: ['--semi-space-growth-factor', '--max-semi-space-size', '--min-semi-space-size'] },
  { flag: '--heap-growing-percent', value: '50', busyValue: '0', yieldsTo: ['--heap-growing-percent'] },
];

/** The GATEWAY_HEAP_FLAGS that none of `nodeFlags` (node's own options, `--a_b` or `--a-b`) overrides. */
export function gatewayHeapFlags(nodeFlags: readonly string[]): string[] {
  return heapSettings(nodeFlags).map((s) => `${s.flag}=${s.value}`);
}

function heapSettings(nodeFlags: readonly string[]): (typeof GATEWAY_HEAP_FLAGS)[number][] {
  const given = new Set(nodeFlags.map((f) => f.split('=')[0]!.replaceAll('_', '-')));
  return GATEWAY_HEAP_FLAGS.filter((s) => !s.yieldsTo.some((f) => given.has(f)));
}

/**
 * Applies gatewayHeapFlags for this process, and switches them to V8's defaults while collecting
 * garbage takes much of the time (gcLoadMode). Returns the flags set; close() stops the switching.
 */
export function applyGatewayHeapFlags(execArgv: readonly string[], nodeOptions: string | undefined): { flags: string[]; close(): void } {
  const settings = heapSettings([...execArgv, ...(nodeOptions ?? '').split(/\s+/).filter((f) => f !== '')]);
  for (const s of settings) setFlagsFromString(`${s.flag}=${s.value}`);
  const watch = settings.length > 0 ? watchGcLoad((mode) => settings.forEach((s) => setFlagsFromString(`${s.flag}=${mode === 'busy' ? s.busyValue : s.value}`))) : undefined;
  return { flags: settings.map((s) => `${s.flag}=${s.value}`), close: () => watch?.close() };
}

/** Share of time spent collecting garbage above which the heap may grow as V8 likes. */
export const GC_BUSY_ABOVE = 0.1;
/** Below this share the gateway's own heap settings hold again (V8 shrinks the heap once allocation slows). */
export const GC_QUIET_BELOW = 0.03;
/** How often the share is looked at. */
export const GC_WINDOW_MS = 1000;

export type GcLoadMode = 'quiet' | 'busy';

/**
 * The heap settings for the next window, from the share of the last one spent collecting garbage.
 * A small heap costs nothing measurable at a ship's pace, but flat out (devices sending a backlog,
 * 10,000 readings/s and more) its young generation is collected so often that a quarter of the
 * throughput goes; there V8 may size the heap as it likes, and once the load is gone the settings
 * hold again.
 */
export function gcLoadMode(gcShare: number, current: GcLoadMode): GcLoadMode {
  if (gcShare > GC_BUSY_ABOVE) return 'busy';
  if (gcShare < GC_QUIET_BELOW) return 'quiet';
  return current;
}

/** Calls `onChange` when gcLoadMode changes, from the collections of every GC_WINDOW_MS. */
function watchGcLoad(onChange: (mode: GcLoadMode) => void): { close(): void } {
  let gcMs = 0;
  let mode: GcLoadMode = 'quiet';
  let since = performance.now();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  const timer = setInterval(() => {
    const at = performance.now();
    const next = gcLoadMode(gcMs / Math.max(1, at - since), mode);
    gcMs = 0;
    since = at;
    if (next !== mode) onChange(next);
    mode = next;
  }, GC_WINDOW_MS);
  timer.unref();
  return {
    close() {
      clearInterval(timer);
      observer.disconnect();
    },
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'hash-password') {
    const { runHashPassword } = await import('./hash-password.js');
    process.exitCode = await runHashPassword(process.argv.slice(3), process);
    return;
  }
  const heapFlags = applyGatewayHeapFlags(process.execArgv, process.env.NODE_OPTIONS).flags;
  const { CONFIG_FLAGS: configFlags, ConfigError } = await import('./config.js');
  const args = parseGatewayArgs(process.argv.slice(2), configFlags);
  if (!args.ok) {
    process.stderr.write(`reefer-gateway: ${args.message}\n\n${gatewayUsage(configFlags)}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(gatewayUsage(configFlags));
    return;
  }
  let config: Readonly<GatewayConfig>;
  try {
    config = await loadGatewayConfig(args, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`reefer-gateway: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const [{ startGateway }, { createLogger }] = await Promise.all([import('./main.js'), import('./ops/logger.js')]);
  const logger = createLogger(config.log.level);
  if (heapFlags.length > 0) logger.debug({ heapFlags }, 'V8 heap settings');
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
