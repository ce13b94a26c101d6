import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../cloud-bridge/bridge-password.js';
import { startTestLink } from '../harness/bridge-under-test.js';
import { createTestCertificates } from '../harness/test-certs.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('reefer-bridge serve as a process', () => {
  it('starts from its config file and users file, serves a gateway over TLS, creates its topics, and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reefer-bridge-cli-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const certs = createTestCertificates(join(dir, 'certs'));
    const gatewayId = `ship-cli-${randomUUID().slice(0, 6)}`;
    const topic = `bridge-cli-${randomUUID().slice(0, 8)}`;
    // As `reefer-gateway hash-password --user <id>` prints it.
    writeFileSync(join(dir, 'gateways.txt'), `# gateways\n${gatewayId}:${await hashPassword('cli password', { logN: 10, r: 8, p: 1 })}\n`);
    writeFileSync(
      join(dir, 'bridge.yaml'),
      stringify({
        mqtt: { host: '127.0.0.1', tls: { port: 0, certFile: certs.server.certFile, keyFile: certs.server.keyFile }, usersFile: join(dir, 'gateways.txt') },
        kafka: { brokers: [bootstrap] },
        topics: { allow: [topic], create: true },
        commands: { topic: '' },
      }),
    );
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'cloud-bridge/cli.ts', 'serve', '--config', join(dir, 'bridge.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => void child.kill('SIGKILL'));
    let log = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const tlsPort = await new Promise<number>((resolve, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const started = /"tlsPort":(\d+)[^\n]*"msg":"bridge started"/.exec(log);
        if (started) resolve(Number(started[1]));
      });
      void exited.then((code) => reject(new Error(`bridge exited with ${code}: ${log}`)));
    });

    const link = startTestLink({
      url: `mqtts://127.0.0.1:${tlsPort}`,
      login: { username: gatewayId, password: 'cli password' },
      topic,
      tls: { caFile: certs.caFile, rejectUnauthorized: true },
    });
    cleanups.push(() => link.close());
    await expect.poll(() => link.stats().connectedUrl, { timeout: 5000 }).not.toBeNull();
    // The topic exists because the bridge created it (topics.create), and the gateway sees only allowed ones.
    expect(await link.admin().listTopics()).toEqual([topic]);
    expect(await link.admin().fetchMarker('ignored', topic, 0)).toBeNull();

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(log).toContain('"msg":"bridge stopped"');
    expect(log).not.toContain('cli password');
  });
});
