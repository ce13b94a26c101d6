import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { awaitDelivery } from '../harness/fault-report.js';
import { startFaultLoad } from '../harness/fault-load.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { readTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A small filesystem of its own for the outbox, so filling it up harms nothing else (needs root).
const mountPoint = mkdtempSync(join(tmpdir(), 'reefer-disk-'));
let mounted = false;
let gw: GatewayUnderTest | undefined;
afterAll(async () => {
  await gw?.close();
  if (mounted) execFileSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

/** Writes zeros until the filesystem is full; returns the ballast's path. */
function fillDisk(dir: string): string {
  const path = join(dir, 'ballast');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return path;
}

describe('a full disk', () => {
  it('keeps the gateway running while the outbox disk is full, acknowledges nothing it could not store, and recovers when space returns', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mountPoint]);
    mounted = true;
    const dataDir = join(mountPoint, 'data');
    mkdirSync(dataDir);
    gw = await startTestGateway(bootstrap, {
      dataDir,
      // No early refusal: let SQLite itself run out of space mid-commit.
      outbox: { minFreeBytes: 0, onDiskFull: 'refuse' },
      uplink: { minBackoffMs: 100, maxBackoffMs: 1000 },
    });
    await expect.poll(() => gw!.gateway.status().uplink, { timeout: 30_000 }).toBe('up');
    const load = startFaultLoad({ mqttUrl: gw.mqttUrl, devices: 10, ratePerSecond: 500, seed: 9 });
    await sleep(2000);

    const ballast = fillDisk(mountPoint);
    await expect.poll(() => gw!.gateway.status().stats.refused, { timeout: 20_000 }).toBeGreaterThan(0);
    const ackedWhileFull = load.acknowledged().length;
    await sleep(3000);
    // Still running and answering; readings it could not store were not acknowledged.
    const whileFull = gw.gateway.status();
    expect(whileFull.disk.freeBytes).toBeLessThan(1024 * 1024);
    expect(load.acknowledged().length - ackedWhileFull).toBeLessThan(50);

    rmSync(ballast);
    await expect.poll(() => load.acknowledged().length, { timeout: 30_000 }).toBeGreaterThan(ackedWhileFull + 1000);
    await load.stop();

    const reader = await readTopic(bootstrap, gw.topic);
    try {
      const report = await awaitDelivery(`disk full, ${whileFull.stats.refused} refused`, reader, load.acknowledged(), { timeoutMs: 60_000, quietMs: 2000 });
      expect(report.lost).toBe(0);
      expect(report.duplicated).toBe(0);
    } finally {
      await reader.close();
    }
  });
});
