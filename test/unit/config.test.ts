import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../gateway/config.js';
import { renderConfigReference } from '../../gateway/config-reference.js';

function problems(sources: Parameters<typeof resolveConfig>[0]): string[] {
  try {
    resolveConfig(sources);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('configuration was accepted');
}

describe('gateway configuration', () => {
  it('gives every key a default', () => {
    const config = resolveConfig({});
    expect(config).toMatchObject({ gatewayId: 'gateway-1', mqtt: { port: 1883 }, kafka: { topic: 'reefer-telemetry', brokers: ['127.0.0.1:9092'] }, outbox: { sync: 'full' } });
  });

  it('merges file < environment < flags', () => {
    const config = resolveConfig({
      file: { gatewayId: 'file', mqtt: { port: 1 }, kafka: { topic: 'file-topic' } },
      env: { REEFER_GATEWAY_ID: 'env', REEFER_MQTT_PORT: '2' },
      flags: { 'gateway-id': 'flag', 'kafka-brokers': 'a:1, b:2' },
    });
    expect(config.gatewayId).toBe('flag');
    expect(config.mqtt.port).toBe(2);
    expect(config.kafka.topic).toBe('file-topic');
    expect(config.kafka.brokers).toEqual(['a:1', 'b:2']);
  });

  it('is frozen once resolved', () => {
    const config = resolveConfig({});
    expect(Object.isFrozen(config.mqtt)).toBe(true);
  });

  it('names the key, the value and what was expected for each kind of error', () => {
    expect(problems({ file: { mqtt: { prot: 1883 } } })).toEqual(['mqtt.prot: unknown key']);
    expect(problems({ flags: { 'mqtt-port': 'abc' } })[0]).toMatch(/^mqtt\.port: expected number.*got "abc"$/);
    expect(problems({ flags: { 'mqtt-port': '70000' } })[0]).toMatch(/^mqtt\.port: .*65535.*got 70000$/);
    expect(problems({ file: { outbox: { sync: 'sometimes' } } })[0]).toMatch(/^outbox\.sync: .*"full"\|"normal".*got "sometimes"$/);
    expect(problems({ file: { kafka: { brokers: ['nohost'] } } })[0]).toBe('kafka.brokers.0: expected host:port, got "nohost"');
    expect(problems({ file: { site: { timeZone: 'Mars/Base' } } })[0]).toMatch(/^site\.timeZone: expected an IANA time zone.*got "Mars\/Base"$/);
    expect(problems({ file: { uplink: { minBackoffMs: 5000, maxBackoffMs: 100 } } })[0]).toMatch(/^uplink\.minBackoffMs: expected at most/);
  });

  it('keeps docs/configuration.md in step with the declaration', () => {
    expect(readFileSync('docs/configuration.md', 'utf8')).toBe(renderConfigReference());
  });
});
