import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../gateway/config.js';

function problems(file: unknown): string[] {
  try {
    resolveConfig({ file });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('configuration was accepted');
}

describe('upstream broker configuration', () => {
  it('has no upstream broker unless one is configured', () => {
    expect(resolveConfig({}).upstream.brokers).toEqual([]);
  });

  it('fills in a persistent session at QoS 1 on the telemetry topics, named after the gateway', () => {
    const config = resolveConfig({ file: { gatewayId: 'ship-7', upstream: { brokers: [{ url: 'mqtt://broker.local:1883' }] } } });
    expect(config.upstream.brokers).toEqual([
      {
        url: 'mqtt://broker.local:1883',
        clientId: 'ship-7-upstream',
        protocolVersion: 4,
        topics: ['reefer/+/telemetry'],
        qos: 1,
        keepaliveS: 30,
        reconnectMinMs: 500,
        reconnectMaxMs: 30000,
        sessionExpiryS: 4294967295,
        maxInFlight: 100,
      },
    ]);
    expect(Object.isFrozen(config.upstream.brokers[0])).toBe(true);
  });

  it('names the key, the value and what was expected', () => {
    const broker = (fields: Record<string, unknown>) => ({ upstream: { brokers: [{ url: 'mqtt://b:1883', ...fields }] } });
    expect(problems(broker({ url: 'http://b:1883' }))[0]).toMatch(/^upstream\.brokers\.0\.url: expected mqtt:\/\/host.*got "http:\/\/b:1883"$/);
    expect(problems(broker({ url: 'mqtt://user:secret@b:1883' }))[0]).toMatch(/^upstream\.brokers\.0\.url: .*without credentials/);
    expect(problems(broker({ topics: ['reefer/#/telemetry'] }))[0]).toBe('upstream.brokers.0.topics.0: expected an MQTT topic filter, got "reefer/#/telemetry"');
    expect(problems(broker({ topics: ['reefer/C+/telemetry'] }))[0]).toMatch(/^upstream\.brokers\.0\.topics\.0: expected an MQTT topic filter/);
    expect(problems(broker({ protocolVersion: 3 }))[0]).toMatch(/^upstream\.brokers\.0\.protocolVersion: .*4\|5.*got 3$/);
    expect(problems(broker({ qos: 2 }))[0]).toMatch(/^upstream\.brokers\.0\.qos: expected 1, got 2$/);
    expect(problems(broker({ reconnectMinMs: 5000, reconnectMaxMs: 100 }))[0]).toMatch(/^upstream\.brokers\.0\.reconnectMinMs: expected at most/);
    expect(problems(broker({ port: 1883 }))).toEqual(['upstream.brokers.0.port: unknown key']);
  });

  it('accepts the filters MQTT allows', () => {
    const config = resolveConfig({ file: { upstream: { brokers: [{ url: 'mqtts://b', topics: ['#', 'reefer/+/telemetry', 'site/+/reefer/#'] }] } } });
    expect(config.upstream.brokers[0]!.topics).toEqual(['#', 'reefer/+/telemetry', 'site/+/reefer/#']);
  });

  it('never shows a password in a message', () => {
    const found = problems({ upstream: { brokers: [{ url: 'mqtt://b', password: 123456 }] } });
    expect(found).toEqual([expect.stringMatching(/^upstream\.brokers\.0\.password: expected string.*got a hidden value$/)]);
    expect(found.join('\n')).not.toContain('123456');
  });

  it('refuses two connections to one broker with one client id, which would take the session from each other', () => {
    expect(problems({ upstream: { brokers: [{ url: 'mqtt://b:1883' }, { url: 'mqtt://b:1883', topics: ['other/#'] }] } })).toEqual([
      'upstream.brokers.1: expected a client id not used for the same broker above, got "gateway-1-upstream"',
    ]);
  });
});
