import { describe, expect, it } from 'vitest';
import { formatAlert, parseAnalyticsArgs } from '../../cloud-bridge/analytics-subcommand.js';
import { SASL_PASSWORD_ENV } from '../../cloud-bridge/kafka-flags.js';

function settings(argv: string[], env: Record<string, string> = {}) {
  const parsed = parseAnalyticsArgs(argv, env);
  if (!parsed.ok || parsed.help) throw new Error(`expected settings, got ${JSON.stringify(parsed)}`);
  return parsed.settings;
}

function problems(argv: string[], env: Record<string, string> = {}): string {
  const parsed = parseAnalyticsArgs(argv, env);
  if (parsed.ok) throw new Error(`expected ${argv.join(' ')} to be refused`);
  return parsed.message;
}

describe('reefer-bridge analytics flags', () => {
  it('has defaults for everything, and no TLS or SASL unless asked', () => {
    const s = settings([]);
    expect(s.values).toMatchObject({
      'telemetry-topic': 'reefer-telemetry',
      'alerts-topic': 'reefer-alerts',
      'state-topic': 'reefer-analytics-state',
      'group-id': 'reefer-analytics',
      'maintenance-threshold': 3,
      'session-timeout-ms': 30000,
      'log-level': 'info',
    });
    expect(s.values['deadletter-topic']).toBeUndefined();
    expect(s.kafka).toEqual({ brokers: ['127.0.0.1:9092'], tls: undefined, sasl: undefined });
  });

  it('turns TLS on with a CA file, and takes the SASL password from the environment only', () => {
    const s = settings(['--kafka-tls-ca-file', '/etc/ca.pem', '--kafka-sasl-mechanism', 'scram-sha-512', '--kafka-sasl-username', 'analytics'], {
      [SASL_PASSWORD_ENV]: 's3cret',
    });
    expect(s.kafka.tls).toEqual({ caFile: '/etc/ca.pem', rejectUnauthorized: true });
    expect(s.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'analytics', password: 's3cret' });
    expect(settings(['--kafka-tls']).kafka.tls).toEqual({ rejectUnauthorized: true });
  });

  it('names each bad flag, its value and what was expected', () => {
    expect(problems(['--seen-window=-1'])).toBe('--seen-window: expected an integer from 1 to 100000, got "-1"');
    expect(problems(['--alerts-topic', 'bad topic'])).toContain('--alerts-topic: expected a Kafka topic name');
    expect(problems(['--log-level', 'loud'])).toBe('--log-level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"');
    expect(problems(['--kafka-sasl-mechanism', 'scram-sha-256', '--kafka-sasl-username', 'u'])).toBe(
      `--kafka-sasl-mechanism: expected the password in the environment variable ${SASL_PASSWORD_ENV}, found none`,
    );
    expect(problems(['--kafka-tls-cert-file', 'c.pem'])).toBe('--kafka-tls-cert-file and --kafka-tls-key-file: expected both or neither');
    expect(problems(['--schema-registry-url', 'registry:8081'])).toBe('--schema-registry-url: expected an http:// or https:// URL, got "registry:8081"');
  });

  it('prints one line per alert', () => {
    expect(
      formatAlert({ type: 'MaintenanceNeeded', alertId: 'gw/9/maintenance', containerId: 'C1', gatewayId: 'gw', timeMs: 0, anomalyCount: 3, rules: ['co2', 'o2', 'co2'] }),
    ).toBe('MaintenanceNeeded C1 after 3 anomalies: co2, o2, co2 (gw/9/maintenance)');
  });
});
