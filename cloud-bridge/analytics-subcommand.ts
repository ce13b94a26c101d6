/**
 * `reefer-bridge analytics`: the reference anomaly detector, the composition root of the analytics
 * service. Reads reefer-telemetry, writes ContainerAnomaly and MaintenanceNeeded to reefer-alerts
 * exactly once, prints each alert as it goes, and stops cleanly on SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import type { ReeferAlert } from './alerts.js';
import { createAnalyticsService, type AnalyticsService, type AnalyticsStats } from './analytics-service.js';
import { DEFAULT_DETECTOR_OPTIONS } from './anomaly-detector.js';
import { createConfluentTelemetry, valueSubject } from './confluent-telemetry.js';
import { createKafkaClient, createStreamsClient, type KafkaClientOptions } from './kafka-client.js';
import { KAFKA_FLAG_OPTIONS, KAFKA_FLAGS_USAGE, parseKafkaFlags, type KafkaConnection } from './kafka-flags.js';
import { createMemorySchemaIdCache } from './schema-id-cache.js';
import { createSchemaRegistryClient } from './schema-registry.js';
import type { BridgeSubcommand } from './subcommand.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const expected = (what: string): Parsed<never> => ({ ok: false, expected: what });

const text = (raw: string) => (raw.length > 0 ? ok(raw) : expected('a non-empty value'));
const topic = (raw: string) => (TOPIC_NAME.test(raw) ? ok(raw) : expected('a Kafka topic name (letters, digits, ".", "_", "-")'));
const integer = (min: number, max: number) => (raw: string) =>
  /^\d+$/.test(raw) && Number(raw) >= min && Number(raw) <= max ? ok(Number(raw)) : expected(`an integer from ${min} to ${max}`);
const oneOf = <T extends string>(values: readonly T[]) => (raw: string) =>
  (values as readonly string[]).includes(raw) ? ok(raw as T) : expected(`one of ${values.join(', ')}`);
const url = (raw: string) => (/^https?:\/\/[^\s]+$/.test(raw) ? ok(raw.replace(/\/+$/, '')) : expected('an http:// or https:// URL'));

/** Every flag but the Kafka connection's (kafka-flags.ts): its help, its default and how its value is checked. */
const FLAGS = {
  'telemetry-topic': { help: 'topic of the readings', default: 'reefer-telemetry', parse: topic },
  'alerts-topic': { help: 'topic the alerts are written to', default: 'reefer-alerts', parse: topic },
  'state-topic': { help: 'compacted changelog of the per-container state', default: 'reefer-analytics-state', parse: topic },
  'deadletter-topic': { help: 'topic for records that do not decode; counted only when absent', default: undefined, parse: topic },
  'group-id': { help: 'consumer group; run several instances with the same id to share the work', default: 'reefer-analytics', parse: text },
  'client-id': { help: 'Kafka client id', default: 'reefer-analytics', parse: text },
  'telemetry-partitions': { help: 'partitions of the telemetry topic if it must be created', default: '3', parse: integer(1, 10000) },
  'maintenance-threshold': { help: 'anomalies that call for maintenance', default: String(DEFAULT_DETECTOR_OPTIONS.maintenanceThreshold), parse: integer(1, 1000) },
  'quiet-readings': { help: 'readings without an anomaly that end an episode', default: String(DEFAULT_DETECTOR_OPTIONS.quietReadingsToReset), parse: integer(1, 1_000_000) },
  'seen-window': { help: 'reading identities remembered per container against repeats', default: String(DEFAULT_DETECTOR_OPTIONS.seenWindow), parse: integer(1, 100_000) },
  'session-timeout-ms': {
    help: 'a member silent this long leaves the group and its partitions move; also bounds one batch plus a state rebuild',
    default: '30000',
    parse: integer(6000, 1_800_000),
  },
  'schema-registry-url': { help: 'schema registry, to decode Confluent-framed values', default: undefined, parse: url },
  'log-level': { help: `log level (${LOG_LEVELS.join(', ')}); logs go to stderr as JSON`, default: 'info', parse: oneOf(LOG_LEVELS) },
} as const;

type FlagName = keyof typeof FLAGS;
type FlagValues = { [K in FlagName]: ReturnType<(typeof FLAGS)[K]['parse']> extends Parsed<infer T> ? T | undefined : never };

export const ANALYTICS_USAGE = `Usage: reefer-bridge analytics [flags]

Runs the reference anomaly detector: reads readings from the telemetry topic, applies the reference
rules (CO2, O2, temperature, power off, cold chain) per container, and writes ContainerAnomaly and,
after ${DEFAULT_DETECTOR_OPTIONS.maintenanceThreshold} anomalies, MaintenanceNeeded to the alerts topic, exactly once. Each alert is printed
as it is committed. Instances with the same --group-id share the partitions; state moves with them.
SIGTERM or SIGINT stops it cleanly. See docs/analytics.md.

Flags:
${Object.entries(FLAGS)
  .map(([flag, spec]) => `  --${flag.padEnd(24)}${spec.help}${spec.default === undefined ? '' : ` (default ${spec.default})`}`)
  .join('\n')}
  -h, --help                print this help and exit

${KAFKA_FLAGS_USAGE}`;

export interface AnalyticsSettings {
  values: FlagValues;
  kafka: KafkaConnection;
}

export type AnalyticsArgs = { ok: true; help: true } | { ok: true; help: false; settings: AnalyticsSettings } | { ok: false; message: string };

/** Parses and checks the flags; a problem names the flag, its value and what was expected. */
export function parseAnalyticsArgs(argv: readonly string[], env: Record<string, string | undefined>): AnalyticsArgs {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map((flag) => [flag, { type: 'string' as const }])),
        ...KAFKA_FLAG_OPTIONS,
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  if (values.help === true) return { ok: true, help: true };
  const problems: string[] = [];
  const parsed: Record<string, unknown> = {};
  for (const [flag, spec] of Object.entries(FLAGS)) {
    const raw = typeof values[flag] === 'string' ? (values[flag] as string) : spec.default;
    if (raw === undefined) continue;
    const result = (spec.parse as (raw: string) => Parsed<unknown>)(raw);
    if (result.ok) parsed[flag] = result.value;
    else problems.push(`--${flag}: expected ${result.expected}, got ${JSON.stringify(raw)}`);
  }
  const kafka = parseKafkaFlags(values, env);
  if (!kafka.ok) problems.push(...kafka.problems);
  if (problems.length > 0 || !kafka.ok) return { ok: false, message: problems.join('\n  ') };
  return { ok: true, help: false, settings: { values: parsed as FlagValues, kafka: kafka.connection } };
}

/** One line per alert, as printed on stdout. */
export function formatAlert(alert: ReeferAlert): string {
  if (alert.type === 'ContainerAnomaly') {
    return `ContainerAnomaly  ${alert.containerId} ${alert.rule} #${alert.anomalyCount}: ${alert.detail} (${alert.alertId})`;
  }
  return `MaintenanceNeeded ${alert.containerId} after ${alert.anomalyCount} anomalies: ${alert.rules.join(', ')} (${alert.alertId})`;
}

function formatStats(s: AnalyticsStats): string {
  const undecodable = Object.values(s.undecodable).reduce((a, b) => a + b, 0);
  return (
    `readings ${s.readings.evaluated} evaluated, ${s.readings.late} late, ${s.readings.duplicate} repeated, ${s.readings['too-late']} too late to tell, ` +
    `${undecodable} undecodable; ContainerAnomaly ${s.anomalies}, MaintenanceNeeded ${s.maintenanceNeeded}`
  );
}

export function createAnalyticsFromSettings(settings: AnalyticsSettings, io: { onAlert: (a: ReeferAlert) => void; logger: Logger }): AnalyticsService {
  const v = settings.values;
  const kafkaOptions: KafkaClientOptions = { ...settings.kafka, clientId: v['client-id'] ?? 'reefer-analytics', logger: io.logger };
  const telemetryTopic = v['telemetry-topic'] ?? 'reefer-telemetry';
  const registryUrl = v['schema-registry-url'];
  const confluent =
    registryUrl === undefined
      ? undefined
      : createConfluentTelemetry(
          { subject: valueSubject(telemetryTopic) },
          { registry: createSchemaRegistryClient({ url: registryUrl }, { cache: createMemorySchemaIdCache(), logger: io.logger }) },
        );
  return createAnalyticsService(
    {
      telemetryTopic,
      alertsTopic: v['alerts-topic'] ?? 'reefer-alerts',
      stateTopic: v['state-topic'] ?? 'reefer-analytics-state',
      deadLetterTopic: v['deadletter-topic'],
      groupId: v['group-id'] ?? 'reefer-analytics',
      telemetryPartitions: v['telemetry-partitions'],
      sessionTimeoutMs: v['session-timeout-ms'],
      detector: { maintenanceThreshold: v['maintenance-threshold'], quietReadingsToReset: v['quiet-readings'], seenWindow: v['seen-window'] },
    },
    {
      streams: createStreamsClient(kafkaOptions),
      admin: createKafkaClient(kafkaOptions).admin(),
      logger: io.logger,
      confluent,
      onAlert: io.onAlert,
    },
  );
}

export const analyticsSubcommand: BridgeSubcommand = {
  summary: 'the reference anomaly detector: reefer-telemetry in, ContainerAnomaly and MaintenanceNeeded out',
  async run(argv, io) {
    const args = parseAnalyticsArgs(argv, io.env);
    if (!args.ok) {
      io.stderr.write(`reefer-bridge analytics: ${args.message}\n\n${ANALYTICS_USAGE}`);
      return 2;
    }
    if (args.help) {
      io.stdout.write(ANALYTICS_USAGE);
      return 0;
    }
    const logger = pino(
      { name: 'reefer-analytics', level: args.settings.values['log-level'] ?? 'info', base: { name: 'reefer-analytics' } },
      pino.destination({ dest: 2, sync: false }),
    );
    const service = createAnalyticsFromSettings(args.settings, { logger, onAlert: (alert) => io.stdout.write(`${formatAlert(alert)}\n`) });
    let running = false;
    try {
      running = await Promise.race([service.start().then(() => true), io.stopRequested.then(() => false)]);
    } catch (error) {
      io.stderr.write(`reefer-bridge analytics: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
      await service.close().catch(() => undefined);
      logger.flush();
      return 1;
    }
    if (running) io.stdout.write(`analytics running: ${args.settings.values['telemetry-topic']} → ${args.settings.values['alerts-topic']}, group ${args.settings.values['group-id']}\n`);
    const signal = await io.stopRequested;
    await service.close();
    io.stdout.write(`analytics stopped (${signal}): ${formatStats(service.stats())}\n`);
    logger.flush();
    return 0;
  },
};
