import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { REFERENCE_READING } from '../harness/reference-reading.js';
import { analyticsTopics, asTelemetry, produce, readAlerts, telemetryRecord } from '../harness/analytics-harness.js';

const bootstrap = inject('kafkaBootstrap');
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** `reefer-bridge` from source through tsx, as the built bin runs it; output collected as it comes. */
function bridge(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cloud-bridge/cli.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out, exited };
}

describe('reefer-bridge analytics', () => {
  it('prints its flags with --help and is listed by reefer-bridge --help', async () => {
    const help = bridge(['analytics', '--help']);
    expect(await help.exited).toBe(0);
    for (const flag of ['--kafka-brokers', '--telemetry-topic', '--alerts-topic', '--state-topic', '--group-id', '--kafka-tls-ca-file', '--kafka-sasl-mechanism', '--log-level']) {
      expect(help.out.stdout).toContain(flag);
    }
    const top = bridge(['--help']);
    expect(await top.exited).toBe(0);
    expect(top.out.stdout).toMatch(/^\s+analytics\s+the reference anomaly detector/m);
  });

  it('refuses bad flags, naming each flag, its value and what was expected', async () => {
    const run = bridge(['analytics', '--maintenance-threshold', 'three', '--kafka-brokers', 'kafka-1', '--kafka-sasl-mechanism', 'scram-sha-1']);
    expect(await run.exited).toBe(2);
    expect(run.out.stderr).toContain('--maintenance-threshold: expected an integer from 1 to 1000, got "three"');
    expect(run.out.stderr).toContain('--kafka-brokers: expected comma-separated host:port pairs');
    expect(run.out.stderr).toContain('--kafka-sasl-mechanism: expected one of scram-sha-512, scram-sha-256, plain, got "scram-sha-1"');
    const unknown = bridge(['analytics', '--brokers', 'x:1']);
    expect(await unknown.exited).toBe(2);
    expect(unknown.out.stderr).toContain("Unknown option '--brokers'");
  });

  it('prints alerts as they are committed and stops cleanly on SIGTERM', async () => {
    const topics = analyticsTopics();
    const run = bridge([
      'analytics',
      '--kafka-brokers', bootstrap,
      '--telemetry-topic', topics.telemetryTopic,
      '--alerts-topic', topics.alertsTopic,
      '--state-topic', topics.stateTopic,
      '--group-id', topics.groupId,
      '--log-level', 'warn',
    ]);
    await expect.poll(() => run.out.stdout, { timeout: 30_000 }).toContain('analytics running');
    const readings = [0, 1, 2].map((n) =>
      asTelemetry({ ...REFERENCE_READING, container_id: 'C-CLI', measurement_time: REFERENCE_READING.measurement_time + n * 300_000, oxygen_level: 9 }, 'gw-cli', n + 1),
    );
    await produce(bootstrap, topics.telemetryTopic, readings.map(telemetryRecord));
    await expect.poll(() => run.out.stdout, { timeout: 30_000 }).toContain('MaintenanceNeeded C-CLI after 3 anomalies: o2, o2, o2 (gw-cli/3/maintenance)');
    expect(run.out.stdout).toContain('ContainerAnomaly  C-CLI o2 #1: oxygen_level 9 % below 12 % (gw-cli/1/o2)');

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.out.stdout).toContain('analytics stopped (SIGTERM): readings 3 evaluated');

    const reader = await readAlerts(bootstrap, topics.alertsTopic);
    cleanups.push(() => reader.close());
    await expect.poll(() => reader.alerts().map((a) => a.alertId).sort(), { timeout: 10_000 }).toEqual(['gw-cli/1/o2', 'gw-cli/2/o2', 'gw-cli/3/maintenance', 'gw-cli/3/o2']);
  });
});
