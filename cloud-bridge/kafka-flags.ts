/**
 * The Kafka connection flags of every `reefer-bridge` subcommand that opens its own Kafka client
 * (analytics, actions, command): one spelling, one help text and one set of checks, turned into the
 * connection options of createKafkaClient. `reefer-bridge serve` takes the same settings from the
 * kafka section of its configuration file (bridge-config.ts), keyed as the adapter's options.
 */
import type { KafkaClientOptions, KafkaSaslOptions } from './kafka-client.js';

/** A flag would show the password to anyone who can list the host's processes. */
export const SASL_PASSWORD_ENV = 'REEFER_KAFKA_SASL_PASSWORD';
/** The variable the gateway reads its brokers from, so one environment serves both sides. */
export const KAFKA_BROKERS_ENV = 'REEFER_KAFKA_BROKERS';
export const DEFAULT_KAFKA_BROKERS = '127.0.0.1:9092';
/** The adapter's mechanisms, in the order the help lists them. */
export const SASL_MECHANISMS = ['scram-sha-512', 'scram-sha-256', 'plain'] as const satisfies readonly KafkaSaslOptions['mechanism'][];

/** Each flag once: the value it takes (none for a switch) and its help. */
const FLAGS = {
  'kafka-brokers': { value: 'LIST', help: `comma-separated bootstrap brokers, host:port (env ${KAFKA_BROKERS_ENV}; default ${DEFAULT_KAFKA_BROKERS})` },
  'kafka-tls': { value: '', help: "TLS to the brokers, their certificates checked against the system's CAs" },
  'kafka-tls-ca-file': { value: 'FILE', help: "PEM file of the CAs that sign the brokers' certificates (turns TLS on)" },
  'kafka-tls-cert-file': { value: 'FILE', help: 'PEM file of a client certificate, with --kafka-tls-key-file (turns TLS on)' },
  'kafka-tls-key-file': { value: 'FILE', help: 'PEM file of its private key' },
  'kafka-tls-insecure': { value: '', help: "TLS without checking the brokers' certificates: to diagnose, never in production" },
  'kafka-sasl-mechanism': { value: 'NAME', help: `SASL mechanism, with --kafka-sasl-username: ${SASL_MECHANISMS.join(', ')} (plain only with TLS)` },
  'kafka-sasl-username': { value: 'NAME', help: `SASL user name; the password from env ${SASL_PASSWORD_ENV}, never a flag` },
} as const;

export type KafkaFlag = keyof typeof FLAGS;

/** The flags as `node:util` parseArgs declares them; spread into a subcommand's own options. */
export const KAFKA_FLAG_OPTIONS = Object.fromEntries(
  Object.entries(FLAGS).map(([flag, spec]) => [flag, { type: spec.value === '' ? 'boolean' : 'string' }]),
) as Readonly<Record<KafkaFlag, { type: 'string' | 'boolean' }>>;

/** What the flags decide of createKafkaClient's options; the subcommand adds its client id and logger. */
export type KafkaConnection = Pick<KafkaClientOptions, 'brokers' | 'tls' | 'sasl'>;

/** The section every such subcommand's --help ends its flags with. */
export const KAFKA_FLAGS_USAGE = `Kafka connection (the same flags on analytics, actions and command; see docs/security.md):
${Object.entries(FLAGS)
  .map(([flag, spec]) => `      --${`${flag} ${spec.value}`.padEnd(27)}${spec.help}`)
  .join('\n')}
`;

export type KafkaFlagsResult = { ok: true; connection: KafkaConnection } | { ok: false; problems: string[] };

function isHostPort(broker: string): boolean {
  const m = /^[^\s:,]+:(\d{1,5})$/.exec(broker);
  return m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 65535;
}

/**
 * Checks the flags parseArgs returned (with KAFKA_FLAG_OPTIONS) and the environment; every problem
 * names the flag, its value and what was expected. The password is never part of a problem.
 */
export function parseKafkaFlags(values: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): KafkaFlagsResult {
  const problems: string[] = [];
  const text = (flag: KafkaFlag): string | undefined => {
    const raw = values[flag];
    if (typeof raw !== 'string') return undefined;
    if (raw.trim() !== '') return raw;
    problems.push(`--${flag}: expected a non-empty value, got ${JSON.stringify(raw)}`);
    return undefined;
  };

  const brokersFlag = text('kafka-brokers');
  const brokersEnv = env[KAFKA_BROKERS_ENV] || undefined;
  const brokersRaw = brokersFlag ?? brokersEnv ?? DEFAULT_KAFKA_BROKERS;
  const brokers = brokersRaw.split(',').map((b) => b.trim()).filter((b) => b !== '');
  if (brokers.length === 0 || !brokers.every(isHostPort)) {
    const source = brokersFlag === undefined && brokersEnv !== undefined ? `${KAFKA_BROKERS_ENV} (for --kafka-brokers)` : '--kafka-brokers';
    problems.push(`${source}: expected comma-separated host:port pairs, e.g. kafka-1:9092,kafka-2:9092, got ${JSON.stringify(brokersRaw)}`);
  }

  const caFile = text('kafka-tls-ca-file');
  const certFile = text('kafka-tls-cert-file');
  const keyFile = text('kafka-tls-key-file');
  if ((certFile === undefined) !== (keyFile === undefined)) problems.push('--kafka-tls-cert-file and --kafka-tls-key-file: expected both or neither');
  const insecure = values['kafka-tls-insecure'] === true;
  const tlsOn = values['kafka-tls'] === true || insecure || caFile !== undefined || certFile !== undefined || keyFile !== undefined;

  const mechanismRaw = text('kafka-sasl-mechanism');
  const mechanism = SASL_MECHANISMS.find((m) => m === mechanismRaw);
  if (mechanismRaw !== undefined && mechanism === undefined) {
    problems.push(`--kafka-sasl-mechanism: expected one of ${SASL_MECHANISMS.join(', ')}, got ${JSON.stringify(mechanismRaw)}`);
  }
  const username = text('kafka-sasl-username');
  if ((mechanismRaw === undefined) !== (username === undefined)) problems.push('--kafka-sasl-mechanism and --kafka-sasl-username: expected both or neither');
  const password = env[SASL_PASSWORD_ENV];
  if (mechanismRaw !== undefined && !password) problems.push(`--kafka-sasl-mechanism: expected the password in the environment variable ${SASL_PASSWORD_ENV}, found none`);
  // As the gateway's kafka.sasl: SCRAM never sends the password, plain sends it as it is.
  if (mechanism === 'plain' && !tlsOn) problems.push('--kafka-sasl-mechanism: expected TLS (--kafka-tls or --kafka-tls-ca-file) with "plain", which sends the password itself');

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    connection: {
      brokers,
      tls: tlsOn ? { caFile, certFile, keyFile, rejectUnauthorized: !insecure } : undefined,
      sasl: mechanism !== undefined && username !== undefined && password ? { mechanism, username, password } : undefined,
    },
  };
}
