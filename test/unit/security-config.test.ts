import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../gateway/config.js';

function problems(file: Record<string, unknown>): string[] {
  try {
    resolveConfig({ file });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

const HASH = `$scrypt$ln=14,r=8,p=1$${'A'.repeat(22)}$${'B'.repeat(43)}`;

describe('security configuration', () => {
  it('refuses anonymous devices and limits each one by default', () => {
    const config = resolveConfig({});
    expect(config.mqtt.auth).toEqual({ allowAnonymous: false, users: [] });
    expect(config.mqtt.tls).toBeUndefined();
    expect(config.mqtt.limits).toEqual({
      maxConnections: 4096,
      maxPacketBytes: 128 * 1024,
      maxTopicBytes: 256,
      maxTopicLevels: 8,
      readingsPerSecond: 50,
      readingsBurst: 500,
      maxThrottleMs: 2000,
    });
    expect(config.kafka.tls).toBeUndefined();
    expect(config.kafka.sasl).toBeUndefined();
  });

  it('takes users with hashes and container patterns, a TLS listener and a TLS-only broker', () => {
    const config = resolveConfig({
      file: {
        mqtt: {
          port: null,
          tls: { port: 8883, certFile: 'gw.pem', keyFile: 'gw.key' },
          auth: { users: [{ username: 'C01', passwordHash: HASH }, { username: 'fleet', passwordHash: HASH, containers: ['C1*'] }] },
        },
      },
    });
    expect(config.mqtt.port).toBeNull();
    expect(config.mqtt.tls).toEqual({ port: 8883, certFile: 'gw.pem', keyFile: 'gw.key', requireClientCert: false, required: true });
    expect(config.mqtt.auth.users[1]).toEqual({ username: 'fleet', passwordHash: HASH, containers: ['C1*'] });
  });

  it('names the key of each bad security setting, and never shows a password or a hash', () => {
    const found = problems({
      mqtt: {
        auth: {
          users: [
            { username: 'C01', passwordHash: 'plain-text-password' },
            { username: 'C01', passwordHash: HASH, containers: ['reefer/#'] },
          ],
        },
        tls: { certFile: 'gw.pem', keyFile: 'gw.key', requireClientCert: true },
        limits: { maxPacketBytes: 4096 },
      },
      kafka: { sasl: { mechanism: 'plain', username: 'gw', password: 12345678 }, tls: { certFile: 'c.pem' } },
    });
    expect(found).toEqual([
      expect.stringMatching(/^mqtt\.tls\.caFile: expected a CA file when requireClientCert is true/),
      'mqtt.auth.users.0.passwordHash: expected a hash printed by `reefer-gateway hash-password` ($scrypt$ln=…), got a hidden value',
      expect.stringMatching(/^mqtt\.auth\.users\.1\.containers\.0: expected a container id or pattern, without \/, \+ or #, got "reefer\/#"/),
      'mqtt.auth.users.1.username: expected each user name once, got "C01"',
      'mqtt.maxPayloadBytes: expected less than mqtt.limits.maxPacketBytes (4096); raise both, got nothing',
      expect.stringMatching(/^kafka\.tls\.keyFile: expected certFile and keyFile together/),
      'kafka.sasl.password: expected string, received number, got a hidden value',
    ]);
    expect(found.join('\n')).not.toContain('plain-text-password');
    expect(found.join('\n')).not.toContain('12345678');
  });

  it('checks settings that depend on each other', () => {
    expect(problems({ mqtt: { port: null } })).toEqual(['mqtt.port: expected a port, or mqtt.tls: the broker needs a listener, got null']);
    expect(problems({ mqtt: { maxPayloadBytes: 200_000 } })).toEqual(['mqtt.maxPayloadBytes: expected less than mqtt.limits.maxPacketBytes (131072); raise both, got 200000']);
    expect(problems({ mqtt: { port: 8883, tls: { port: 8883, certFile: 'a', keyFile: 'b' } } })).toEqual(['mqtt.tls.port: expected a port other than mqtt.port (8883), got 8883']);
    expect(problems({ mqtt: { auth: { users: [{ username: 'a', passwordHash: HASH }, { username: 'a', passwordHash: HASH }] } } })).toEqual([
      'mqtt.auth.users.1.username: expected each user name once, got "a"',
    ]);
    expect(problems({ kafka: { sasl: { mechanism: 'plain', username: 'gw', password: 'pw' } } })).toEqual([
      'kafka.sasl.mechanism: expected kafka.tls with plain, which sends the password itself, got "plain"',
    ]);
    expect(problems({ kafka: { sasl: { mechanism: 'scram-sha-512', username: 'gw', password: 'pw' }, tls: {} } })).toEqual([]);
    expect(problems({ kafka: { sasl: 'gw:s3cret' } })).toEqual(['kafka.sasl: expected object, received string, got a hidden value']);
  });
});
