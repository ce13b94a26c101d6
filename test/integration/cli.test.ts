import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { readTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Runs a CLI from source through tsx, as the built bin would run. */
function cli(script: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function finish(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'reefer-cli-'));
  dirs.push(d);
  return d;
}

describe('reefer-gateway and reefer-sim commands', () => {
  it('reefer-gateway --help prints usage with every flag', async () => {
    const { code, stdout } = await finish(cli('gateway/cli.ts', ['--help']));
    expect(code).toBe(0);
    for (const flag of ['--config', '--gateway-id', '--mqtt-port', '--kafka-brokers', '--data-dir', '--topic']) expect(stdout).toContain(flag);
  });

  it('reefer-sim --help prints usage with every flag', async () => {
    const { code, stdout } = await finish(cli('device-sim/cli.ts', ['--help']));
    expect(code).toBe(0);
    for (const flag of ['--devices', '--rate', '--duration', '--count', '--mqtt-url', '--seed']) expect(stdout).toContain(flag);
  });

  it('fails at start naming the key when a flag value is out of range', async () => {
    const { code, stderr } = await finish(cli('gateway/cli.ts', ['--mqtt-port', '70000']));
    expect(code).toBe(2);
    expect(stderr).toContain('mqtt.port');
    expect(stderr).toContain('70000');
  });

  it('fails at start naming the key of a wrong value and of an unknown key in the config file', async () => {
    const dir = tempDir();
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'outbox:\n  sync: sometimes\nmqtt:\n  prot: 1883\n');
    const { code, stderr } = await finish(cli('gateway/cli.ts', ['--config', file]));
    expect(code).toBe(2);
    expect(stderr).toMatch(/outbox\.sync: .*"full"\|"normal".*got "sometimes"/);
    expect(stderr).toContain('mqtt.prot: unknown key');
  });

  it('runs the gateway from a config file with flag overrides and feeds it from reefer-sim', async () => {
    const dir = tempDir();
    const topic = `cli-${randomUUID().slice(0, 8)}`;
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, `gatewayId: from-file\nmqtt:\n  host: 127.0.0.1\n  port: 0\n  auth:\n    allowAnonymous: true\nhttp:\n  host: 127.0.0.1\n  port: 0\nkafka:\n  brokers: ["${bootstrap}"]\n`);
    const reader = await readTopic(bootstrap, topic);
    try {
      const gateway = cli('gateway/cli.ts', ['--config', file, '--gateway-id', 'from-flag', '--data-dir', join(dir, 'data'), '--topic', topic]);
      const gatewayDone = finish(gateway);
      const port = await new Promise<number>((resolve, reject) => {
        let buffered = '';
        gateway.stderr!.on('data', (d: Buffer) => {
          buffered += d.toString();
          const match = /"port":(\d+),"msg":"MQTT listening"/.exec(buffered);
          if (match) resolve(Number(match[1]));
        });
        gateway.once('exit', () => reject(new Error(`gateway exited: ${buffered}`)));
      });
      const sim = await finish(cli('device-sim/cli.ts', ['--devices', '3', '--count', '4', '--rate', '0', '--mqtt-url', `mqtt://127.0.0.1:${port}`, '--seed', '5']));
      expect(sim.code).toBe(0);
      expect(JSON.parse(sim.stdout.trim().split('\n').pop()!)).toMatchObject({ sent: 12, errors: 0 });

      const records = await reader.waitFor(12, 30_000);
      expect(records).toHaveLength(12);
      expect(new Set(records.map((r) => r.value.gateway_id))).toEqual(new Set(['from-flag']));

      gateway.kill('SIGTERM');
      expect((await gatewayDone).code).toBe(0);
    } finally {
      await reader.close();
    }
  });
});
