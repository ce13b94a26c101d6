/**
 * Exactly once across a crash: the detector is killed with SIGKILL while readings flow in, a new
 * instance takes over, and the alerts topic ends up with exactly the alerts one uninterrupted pass
 * raises: none lost, none twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { processReading, type ContainerState } from '../../cloud-bridge/anomaly-detector.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';
import { analyticsTopics, asTelemetry, produce, readAlerts, telemetryRecord } from '../harness/analytics-harness.js';

const bootstrap = inject('kafkaBootstrap');
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  while (cleanups.length > 0) await cleanups.pop()!();
});

function detector(topics: ReturnType<typeof analyticsTopics>) {
  const args = ['--kafka-brokers', bootstrap, '--telemetry-topic', topics.telemetryTopic, '--alerts-topic', topics.alertsTopic];
  args.push('--state-topic', topics.stateTopic, '--group-id', topics.groupId, '--session-timeout-ms', '6000', '--log-level', 'warn');
  const child = spawn(process.execPath, ['--import', 'tsx', 'cloud-bridge/cli.ts', 'analytics', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out, exited, alertLines: () => out.stdout.split('\n').filter((l) => /^(ContainerAnomaly|MaintenanceNeeded) /.test(l)).length };
}

const CONTAINERS = 40;
const STEPS = 200;
const STEPS_PER_CHUNK = 10;

/** Reading n of container c: O2 low now and then, and the power off for two readings in every 40. */
function reading(c: number, n: number): ReeferTelemetry {
  return asTelemetry(
    {
      ...REFERENCE_READING,
      container_id: `C-K${String(c).padStart(2, '0')}`,
      measurement_time: REFERENCE_READING.measurement_time + n * 300_000,
      oxygen_level: (n + c) % 9 === 0 ? 10 : 21,
      kilowatts: n % 40 === 10 || n % 40 === 11 ? 0 : 2.6,
    },
    'gw-k',
    n * CONTAINERS + c + 1,
  );
}

describe('analytics killed mid-stream', () => {
  it('writes every alert exactly once after a SIGKILL and a takeover', async () => {
    const topics = analyticsTopics();
    const readings = Array.from({ length: STEPS }, (_, n) => Array.from({ length: CONTAINERS }, (_, c) => reading(c, n))).flat();

    // What one uninterrupted pass raises.
    const states = new Map<string, ContainerState>();
    const expected: string[] = [];
    for (const r of readings) {
      const result = processReading(r, states.get(r.container_id), 0);
      states.set(r.container_id, result.state);
      expected.push(...result.alerts.map((a) => a.alertId));
    }
    expect(expected.length).toBeGreaterThan(1000);

    const first = detector(topics);
    await expect.poll(() => first.out.stdout, { timeout: 30_000 }).toContain('analytics running');
    let killedAtChunk = -1;
    for (let chunk = 0; chunk < STEPS / STEPS_PER_CHUNK; chunk++) {
      const slice = readings.slice(chunk * STEPS_PER_CHUNK * CONTAINERS, (chunk + 1) * STEPS_PER_CHUNK * CONTAINERS);
      await produce(bootstrap, topics.telemetryTopic, slice.map(telemetryRecord));
      // Killed once it is well into the stream, or half-way through at the latest on a slow machine.
      if (killedAtChunk < 0 && (first.alertLines() > 100 || chunk === STEPS / STEPS_PER_CHUNK / 2)) {
        first.child.kill('SIGKILL');
        killedAtChunk = chunk;
      }
      await delay(50);
    }
    expect(killedAtChunk, 'the detector was killed while readings were still coming').toBeGreaterThanOrEqual(0);
    expect(killedAtChunk).toBeLessThan(STEPS / STEPS_PER_CHUNK - 1);
    await first.exited;
    const beforeKill = first.alertLines();
    expect(beforeKill).toBeLessThan(expected.length);

    const second = detector(topics);
    const reader = await readAlerts(bootstrap, topics.alertsTopic);
    cleanups.push(() => reader.close());
    await expect.poll(() => reader.alerts().length, { timeout: 40_000, interval: 200 }).toBeGreaterThanOrEqual(expected.length);
    await delay(1500);
    const ids = reader.alerts().map((a) => a.alertId);
    console.log(
      `[analytics crash] ${readings.length} readings, SIGKILL after chunk ${killedAtChunk + 1} of ${STEPS / STEPS_PER_CHUNK} with ${beforeKill} alerts printed; ` +
        `alerts topic ${ids.length}, distinct ${new Set(ids).size}, expected ${expected.length}`,
    );
    expect(ids.length).toBe(new Set(ids).size);
    expect([...ids].sort()).toEqual([...expected].sort());

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // The takeover resumed from the committed offset with the committed state: it did not start over.
    const stopped = /analytics stopped \(SIGTERM\): readings (\d+) evaluated, \d+ late, (\d+) repeated/.exec(second.out.stdout);
    expect(stopped, second.out.stdout).not.toBeNull();
    expect(Number(stopped![1])).toBeLessThan(readings.length);
    expect(Number(stopped![1])).toBeGreaterThan(0);
    expect(Number(stopped![2])).toBe(0);
  });
});
