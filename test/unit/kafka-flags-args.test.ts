import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { actionsSubcommand } from '../../cloud-bridge/actions-subcommand.js';
import { analyticsSubcommand } from '../../cloud-bridge/analytics-subcommand.js';
import { commandSubcommand } from '../../cloud-bridge/command-subcommand.js';
import { KAFKA_BROKERS_ENV, KAFKA_FLAG_OPTIONS, parseKafkaFlags, SASL_PASSWORD_ENV } from '../../cloud-bridge/kafka-flags.js';
import type { BridgeSubcommand } from '../../cloud-bridge/subcommand.js';

const PASSWORD = 'pw-that-must-never-show';

/** The flags as a subcommand's parseArgs hands them over. */
function parse(argv: string[], env: Record<string, string> = {}) {
  const { values } = parseArgs({ args: argv, options: KAFKA_FLAG_OPTIONS, strict: true, allowPositionals: false });
  return parseKafkaFlags(values, env);
}

function connection(argv: string[], env: Record<string, string> = {}) {
  const result = parse(argv, env);
  if (!result.ok) throw new Error(`expected ${argv.join(' ')} to be accepted, got ${result.problems.join('; ')}`);
  return result.connection;
}

function problems(argv: string[], env: Record<string, string> = {}): string[] {
  const result = parse(argv, env);
  if (result.ok) throw new Error(`expected ${argv.join(' ')} to be refused`);
  return result.problems;
}

/** Runs a subcommand that is expected to stop before it connects anywhere. */
async function run(sub: BridgeSubcommand, argv: string[], env: Record<string, string> = {}) {
  const out = { stdout: '', stderr: '' };
  const code = await sub.run(argv, {
    stdout: { write: (t: string) => (out.stdout += t) },
    stderr: { write: (t: string) => (out.stderr += t) },
    env,
    stopRequested: new Promise<string>(() => {}),
  });
  return { code, ...out };
}

/** Each subcommand with the flags it needs besides the Kafka ones. */
const SUBCOMMANDS: readonly [name: string, sub: BridgeSubcommand, required: string[]][] = [
  ['analytics', analyticsSubcommand, []],
  ['actions', actionsSubcommand, ['--order-url', 'http://127.0.0.1:1/orders']],
  ['command', commandSubcommand, ['--container', 'C01', '--gateway', 'ship-7', '--maintenance']],
];

describe('Kafka connection flags', () => {
  it('connect to 127.0.0.1:9092 over plain TCP without SASL when none is given', () => {
    expect(connection([])).toEqual({ brokers: ['127.0.0.1:9092'], tls: undefined, sasl: undefined });
  });

  it(`take the brokers from --kafka-brokers, else from ${KAFKA_BROKERS_ENV}`, () => {
    expect(connection(['--kafka-brokers', 'kafka-1:9093, kafka-2:9093']).brokers).toEqual(['kafka-1:9093', 'kafka-2:9093']);
    expect(connection([], { [KAFKA_BROKERS_ENV]: 'env-kafka:9092' }).brokers).toEqual(['env-kafka:9092']);
    expect(connection(['--kafka-brokers', 'flag-kafka:9092'], { [KAFKA_BROKERS_ENV]: 'env-kafka:9092' }).brokers).toEqual(['flag-kafka:9092']);
  });

  it('turn TLS on with --kafka-tls, a CA file, a client certificate or --kafka-tls-insecure, which alone skips the certificate check', () => {
    expect(connection(['--kafka-tls']).tls).toEqual({ rejectUnauthorized: true });
    expect(connection(['--kafka-tls-ca-file', '/etc/ca.pem']).tls).toEqual({ caFile: '/etc/ca.pem', rejectUnauthorized: true });
    expect(connection(['--kafka-tls-cert-file', 'c.pem', '--kafka-tls-key-file', 'c.key']).tls).toEqual({ certFile: 'c.pem', keyFile: 'c.key', rejectUnauthorized: true });
    expect(connection(['--kafka-tls-insecure']).tls).toEqual({ rejectUnauthorized: false });
  });

  it(`take the SASL password from ${SASL_PASSWORD_ENV} only`, () => {
    const c = connection(['--kafka-sasl-mechanism', 'scram-sha-256', '--kafka-sasl-username', 'ops'], { [SASL_PASSWORD_ENV]: PASSWORD });
    expect(c.sasl).toEqual({ mechanism: 'scram-sha-256', username: 'ops', password: PASSWORD });
    expect(connection(['--kafka-tls', '--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', 'ops'], { [SASL_PASSWORD_ENV]: PASSWORD }).sasl?.mechanism).toBe('plain');
    // A password in the environment without a mechanism asks for no SASL.
    expect(connection([], { [SASL_PASSWORD_ENV]: PASSWORD }).sasl).toBeUndefined();
    expect(() => parse(['--kafka-sasl-password', PASSWORD])).toThrow(/kafka-sasl-password/);
  });

  it('name each bad flag, its value and what was expected, and never the password', () => {
    expect(problems(['--kafka-brokers', 'kafka-1'])).toEqual(['--kafka-brokers: expected comma-separated host:port pairs, e.g. kafka-1:9092,kafka-2:9092, got "kafka-1"']);
    expect(problems(['--kafka-brokers', 'kafka-1:70000'])[0]).toMatch(/^--kafka-brokers: expected .*, got "kafka-1:70000"$/);
    expect(problems([], { [KAFKA_BROKERS_ENV]: 'kafka-1;kafka-2' })).toEqual([
      `${KAFKA_BROKERS_ENV} (for --kafka-brokers): expected comma-separated host:port pairs, e.g. kafka-1:9092,kafka-2:9092, got "kafka-1;kafka-2"`,
    ]);
    expect(problems(['--kafka-tls-ca-file', ''])).toEqual(['--kafka-tls-ca-file: expected a non-empty value, got ""']);
    expect(problems(['--kafka-tls-key-file', 'c.key'])).toEqual(['--kafka-tls-cert-file and --kafka-tls-key-file: expected both or neither']);
    expect(problems(['--kafka-sasl-mechanism', 'scram-sha-1', '--kafka-sasl-username', 'ops'], { [SASL_PASSWORD_ENV]: PASSWORD })).toEqual([
      '--kafka-sasl-mechanism: expected one of scram-sha-512, scram-sha-256, plain, got "scram-sha-1"',
    ]);
    expect(problems(['--kafka-sasl-username', 'ops'], { [SASL_PASSWORD_ENV]: PASSWORD })).toEqual(['--kafka-sasl-mechanism and --kafka-sasl-username: expected both or neither']);
    expect(problems(['--kafka-sasl-mechanism', 'scram-sha-512', '--kafka-sasl-username', 'ops'])).toEqual([
      `--kafka-sasl-mechanism: expected the password in the environment variable ${SASL_PASSWORD_ENV}, found none`,
    ]);
    const plain = problems(['--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', 'ops'], { [SASL_PASSWORD_ENV]: PASSWORD });
    expect(plain).toEqual(['--kafka-sasl-mechanism: expected TLS (--kafka-tls or --kafka-tls-ca-file) with "plain", which sends the password itself']);
    expect(plain.join('\n')).not.toContain(PASSWORD);
  });
});

describe.each(SUBCOMMANDS)('reefer-bridge %s', (name, sub, required) => {
  it('lists every Kafka connection flag in its --help', async () => {
    const help = await run(sub, ['--help']);
    expect(help.code).toBe(0);
    for (const flag of Object.keys(KAFKA_FLAG_OPTIONS)) expect(help.stdout).toContain(`--${flag} `);
    expect(help.stdout).toContain(SASL_PASSWORD_ENV);
  });

  it('refuses bad Kafka flags with the same messages as every other subcommand, exit 2, before connecting', async () => {
    const bad = ['--kafka-brokers', 'kafka-1', '--kafka-tls-cert-file', 'c.pem', '--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', 'ops'];
    const result = await run(sub, [...required, ...bad], { [SASL_PASSWORD_ENV]: PASSWORD });
    expect(result.code).toBe(2);
    const expected = problems(bad, { [SASL_PASSWORD_ENV]: PASSWORD });
    expect(expected).toHaveLength(2);
    for (const problem of expected) expect(result.stderr).toContain(problem);
    expect(result.stderr).toMatch(new RegExp(`^reefer-bridge ${name}: `));
    expect(result.stderr).not.toContain(PASSWORD);
  });
});
