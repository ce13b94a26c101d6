/**
 * The bridge service's configuration: one declaration gives each key its type, check, default and
 * meaning. Sources merge as defaults < YAML file < flags, are validated once, and the result is
 * frozen. Every error names the key, the value and what was expected.
 */
import { z } from 'zod';
import { isPasswordHash } from './bridge-password.js';
import {
  applyFlags,
  applySaslPasswordEnv,
  deepFreeze,
  describeIssues,
  fileMapping,
  kafkaSaslSchema,
  kafkaTlsSchema,
  logSectionSchema,
  requireTlsForPlainSasl,
  type FlagSpec,
} from './config-support.js';

/** A gateway logs in under its gateway id, which is one MQTT topic level and part of Kafka ids. */
export const GATEWAY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');

const login = z
  .object({
    username: z.string().regex(GATEWAY_ID, 'expected a gateway id: 1-64 letters, digits, dot, underscore or dash').describe('The gateway id the gateway logs in as.'),
    passwordHash: z.string().refine(isPasswordHash, 'expected a hash printed by `reefer-gateway hash-password` ($scrypt$ln=…)').describe('scrypt hash of its password.'),
  })
  .strict();

export const bridgeConfigSchema = z
  .object({
    mqtt: z
      .object({
        host: z.string().min(1).default('0.0.0.0').describe('Address the MQTT server listens on.'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .nullable()
          .default(null)
          .describe('Port of a plain-TCP listener (behind a TLS-terminating proxy, or on a closed network); null for none.'),
        tls: z
          .object({
            port: z.number().int().min(0).max(65535).default(8883).describe('Port of the TLS listener; 0 lets the OS choose.'),
            certFile: z.string().min(1).describe("Required: PEM file of the bridge's certificate (with its chain)."),
            keyFile: z.string().min(1).describe('Required: PEM file of its private key.'),
            caFile: z.string().min(1).optional().describe('PEM file of the CAs that sign gateway certificates.'),
            requireClientCert: z.boolean().default(false).describe('The TLS handshake fails without a gateway certificate signed by caFile.'),
          })
          .strict()
          .refine((tls) => !tls.requireClientCert || tls.caFile !== undefined, { path: ['caFile'], message: 'expected a CA file when requireClientCert is true' })
          .optional()
          .describe('The TLS listener gateways connect to.'),
        users: z.array(login).default([]).describe('Gateways that may connect: username (the gateway id) and password hash.'),
        usersFile: z
          .string()
          .min(1)
          .optional()
          .describe('File of more gateways, one `gatewayId:passwordHash` line each (`reefer-gateway hash-password --user <id>` prints them); read at start.'),
      })
      .strict()
      .superRefine((mqtt, ctx) => {
        if (mqtt.port === null && mqtt.tls === undefined) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'expected a TLS listener (or mqtt.port for plain TCP)' });
        if (mqtt.users.length === 0 && mqtt.usersFile === undefined) ctx.addIssue({ code: 'custom', path: ['usersFile'], message: 'expected a users file (or mqtt.users): no gateway could log in' });
      })
      .prefault({}),
    kafka: z
      .object({
        brokers: z.array(hostPort).min(1).default(['localhost:9092']).describe('Kafka bootstrap brokers, host:port.'),
        clientId: z.string().min(1).default('reefer-bridge').describe('Kafka client id.'),
        compression: z.enum(['gzip', 'none']).default('gzip').describe('Compression of produce batches.'),
        connectionTimeoutMs: z.number().int().min(100).max(120000).default(3000).describe('Time allowed to connect to a broker.'),
        requestTimeoutMs: z.number().int().min(100).max(300000).default(10000).describe('Time allowed for one request; a hung broker fails it.'),
        transactionTimeoutMs: z
          .number()
          .int()
          .min(1000)
          .max(900000)
          .default(30000)
          .describe("Kafka aborts a gateway's transaction left open this long (by a bridge that died)."),
        tls: kafkaTlsSchema.optional().describe('TLS to the brokers; plain TCP when absent.'),
        sasl: kafkaSaslSchema.optional().describe('SASL authentication to the brokers; none when absent.'),
      })
      .strict()
      .superRefine(requireTlsForPlainSasl)
      .prefault({}),
    topics: z
      .object({
        allow: z
          .array(z.string().regex(TOPIC_NAME, 'expected a Kafka topic name'))
          .min(1)
          .default(['reefer-telemetry', 'reefer-deadletter', 'gateway-status', 'reefer-command-status'])
          .describe('Topics gateways may write to; a batch naming any other is refused whole (topic-not-allowed).'),
        create: z.boolean().default(false).describe('Create the allowed topics and commands.topic where they do not exist, at start (gateway-status compacted).'),
        partitions: z.number().int().min(1).max(10000).default(3).describe('Partitions of a topic the bridge creates.'),
      })
      .strict()
      .prefault({}),
    commands: z
      .object({
        topic: z.string().regex(/^([A-Za-z0-9._-]{1,249})?$/, 'expected a Kafka topic name or empty').default('reefer-commands').describe('Topic of commands to gateways; empty to forward none.'),
        storeTimeoutMs: z
          .number()
          .int()
          .min(100)
          .max(600000)
          .default(30000)
          .describe('Longest the bridge waits for a gateway to store a forwarded command; past it the feed restarts from the last stored one.'),
      })
      .strict()
      .prefault({}),
    log: logSectionSchema,
  })
  .strict();

export type BridgeConfig = z.infer<typeof bridgeConfigSchema>;

export class BridgeConfigError extends Error {
  readonly code = 'REEFER_BRIDGE_CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid bridge configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'BridgeConfigError';
  }
}

const SECRET_KEYS: ReadonlySet<PropertyKey> = new Set(['password', 'passwordHash']);

/** Flags of `reefer-bridge serve` and the key each sets. */
export const BRIDGE_FLAGS = {
  'mqtt-port': { key: 'mqtt.port', kind: 'number', help: 'port of a plain-TCP MQTT listener' },
  'kafka-brokers': { key: 'kafka.brokers', kind: 'list', help: 'comma-separated Kafka bootstrap brokers, host:port' },
  'users-file': { key: 'mqtt.usersFile', kind: 'string', help: 'file of gatewayId:passwordHash lines' },
  'log-level': { key: 'log.level', kind: 'string', help: 'log level' },
} as const satisfies Record<string, FlagSpec>;

export type BridgeFlag = keyof typeof BRIDGE_FLAGS;

export function resolveBridgeConfig(sources: {
  file?: unknown;
  fileName?: string;
  /** Read for REEFER_KAFKA_SASL_PASSWORD only. */
  env?: Readonly<Record<string, string | undefined>>;
  flags?: Partial<Record<BridgeFlag, string>>;
}): Readonly<BridgeConfig> {
  const file = fileMapping(sources.file, sources.fileName);
  if (!file.ok) throw new BridgeConfigError([file.problem]);
  const merged = file.merged;
  applySaslPasswordEnv(merged, sources.env);
  applyFlags(merged, BRIDGE_FLAGS, sources.flags ?? {});
  const result = bridgeConfigSchema.safeParse(merged);
  if (!result.success) throw new BridgeConfigError(describeIssues(result.error.issues, merged, SECRET_KEYS));
  return deepFreeze(result.data);
}

/** Reads a users file: one `gatewayId:passwordHash` line per gateway; blank lines and `#` comments skipped. */
export function parseBridgeUsersFile(text: string): { users: { username: string; passwordHash: string }[]; problems: string[] } {
  const users: { username: string; passwordHash: string }[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    // Problems never quote the line: it holds a password hash.
    const [username = '', passwordHash = '', ...extra] = line.split(':');
    if (extra.length > 0) return void problems.push(`line ${i + 1}: expected gatewayId:passwordHash`);
    if (!GATEWAY_ID.test(username)) return void problems.push(`line ${i + 1}: expected a gateway id (1-64 letters, digits, dot, underscore or dash)`);
    if (!isPasswordHash(passwordHash)) return void problems.push(`line ${i + 1} (${username}): expected a password hash printed by reefer-gateway hash-password`);
    users.push({ username, passwordHash });
  });
  return { users, problems };
}
