/**
 * The gateway's configuration: one declaration gives each key its type, check, default and meaning.
 * Sources merge as defaults < YAML file < environment (REEFER_*) < command-line flags, are validated
 * once at start, and the result is frozen. Every error names the key, the value and what was expected.
 */
import { z } from 'zod';

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export const configSchema = z
  .object({
    gatewayId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1-64 letters, digits, dot, underscore or dash')
      .default('gateway-1')
      .describe('Identifies this gateway; stamped on every record, with its sequence number.'),
    dataDir: z.string().min(1).default('./data').describe('Folder for the outbox database.'),
    site: z
      .object({
        timeZone: z
          .string()
          .refine(isTimeZone, 'expected an IANA time zone such as UTC or Europe/Rotterdam')
          .default('UTC')
          .describe('Zone of timestamps that devices send without one.'),
      })
      .strict()
      .prefault({}),
    mqtt: z
      .object({
        host: z.string().min(1).default('0.0.0.0').describe('Address the embedded MQTT broker listens on.'),
        port: z.number().int().min(0).max(65535).default(1883).describe('Port of the embedded MQTT broker; 0 lets the OS choose.'),
        maxPayloadBytes: z
          .number()
          .int()
          .min(256)
          .max(16 * 1024 * 1024)
          .default(64 * 1024)
          .describe('Largest telemetry payload accepted; larger ones are rejected as oversized.'),
      })
      .strict()
      .prefault({}),
    outbox: z
      .object({
        sync: z
          .enum(['full', 'normal'])
          .default('full')
          .describe('full: a reading acknowledged to a device survives a power cut (fsync per commit). normal: it survives a crash of the process; a power cut may lose the last commits.'),
        flushIntervalMs: z.number().int().min(0).max(1000).default(5).describe('Longest a reading waits for others to share its commit.'),
        maxBatch: z.number().int().min(1).max(100000).default(1000).describe('Readings that trigger a commit at once.'),
      })
      .strict()
      .prefault({}),
    kafka: z
      .object({
        brokers: z.array(hostPort).min(1).default(['127.0.0.1:9092']).describe('Bootstrap brokers, host:port.'),
        topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name').default('reefer-telemetry').describe('Topic readings are produced to.'),
        clientId: z.string().min(1).default('reefer-gateway').describe('Kafka client id.'),
        compression: z.enum(['gzip', 'none']).default('gzip').describe('Compression of produce batches.'),
        connectionTimeoutMs: z.number().int().min(100).max(120000).default(3000).describe('Time allowed to connect to a broker.'),
        requestTimeoutMs: z.number().int().min(100).max(300000).default(10000).describe('Time allowed for one request; a hung broker fails it.'),
        createTopics: z.boolean().default(true).describe('Create the topic at start when it is missing.'),
        partitions: z.number().int().min(1).max(10000).default(3).describe('Partitions of a topic the gateway creates.'),
      })
      .strict()
      .prefault({}),
    uplink: z
      .object({
        batchSize: z.number().int().min(1).max(100000).default(1000).describe('Most readings per produce request.'),
        minBackoffMs: z.number().int().min(10).max(600000).default(250).describe('First retry delay after Kafka failed.'),
        maxBackoffMs: z.number().int().min(10).max(3600000).default(15000).describe('Longest retry delay while Kafka stays unreachable.'),
        idlePollMs: z.number().int().min(1).max(60000).default(250).describe('How often an idle uplink checks the outbox.'),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level.'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type GatewayConfig = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  readonly code = 'REEFER_CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Flags and the config key each sets; environment variables are REEFER_ + the flag in upper snake case. */
export const CONFIG_FLAGS = {
  'gateway-id': { key: 'gatewayId', kind: 'string', help: 'gateway id stamped on every record' },
  'data-dir': { key: 'dataDir', kind: 'string', help: 'folder for the outbox database' },
  'mqtt-host': { key: 'mqtt.host', kind: 'string', help: 'address the MQTT broker listens on' },
  'mqtt-port': { key: 'mqtt.port', kind: 'number', help: 'port of the embedded MQTT broker (0: any free port)' },
  'kafka-brokers': { key: 'kafka.brokers', kind: 'list', help: 'comma-separated Kafka bootstrap brokers, host:port' },
  topic: { key: 'kafka.topic', kind: 'string', help: 'Kafka topic for readings' },
  sync: { key: 'outbox.sync', kind: 'string', help: 'outbox durability: full or normal' },
  'time-zone': { key: 'site.timeZone', kind: 'string', help: 'zone of timestamps sent without one' },
  'log-level': { key: 'log.level', kind: 'string', help: 'log level' },
} as const satisfies Record<string, { key: string; kind: 'string' | 'number' | 'list'; help: string }>;

export type ConfigFlag = keyof typeof CONFIG_FLAGS;

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function getPath(source: unknown, path: readonly PropertyKey[]): unknown {
  let node = source;
  for (const part of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

/** Converts a flag or environment string to the key's type; a bad number stays a string so validation names it. */
function convert(kind: 'string' | 'number' | 'list', raw: string): unknown {
  if (kind === 'number') return /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
  if (kind === 'list') return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  return raw;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export interface ConfigSources {
  /** Parsed YAML file contents, if a file was given. */
  file?: unknown;
  /** Where the file came from, for messages. */
  fileName?: string;
  env?: Record<string, string | undefined>;
  flags?: Partial<Record<ConfigFlag, string>>;
}

export function resolveConfig(sources: ConfigSources): Readonly<GatewayConfig> {
  const merged: Record<string, unknown> = {};
  const problems: string[] = [];
  if (sources.file !== undefined && sources.file !== null) {
    if (typeof sources.file !== 'object' || Array.isArray(sources.file)) {
      throw new ConfigError([`${sources.fileName ?? 'config file'}: expected a mapping of keys at the top level, got ${describeValue(sources.file)}`]);
    }
    Object.assign(merged, structuredClone(sources.file));
  }
  for (const [flag, spec] of Object.entries(CONFIG_FLAGS)) {
    const envName = `REEFER_${flag.toUpperCase().replace(/-/g, '_')}`;
    const raw = sources.env?.[envName];
    if (raw !== undefined && raw !== '') setPath(merged, spec.key, convert(spec.kind, raw));
  }
  for (const [flag, raw] of Object.entries(sources.flags ?? {})) {
    const spec = CONFIG_FLAGS[flag as ConfigFlag];
    if (raw !== undefined) setPath(merged, spec.key, convert(spec.kind, raw));
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problems.push(`${[...issue.path, key].join('.')}: unknown key`);
        continue;
      }
      const key = issue.path.join('.') || '(top level)';
      const value = getPath(merged, issue.path);
      problems.push(`${key}: ${issue.message.replace(/^Invalid input: /, '')}, got ${describeValue(value)}`);
    }
    throw new ConfigError(problems);
  }
  if (result.data.uplink.minBackoffMs > result.data.uplink.maxBackoffMs) {
    throw new ConfigError([
      `uplink.minBackoffMs: expected at most uplink.maxBackoffMs (${result.data.uplink.maxBackoffMs}), got ${result.data.uplink.minBackoffMs}`,
    ]);
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Every key with its default and meaning, for the configuration reference in the docs. */
export function describeConfig(): { key: string; default: unknown; meaning: string }[] {
  const rows: { key: string; default: unknown; meaning: string }[] = [];
  const defaults = configSchema.parse({});
  function walk(schema: z.ZodType, path: string[]): void {
    let inner: z.ZodType = schema;
    while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault) inner = inner.unwrap() as z.ZodType;
    if (inner instanceof z.ZodObject) {
      for (const [name, child] of Object.entries(inner.shape)) walk(child as z.ZodType, [...path, name]);
      return;
    }
    rows.push({ key: path.join('.'), default: getPath(defaults, path), meaning: schema.description ?? inner.description ?? '' });
  }
  walk(configSchema, []);
  return rows;
}
