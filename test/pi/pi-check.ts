/**
 * The measuring half of the Raspberry Pi check (test/pi/pi-check.sh builds the arm64 copy it runs):
 * starts a real Kafka broker, runs the gateway built for arm64 under qemu-user as it would run on a
 * 64-bit Raspberry Pi OS, sends a simulated fleet's readings from the host, checks that every
 * acknowledged reading reached Kafka once, and prints what it measured. Everything it starts is
 * stopped when it ends, fails or is interrupted.
 *
 *   node --import tsx test/pi/pi-check.ts --app DIR --node ARM64_NODE --sysroot DIR [flags, see USAGE]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../harness/free-port.js';
import { KAFKA_VERSION, startKafkaBroker, type KafkaBroker } from '../harness/kafka-broker.js';
import { readTopic } from '../harness/topic-reader.js';

const USAGE = `Usage: node --import tsx test/pi/pi-check.ts --app DIR --node ARM64_NODE --sysroot DIR [flags]

  --app DIR        the arm64 copy: dist/, package.json and node_modules built for arm64
  --node PATH      Node.js for arm64
  --sysroot DIR    arm64 libraries for qemu (-L)
  --qemu PATH      qemu-user for aarch64 (default qemu-aarch64-static)
  --devices N      simulated reefers (default 20)
  --count N        readings per reefer (default 50)
  --rate R         readings per second across the fleet (default 0: as fast as they are acknowledged)
  --baseline       also run the same load against the gateway on this machine's own Node, for comparison
  --sync MODE      outbox.sync: full (default) or normal
`;

/** One gateway run's figures. */
interface RunFigures {
  label: string;
  startMs: number;
  uplinkUpMs: number | null;
  acknowledged: number;
  delivered: number;
  duplicates: number;
  ingestPerSecond: number;
  endToEndMs: number;
  rssIdleBytes: number;
  rssPeakBytes: number;
  /** Bytes the gateway caused to be written to storage while it took the readings (/proc/PID/io). */
  writtenBytes: number | null;
  stopMs: number;
  exitCode: number | null;
}

const children = new Set<ChildProcess>();
const cleanups: Array<() => Promise<void> | void> = [];

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of children) child.kill('SIGKILL');
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  })();
  return cleaning;
}
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`pi-check: ${signal}, stopping everything\n`);
    void cleanUp().then(() => process.exit(130));
  });
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Resident and peak resident memory of a process, from /proc (qemu-user's own plus the guest's). */
function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Bytes a process caused to be written to storage so far (counted when pages are dirtied). */
function writtenBytesOf(pid: number): number | undefined {
  try {
    const match = /^write_bytes:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves with the time (ms since `t0`) at which the gateway logged `message`; rejects if it exits first. */
function waitForLog(child: ChildProcess, log: { text: string }, message: string, t0: number, timeoutMs: number): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const needle = `"msg":"${message}"`;
    const check = () => {
      if (log.text.includes(needle)) {
        done();
        resolvePromise(performance.now() - t0);
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`gateway exited with ${code} before logging "${message}":\n${log.text.slice(-4000)}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`gateway did not log "${message}" within ${timeoutMs} ms:\n${log.text.slice(-4000)}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.stderr!.off('data', check);
      child.off('exit', onExit);
    };
    child.stderr!.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

/** Runs the simulator on this machine's Node; resolves with its JSON summary. */
function runSimulator(mqttUrl: string, devices: number, count: number, rate: number): Promise<{ sent: number; elapsedMs: number; ratePerSecond: number; errors: number }> {
  const args = ['--import', 'tsx', 'device-sim/cli.ts', '--devices', String(devices), '--count', String(count), '--rate', String(rate), '--mqtt-url', mqttUrl];
  const sim = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  sim.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  sim.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolvePromise, reject) => {
    sim.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`simulator exited with ${code}:\n${err.slice(-2000)}`));
      else resolvePromise(JSON.parse(last) as { sent: number; elapsedMs: number; ratePerSecond: number; errors: number });
    });
  });
}

interface GatewayCommand {
  label: string;
  command: string;
  args: (configPath: string) => string[];
  cwd: string;
  /** Folder whose dist/gateway/config.js validates the configuration this gateway will read. */
  distRoot: string;
}

interface Load {
  devices: number;
  count: number;
  /** Readings per second across the fleet; 0 for as fast as they are acknowledged. */
  rate: number;
  sync: string;
}

async function measure(gw: GatewayCommand, broker: KafkaBroker, load: Load): Promise<RunFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'reefer-pi-run-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const mqttPort = await freePort();
  const topic = `reefer-telemetry-${gw.label.replace(/\W+/g, '-')}`;
  const config: Record<string, unknown> = {
    gatewayId: `pi-check-${gw.label.replace(/\W+/g, '-')}`,
    dataDir: join(dir, 'data'),
    mqtt: { host: '127.0.0.1', port: mqttPort },
    kafka: { brokers: [broker.bootstrap], topic },
    outbox: { sync: load.sync },
    log: { level: 'info' },
  };
  // Settings this build of the gateway may not have; each is kept only if its configuration accepts it.
  const { resolveConfig } = (await import(pathToFileURL(join(gw.distRoot, 'dist/gateway/config.js')).href)) as typeof import('../../gateway/config.js');
  const optional: Record<string, unknown>[] = [
    // Versions with device credentials refuse anonymous devices by default; the simulator has none.
    { mqtt: { auth: { allowAnonymous: true } } },
    // ... and rate-limit each device; the check measures ingest flat out.
    { mqtt: { limits: { readingsPerSecond: 0 } } },
    // Keep the HTTP server off port 8080 and anything else in use.
    { http: { port: await freePort() } },
  ];
  for (const part of optional) {
    const candidate = mergeDeep(config, part);
    try {
      resolveConfig({ file: candidate });
      Object.assign(config, candidate);
    } catch {
      // Not a key of this version's configuration.
    }
  }
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(configPath, stringify(config));

  const reader = await readTopic(broker.bootstrap, topic);
  cleanups.push(() => reader.close());

  const t0 = performance.now();
  const gateway = track(spawn(gw.command, gw.args(configPath), { cwd: gw.cwd, stdio: ['ignore', 'ignore', 'pipe'] }));
  const log = { text: '' };
  gateway.stderr!.on('data', (c: Buffer) => (log.text += c.toString()));
  const exited = new Promise<number | null>((r) => gateway.once('exit', (code) => r(code)));
  const startMs = await waitForLog(gateway, log, 'gateway started', t0, 300_000);
  const uplinkUpMs = await waitForLog(gateway, log, 'uplink up', t0, 120_000).catch(() => null);
  const idle = memoryOf(gateway.pid!);
  say(`[${gw.label}] started in ${(startMs / 1000).toFixed(1)} s${uplinkUpMs === null ? '' : `, uplink up at ${(uplinkUpMs / 1000).toFixed(1)} s`}; RSS ${mb(idle?.rss ?? 0)}`);

  let peak = idle?.hwm ?? 0;
  const sampler = setInterval(() => {
    const m = memoryOf(gateway.pid!);
    if (m) peak = Math.max(peak, m.hwm);
  }, 250);
  const writtenBefore = writtenBytesOf(gateway.pid!);
  const t1 = performance.now();
  const summary = await runSimulator(`mqtt://127.0.0.1:${mqttPort}`, load.devices, load.count, load.rate);
  say(`[${gw.label}] ${summary.sent} readings acknowledged in ${(summary.elapsedMs / 1000).toFixed(1)} s (${summary.ratePerSecond.toFixed(0)}/s), ${summary.errors} errors`);
  await reader.waitFor(summary.sent, 300_000);
  const endToEndMs = performance.now() - t1;
  const records = await reader.settle(3000);
  clearInterval(sampler);
  const final = memoryOf(gateway.pid!);
  const writtenAfter = writtenBytesOf(gateway.pid!);
  peak = Math.max(peak, final?.hwm ?? 0);

  const keys = new Set(records.map((r) => `${r.value.container_id}|${String(r.value.measurement_time)}`));
  const tStop = performance.now();
  gateway.kill('SIGTERM');
  const kill = setTimeout(() => gateway.kill('SIGKILL'), 60_000);
  const exitCode = await exited;
  clearTimeout(kill);
  const stopMs = performance.now() - tStop;
  if (exitCode !== 0) process.stderr.write(`pi-check: [${gw.label}] gateway exited with ${exitCode}:\n${log.text.slice(-4000)}\n`);

  return {
    label: gw.label,
    startMs,
    uplinkUpMs,
    acknowledged: summary.sent,
    delivered: keys.size,
    duplicates: records.length - keys.size,
    ingestPerSecond: summary.ratePerSecond,
    endToEndMs,
    rssIdleBytes: idle?.rss ?? 0,
    rssPeakBytes: peak,
    writtenBytes: writtenBefore === undefined || writtenAfter === undefined ? null : writtenAfter - writtenBefore,
    stopMs,
    exitCode,
  };
}

function mergeDeep(base: Record<string, unknown>, part: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(part)) {
    const existing = out[key];
    const bothObjects = [existing, value].every((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
    out[key] = bothObjects ? mergeDeep(existing as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return out;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

function report(f: RunFigures): void {
  say(`
${f.label}
  gateway start (spawn to "gateway started") ${(f.startMs / 1000).toFixed(1)} s${f.uplinkUpMs === null ? '' : `; uplink up at ${(f.uplinkUpMs / 1000).toFixed(1)} s`}
  readings acknowledged / delivered to Kafka  ${f.acknowledged} / ${f.delivered}  (duplicates ${f.duplicates}, missing ${f.acknowledged - f.delivered})
  durable ingest rate (acknowledged/s)       ${f.ingestPerSecond.toFixed(0)} readings/s
  first publish to last reading in Kafka     ${(f.endToEndMs / 1000).toFixed(1)} s
  RSS idle after start / peak                ${mb(f.rssIdleBytes)} / ${mb(f.rssPeakBytes)}${
    f.writtenBytes === null ? '' : `\n  written to storage during the load         ${(f.writtenBytes / 1024).toFixed(0)} KiB (${(f.writtenBytes / Math.max(f.acknowledged, 1)).toFixed(0)} bytes per reading)`
  }
  stop on SIGTERM                            ${(f.stopMs / 1000).toFixed(1)} s, exit code ${f.exitCode}`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      app: { type: 'string' },
      node: { type: 'string' },
      sysroot: { type: 'string' },
      qemu: { type: 'string', default: 'qemu-aarch64-static' },
      devices: { type: 'string', default: '20' },
      count: { type: 'string', default: '50' },
      rate: { type: 'string', default: '0' },
      baseline: { type: 'boolean', default: false },
      sync: { type: 'string', default: 'full' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !values.app || !values.node || !values.sysroot) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const load: Load = { devices: Number(values.devices), count: Number(values.count), rate: Number(values.rate), sync: values.sync };
  const app = resolve(values.app);
  const armNode = resolve(values.node);
  const sysroot = resolve(values.sysroot);
  const qemu = values.qemu;

  say(`Starting Kafka ${KAFKA_VERSION}...`);
  const broker = await startKafkaBroker();
  cleanups.push(() => broker.close());
  const pace = load.rate > 0 ? `${load.rate} readings/s` : 'as fast as acknowledged';
  say(`Kafka at ${broker.bootstrap}; ${load.devices} reefers x ${load.count} readings, QoS 1, ${pace}; outbox.sync ${load.sync}`);

  const runs: RunFigures[] = [];
  runs.push(
    await measure(
      {
        label: 'arm64 under qemu-user',
        command: qemu,
        args: (configPath) => ['-L', sysroot, armNode, 'dist/gateway/cli.js', '--config', configPath],
        cwd: app,
        distRoot: app,
      },
      broker,
      load,
    ),
  );
  if (values.baseline) {
    const root = process.cwd();
    runs.push(
      await measure(
        { label: `${process.arch} native`, command: process.execPath, args: (configPath) => ['dist/gateway/cli.js', '--config', configPath], cwd: root, distRoot: root },
        broker,
        load,
      ),
    );
  }
  for (const run of runs) report(run);
  const ok = runs.every((r) => r.delivered === r.acknowledged && r.duplicates === 0 && r.exitCode === 0);
  say(`\n${ok ? 'PASS' : 'FAIL'}: every acknowledged reading reached Kafka once${ok ? '' : ' (see above)'}`);
  return ok ? 0 : 1;
}

main()
  .then(
    async (code) => {
      await cleanUp();
      process.exit(code);
    },
    async (error: unknown) => {
      process.stderr.write(`pi-check: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      await cleanUp();
      process.exit(1);
    },
  );
