import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeConfigError, parseBridgeUsersFile, resolveBridgeConfig } from '../../cloud-bridge/bridge-config.js';
import { readBridgePassword } from '../../cloud-bridge/bridge-link.js';
import { hashPassword } from '../../cloud-bridge/bridge-password.js';
import { runBridgeCli } from '../../cloud-bridge/cli.js';
import { ConfigError, resolveConfig } from '../../gateway/config.js';

const HASH = '$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U';

function bridgeProblems(file: unknown, flags: Record<string, string> = {}): string[] {
  try {
    resolveBridgeConfig({ file, flags });
  } catch (error) {
    if (error instanceof BridgeConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('configuration was accepted');
}

function gatewayProblems(file: unknown): string[] {
  try {
    resolveConfig({ file });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('configuration was accepted');
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runBridgeCli(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: {},
    stopRequested: new Promise(() => undefined),
  });
  return { code, stdout, stderr };
}

describe('bridge configuration', () => {
  it('gives defaults: the four allow-listed topics, reefer-commands, TLS on 8883 once given', () => {
    const config = resolveBridgeConfig({ file: { mqtt: { tls: { certFile: 'c.pem', keyFile: 'k.pem' }, usersFile: 'gateways.txt' } } });
    expect(config.topics.allow).toEqual(['reefer-telemetry', 'reefer-deadletter', 'gateway-status', 'reefer-command-status']);
    expect(config.commands.topic).toBe('reefer-commands');
    expect(config.mqtt.tls?.port).toBe(8883);
    expect(config.mqtt.port).toBeNull();
    expect(Object.isFrozen(config.topics.allow)).toBe(true);
  });

  it('names the key, the value and what was expected', () => {
    expect(bridgeProblems({})).toEqual([
      'mqtt.tls: expected a TLS listener (or mqtt.port for plain TCP), got nothing',
      'mqtt.usersFile: expected a users file (or mqtt.users): no gateway could log in, got nothing',
    ]);
    const base = { mqtt: { port: 1883, usersFile: 'u.txt' } };
    expect(bridgeProblems({ ...base, topics: { allow: ['ok', 'bad topic'] } })).toEqual(['topics.allow.1: expected a Kafka topic name, got "bad topic"']);
    expect(bridgeProblems({ ...base, kafka: { brokers: ['nohost'] } })).toEqual(['kafka.brokers.0: expected host:port, got "nohost"']);
    expect(bridgeProblems({ ...base, kafka: { brokrs: [] } })).toEqual(['kafka.brokrs: unknown key']);
    expect(bridgeProblems({ mqtt: { port: 1883, users: [{ username: 'a/b', passwordHash: 'secret' }] } })).toEqual([
      'mqtt.users.0.username: expected a gateway id: 1-64 letters, digits, dot, underscore or dash, got "a/b"',
      'mqtt.users.0.passwordHash: expected a hash printed by `reefer-gateway hash-password` ($scrypt$ln=…), got a hidden value',
    ]);
    expect(bridgeProblems(base, { 'mqtt-port': 'x' })).toEqual(['mqtt.port: expected number, received string, got "x"']);
  });

  it('checks its Kafka TLS and SASL as the gateway does: plain only over TLS, certificate and key together', () => {
    const base = { mqtt: { port: 1883, usersFile: 'u.txt' } };
    const sasl = { mechanism: 'plain', username: 'bridge', password: 'secret' };
    const plain = ['kafka.sasl.mechanism: expected kafka.tls with plain, which sends the password itself, got "plain"'];
    expect(bridgeProblems({ ...base, kafka: { sasl } })).toEqual(plain);
    expect(gatewayProblems({ kafka: { sasl } })).toEqual(plain);
    const halfCert = ['kafka.tls.keyFile: expected certFile and keyFile together, got nothing'];
    expect(bridgeProblems({ ...base, kafka: { tls: { certFile: 'c.pem' } } })).toEqual(halfCert);
    expect(gatewayProblems({ kafka: { tls: { certFile: 'c.pem' } } })).toEqual(halfCert);
    const config = resolveBridgeConfig({ file: { ...base, kafka: { sasl, tls: {} } } });
    expect(config.kafka.sasl?.mechanism).toBe('plain');
    expect(config.kafka.tls?.rejectUnauthorized).toBe(true);
  });

  it('takes the Kafka SASL password from REEFER_KAFKA_SASL_PASSWORD over the file, on both sides, only where a sasl section names the user', () => {
    const base = { mqtt: { port: 1883, usersFile: 'u.txt' } };
    const env = { REEFER_KAFKA_SASL_PASSWORD: 'from-env' };
    const kafka = { sasl: { mechanism: 'scram-sha-512', username: 'bridge' }, tls: {} };
    expect(resolveBridgeConfig({ file: { ...base, kafka }, env }).kafka.sasl?.password).toBe('from-env');
    expect(resolveConfig({ file: { kafka }, env }).kafka.sasl?.password).toBe('from-env');
    const withFilePassword = { ...kafka, sasl: { ...kafka.sasl, password: 'from-file' } };
    expect(resolveBridgeConfig({ file: { ...base, kafka: withFilePassword }, env }).kafka.sasl?.password).toBe('from-env');
    expect(resolveConfig({ file: { kafka: withFilePassword } }).kafka.sasl?.password).toBe('from-file');
    // Without a sasl section the variable changes nothing (it may be set for analytics on the same host).
    expect(resolveBridgeConfig({ file: base, env }).kafka.sasl).toBeUndefined();
    expect(resolveConfig({ file: {}, env }).kafka.sasl).toBeUndefined();
    // Neither the file's nor the environment's password, when missing, is guessed at.
    expect(gatewayProblems({ kafka })).toEqual(['kafka.sasl.password: expected string, received undefined, got a hidden value']);
  });

  it('lets `reefer-bridge serve` read the password from its environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-env-'));
    try {
      const configPath = join(dir, 'bridge.yaml');
      // No users file and no port: the configuration is refused after the password was applied, and the
      // refusal never shows it.
      writeFileSync(configPath, 'kafka:\n  sasl: { mechanism: scram-sha-512, username: bridge }\n  tls: {}\n');
      let err = '';
      const code = await runBridgeCli(['serve', '--config', configPath], {
        stdout: { write: () => true },
        stderr: { write: (t: string) => ((err += t), true) },
        env: { REEFER_KAFKA_SASL_PASSWORD: 'env-secret-123' },
      } as never);
      expect(code).not.toBe(0);
      expect(err).not.toContain('kafka.sasl.password');
      expect(err).not.toContain('env-secret-123');
      expect(err).toContain('mqtt');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a users file of gatewayId:hash lines, never quoting a hash in its problems', async () => {
    const hash = await hashPassword('pw', { logN: 10, r: 8, p: 1 });
    const parsed = parseBridgeUsersFile(`# gateways\nship-7:${hash}\n\nbad id:${hash}\nship-8:notahash\nship-9:${hash}:extra\n`);
    expect(parsed.users).toEqual([{ username: 'ship-7', passwordHash: hash }]);
    expect(parsed.problems).toEqual([
      'line 4: expected a gateway id (1-64 letters, digits, dot, underscore or dash)',
      'line 5 (ship-8): expected a password hash printed by reefer-gateway hash-password',
      'line 6: expected gatewayId:passwordHash',
    ]);
    expect(parsed.problems.join('\n')).not.toContain('notahash');
  });
});

describe('gateway uplink mode', () => {
  it('is kafka by default; mqtt needs the bridge, with exactly one of password and passwordFile', () => {
    expect(resolveConfig({}).uplink.mode).toBe('kafka');
    expect(gatewayProblems({ uplink: { mode: 'mqtt' } })).toEqual(['uplink.bridge: expected the bridge (urls, password) when uplink.mode is mqtt, got nothing']);
    expect(gatewayProblems({ uplink: { mode: 'mqtt', bridge: { urls: ['mqtts://b:8883'] } } })).toEqual([
      'uplink.bridge.password: expected exactly one of password and passwordFile, got a hidden value',
    ]);
    expect(gatewayProblems({ uplink: { mode: 'mqtt', bridge: { urls: ['mqtts://b:8883'], password: 'p', passwordFile: 'f' } } })).toEqual([
      'uplink.bridge.password: expected exactly one of password and passwordFile, got a hidden value',
    ]);
    expect(gatewayProblems({ uplink: { mode: 'udp' } })[0]).toBe('uplink.mode: Invalid option: expected one of "kafka"|"mqtt", got "udp"');
  });

  it('refuses bridge URLs with credentials or another scheme, and an empty list', () => {
    expect(gatewayProblems({ uplink: { mode: 'mqtt', bridge: { urls: ['mqtts://u:p@b:8883', 'http://b'], password: 'p' } } })).toEqual([
      'uplink.bridge.urls.0: expected mqtts://host[:port] (or mqtt://) without credentials, got "mqtts://u:p@b:8883"',
      'uplink.bridge.urls.1: expected mqtts://host[:port] (or mqtt://) without credentials, got "http://b"',
    ]);
    expect(gatewayProblems({ uplink: { mode: 'mqtt', bridge: { urls: [], password: 'p' } } })[0]).toMatch(/^uplink\.bridge\.urls: .*got \[\]$/);
  });

  it('logs in to the bridge as the gateway id, the only name the bridge accepts its records under', () => {
    const bridge = { urls: ['mqtts://b:8883'], password: 'p' };
    expect(resolveConfig({ file: { gatewayId: 'ship-7', uplink: { mode: 'mqtt', bridge: { ...bridge, username: 'ship-7' } } } }).uplink.bridge?.username).toBe('ship-7');
    expect(gatewayProblems({ gatewayId: 'ship-7', uplink: { mode: 'mqtt', bridge: { ...bridge, username: 'ship-8' } } })).toEqual([
      'uplink.bridge.username: expected the gateway id "ship-7" (the bridge knows a gateway by its login), got "ship-8"',
    ]);
  });

  it('takes brotli as the default compression and reads the password from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reefer-bridge-pw-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    const config = resolveConfig({ file: { uplink: { mode: 'mqtt', bridge: { urls: ['mqtts://b:8883', 'mqtts://c:8883'], passwordFile: join(dir, 'pw') } } } });
    expect(config.uplink.bridge?.compression).toBe('brotli');
    expect(readBridgePassword(config.uplink.bridge!)).toBe('s3cret');
    expect(() => readBridgePassword({ passwordFile: join(dir, 'missing') })).toThrow(/uplink\.bridge\.passwordFile .*missing/);
  });
});

describe('reefer-bridge serve', () => {
  it('lists serve in the command overview and prints its help with every flag', async () => {
    const overview = await runCli(['--help']);
    expect(overview.code).toBe(0);
    expect(overview.stdout).toMatch(/serve\s+the MQTT uplink bridge/);
    const help = await runCli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--config', '--mqtt-port', '--kafka-brokers', '--users-file', '--log-level', 'docs/bridge.md']) expect(help.stdout).toContain(flag);
  });

  it('exits 2 with the key named on a bad configuration or flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reefer-bridge-cfg-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'bridge.yaml'), `mqtt:\n  port: 1883\n  users: [{ username: ship-7, passwordHash: "${HASH}" }]\ntopics:\n  allow: []\n`);
    const bad = await runCli(['serve', '--config', join(dir, 'bridge.yaml')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('topics.allow: ');
    expect(bad.stderr).toContain('got []');
    const unknown = await runCli(['serve', '--nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--nope'");
    const missingUsers = await runCli(['serve', '--mqtt-port', '0', '--users-file', join(dir, 'absent.txt'), '--kafka-brokers', '127.0.0.1:1']);
    expect(missingUsers.code).toBe(2);
    expect(missingUsers.stderr).toMatch(/mqtt\.usersFile: cannot read .*absent\.txt/);
  });
});
