/**
 * kill -9 trials: a gateway process under continuous device load is killed at random moments and
 * restarted on the same data folder, then every acknowledged reading is looked for in Kafka. Shared
 * by the fault-injection test (a fixed number of trials) and the soak script (as long as asked).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { DeliveryReport } from './delivery-check.js';
import { awaitDelivery } from './fault-report.js';
import { startFaultLoad } from './fault-load.js';
import { freePort } from './free-port.js';
import { createGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { readTopic } from './topic-reader.js';

export interface KillTrialsOptions {
  bootstrap: string;
  /** Stop after this many kills, or after `durationMs`, whichever comes first. */
  trials?: number;
  durationMs?: number;
  devices?: number;
  /** Longest a gateway runs before it is killed; each run lasts a random time up to this. */
  maxRunMs?: number;
  onTrial?(trial: number): void;
}

export interface KillTrialsResult {
  trials: number;
  report: DeliveryReport;
}

export async function runKillTrials(options: KillTrialsOptions): Promise<KillTrialsResult> {
  const dir = mkdtempSync(join(tmpdir(), 'reefer-kill-'));
  const topic = `kill-${randomUUID().slice(0, 8)}`;
  const port = await freePort();
  const gateway: GatewayProcess = createGatewayProcess({
    dir,
    config: {
      gatewayId: `gw-kill-${randomUUID().slice(0, 6)}`,
      dataDir: join(dir, 'data'),
      // Devices flood on purpose, anonymously: the trials measure recovery, not the input limits.
      mqtt: { host: '127.0.0.1', port, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
      kafka: { brokers: [options.bootstrap], topic, requestTimeoutMs: 5000, connectionTimeoutMs: 1000 },
      uplink: { minBackoffMs: 100, maxBackoffMs: 1000, batchSize: 500 },
      log: { level: 'info' },
    },
  });
  const reader = await readTopic(options.bootstrap, topic);
  const deadline = Date.now() + (options.durationMs ?? Number.POSITIVE_INFINITY);
  const maxTrials = options.trials ?? Number.POSITIVE_INFINITY;
  const maxRunMs = options.maxRunMs ?? 1500;
  let trials = 0;
  try {
    await gateway.start();
    const load = startFaultLoad({ mqttUrl: `mqtt://127.0.0.1:${port}`, devices: options.devices ?? 10, ratePerSecond: 0, seed: 42 });
    while (trials < maxTrials && Date.now() < deadline) {
      // Kill at a random moment: mid-commit, mid-transaction, between the two, or idle.
      await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * (maxRunMs - 200)));
      await gateway.kill();
      await gateway.start();
      trials += 1;
      options.onTrial?.(trials);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await load.stop();
    const report = await awaitDelivery(`kill -9 x${trials}`, reader, load.acknowledged(), { timeoutMs: 120_000, quietMs: 2000 });
    return { trials, report };
  } finally {
    await reader.close();
    await gateway.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
