/**
 * `npm run bench`: the whole pipeline against a real Kafka broker, beside the raw limits of each stage
 * measured alone on the same machine. Prints a table and writes bench-results/bench.json.
 *
 * The gateway runs in a child process (bench-gateway.ts) and the MQTT devices in another
 * (bench-load.ts), so the gateway's CPU time and memory are its own. The Kafka broker is a JVM child.
 *
 *   npm run bench                                   # everything, ~4 minutes on 2 cores
 *   npm run bench -- --only stages,e2e              # parts: stages, e2e, latency, memory, drain
 *   npm run bench -- --readings 100000              # readings per throughput phase (default 200000)
 *   npm run bench -- --gateway-config '{"outbox":{"maxBatch":2000}}'   # override gateway settings
 *   npm run bench -- --gateway-flags=--cpu-prof     # node flags for the gateway process (profiles land in bench-results/)
 *   npm run bench -- --fsync-delay-ms 10            # every fsync of the gateway 10 ms slower (slow-fsync.c), as on an SD card
 *
 * Figures:
 *  - e2e: MQTT QoS 1 in, each reading durable in the outbox (sync=full) before its PUBACK, sent to Kafka
 *    in exactly-once transactions and deleted from the outbox after the commit; readings per second from
 *    the first publish until the last reading is committed in Kafka. Also the gateway's CPU time per
 *    reading (process.cpuUsage of the gateway process), and the devices' and the broker's (from
 *    /proc): together they give the rate the machine's cores allow at all (cpuBoundPerSecond).
 *  - latency: a paced offered load (5,000 readings/s, after a 3-second warm-up at that rate whose
 *    readings are reported apart); each reading carries its publish time as its
 *    measurement time and a read_committed consumer takes the time it sees the record, so the figure is
 *    publish → committed in Kafka and visible to consumers (an upper bound of publish → commit: it
 *    includes the consumer's fetch wait). publish → PUBACK is given beside it.
 *  - memory: gateway resident set size with 2,000 devices connected and publishing 2,000 readings/s.
 *  - drain: Kafka stopped, readings buffered, outbox bytes per reading on disk; Kafka started again,
 *    the backlog's drain rate, and bytes per reading on the uplink (Kafka's log segments, compressed).
 *  - stages: MQTT listener (aedes) QoS 1 publish rate with a sink that does nothing, pipeline decode and
 *    validate, Avro encode, outbox batched insert, Kafka transactional producer, each alone.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { resolveConfig } from '../../gateway/config.js';
import { createMqttListener } from '../../gateway/ingest/mqtt-listener.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { openOutbox } from '../../gateway/outbox/sqlite-outbox.js';
import { encodeStoredReading, storedTelemetryBody } from '../../gateway/outbox/stored-reading.js';
import { decodeReading } from '../../gateway/pipeline/decode-reading.js';
import { decodeSingleObject, encodeTelemetry } from '../../schemas/avro.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { KAFKA_VERSION, startKafkaBroker, type KafkaBroker } from '../harness/kafka-broker.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';
import type { GatewaySample } from './bench-gateway.js';
import type { LoadJob, LoadResult } from './bench-load.js';

const PARTS = ['stages', 'e2e', 'latency', 'memory', 'drain'] as const;
type Part = (typeof PARTS)[number];

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    readings: { type: 'string' },
    out: { type: 'string' },
    'gateway-config': { type: 'string' },
    'gateway-flags': { type: 'string' },
    'latency-rate': { type: 'string' },
    'latency-seconds': { type: 'string' },
    'latency-warmup-seconds': { type: 'string' },
    devices: { type: 'string' },
    load: { type: 'string' },
    'fsync-delay-ms': { type: 'string' },
  },
});
const only = new Set<Part>(args.only ? (args.only.split(',') as Part[]) : PARTS);
for (const part of only) if (!PARTS.includes(part)) throw new Error(`--only ${part}: expected some of ${PARTS.join(', ')}`);
const READINGS = Number(args.readings ?? 200_000);
const OUT = resolve(args.out ?? 'bench-results/bench.json');
const GATEWAY_OVERRIDES = JSON.parse(args['gateway-config'] ?? '{}') as Record<string, unknown>;
const GATEWAY_FLAGS = (args['gateway-flags'] ?? '').split(' ').filter((f) => f !== '');
const LATENCY_RATE = Number(args['latency-rate'] ?? 5000);
const LATENCY_SECONDS = Number(args['latency-seconds'] ?? 20);
const LATENCY_WARMUP_SECONDS = Number(args['latency-warmup-seconds'] ?? 3);
const MEMORY_DEVICES = Number(args.devices ?? 2000);
/**
 * The devices of the throughput and latency phases: `lean` (the benchmark's own QoS 1 publisher, a
 * few µs of CPU a reading, so the cores it shares with the gateway go to the gateway) or `mqttjs` (a
 * general MQTT client, ~15 µs a reading). The memory phase always connects MQTT.js devices, which
 * keep their connections alive as real ones do.
 */
const LOAD_KINDS = ['lean', 'mqttjs'] as const;
const LOAD = (args.load ?? 'lean') as (typeof LOAD_KINDS)[number];
if (!LOAD_KINDS.includes(LOAD)) throw new Error(`--load ${LOAD}: expected ${LOAD_KINDS.join(' or ')}`);
const LOAD_NAME = LOAD === 'lean' ? 'lean publisher' : 'MQTT.js';
/** Added to every fsync of the gateway process, to see it on storage as slow as an SD card's. */
const FSYNC_DELAY_MS = Number(args['fsync-delay-ms'] ?? 0);
/** Devices and unacknowledged publishes per device for the flat-out phases. */
const FLAT_DEVICES = 100;
const FLAT_IN_FLIGHT = 20;

const here = fileURLToPath(new URL('.', import.meta.url));
const log = (text: string) => process.stderr.write(`bench: ${text}\n`);
const round = (n: number, digits = 0) => Math.round(n * 10 ** digits) / 10 ** digits;
const MB = 1024 * 1024;

function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** A forked child speaking request/answer over IPC; answers are taken in order by type. */
function childChannel(child: ChildProcess) {
  const waiting = new Map<string, ((m: Record<string, unknown>) => void)[]>();
  const early = new Map<string, Record<string, unknown>[]>();
  let failure: Error | undefined;
  child.on('message', (raw) => {
    const m = raw as Record<string, unknown> & { type: string };
    if (m.type === 'error') {
      failure = new Error(`child: ${String(m.message)}`);
      for (const list of waiting.values()) for (const w of list) w(m);
      return;
    }
    const list = waiting.get(m.type);
    const w = list?.shift();
    if (w) w(m);
    else early.set(m.type, [...(early.get(m.type) ?? []), m]);
  });
  return {
    next<T>(type: string, timeoutMs = 600_000): Promise<T> {
      if (failure) return Promise.reject(failure);
      const queued = early.get(type)?.shift();
      if (queued) return Promise.resolve(queued as T);
      return new Promise<T>((resolveNext, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type} from child in ${timeoutMs} ms`)), timeoutMs);
        waiting.set(type, [
          ...(waiting.get(type) ?? []),
          (m) => {
            clearTimeout(timer);
            if (m.type === 'error') reject(failure);
            else resolveNext(m as T);
          },
        ]);
      });
    },
    send(message: unknown) {
      child.send(message as never);
    },
  };
}

interface GatewayChild {
  mqttUrl: string;
  dataDir: string;
  topic: string;
  /** CPU time of the gateway's main thread (its event loop) so far, µs; undefined without /proc. */
  mainThreadCpuMicros(): number | undefined;
  sample(): Promise<GatewaySample>;
  close(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** The gateway's environment: with --fsync-delay-ms, the slow-fsync library preloaded (built here with gcc). */
let slowFsyncEnv: NodeJS.ProcessEnv | undefined;
function gatewayEnv(): NodeJS.ProcessEnv {
  if (FSYNC_DELAY_MS <= 0) return process.env;
  if (slowFsyncEnv) return slowFsyncEnv;
  mkdirSync(resolve(OUT, '..'), { recursive: true });
  const library = join(resolve(OUT, '..'), 'slow-fsync.so');
  const source = resolve(here, '../../../test/bench/slow-fsync.c');
  const built = spawnSync('gcc', ['-shared', '-fPIC', '-O2', '-o', library, source, '-ldl'], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`--fsync-delay-ms needs gcc to build ${source}: ${built.error?.message ?? built.stderr}`);
  slowFsyncEnv = { ...process.env, LD_PRELOAD: library, SLOW_FSYNC_US: String(Math.round(FSYNC_DELAY_MS * 1000)) };
  return slowFsyncEnv;
}

async function startGatewayChild(broker: KafkaBroker, name: string): Promise<GatewayChild> {
  const dataDir = mkdtempSync(join(tmpdir(), `reefer-bench-${name}-`));
  const topic = `bench-${name}-${Date.now()}`;
  const config = deepMerge(
    {
      gatewayId: `bench-${name}`,
      dataDir,
      // Flat-out phases must not be held back by the per-device rate limit.
      mqtt: { host: '127.0.0.1', port: 0, auth: { allowAnonymous: true }, limits: { readingsPerSecond: 0 } },
      http: { enabled: false },
      kafka: { brokers: [broker.bootstrap], topic },
      log: { level: 'error' },
    },
    GATEWAY_OVERRIDES,
  );
  const flags = GATEWAY_FLAGS.map((f) => (f === '--cpu-prof' ? `--cpu-prof-dir=${join(resolve(OUT, '..'), 'profiles')}` : f));
  if (GATEWAY_FLAGS.includes('--cpu-prof')) flags.push('--cpu-prof');
  const child = fork(join(here, 'bench-gateway.js'), [], { execArgv: flags, env: gatewayEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const channel = childChannel(child);
  channel.send({ type: 'start', config });
  const { mqttPort } = await channel.next<{ mqttPort: number }>('ready', 60_000);
  const g: GatewayChild = {
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    dataDir,
    topic,
    mainThreadCpuMicros: () => (child.pid === undefined ? undefined : statCpuMicros(`/proc/${child.pid}/task/${child.pid}/stat`)),
    async sample() {
      channel.send({ type: 'sample' });
      return channel.next<GatewaySample>('sample');
    },
    async close() {
      channel.send({ type: 'close' });
      await channel.next('closed', 60_000).catch(() => undefined);
      await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      children.delete(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await waitFor(async () => (await g.sample()).uplink === 'up', 60_000, 'the gateway uplink to come up', 200);
  return g;
}

interface LoadChild {
  connected: Promise<unknown>;
  done: Promise<LoadResult>;
  close(): Promise<void>;
}

function startLoad(job: LoadJob): LoadChild {
  const child = fork(join(here, 'bench-load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const channel = childChannel(child);
  channel.send({ type: 'run', job });
  return {
    connected: channel.next('connected'),
    done: channel.next<{ result: LoadResult }>('done').then((m) => m.result),
    async close() {
      channel.send({ type: 'close' });
      await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      children.delete(child);
    },
  };
}

function flatJob(url: string, prefix: string, total: number, startTimeMs: number): LoadJob {
  return {
    url,
    devices: FLAT_DEVICES,
    prefix,
    total,
    ratePerSecond: 0,
    inFlightPerDevice: FLAT_IN_FLIGHT,
    startTimeMs,
    intervalMs: 1000,
    wallClockTimes: false,
    connectSpreadMs: 200,
    lean: LOAD === 'lean',
  };
}

function timeRate(n: number, fn: () => void): number {
  fn(); // warm up
  const start = performance.now();
  for (let i = 0; i < n; i++) fn();
  return n / ((performance.now() - start) / 1000);
}

const SAMPLE_TELEMETRY: ReeferTelemetry = {
  ...REFERENCE_READING,
  container_id: 'B0001',
  gateway_id: 'bench',
  seq: 123456,
  transport: 'mqtt',
  received_time: REFERENCE_READING.measurement_time + 1000,
};
const SAMPLE_STORED = encodeStoredReading(SAMPLE_TELEMETRY, 'mqtt', SAMPLE_TELEMETRY.received_time);

async function stages(broker: KafkaBroker): Promise<Record<string, number>> {
  const defaults = resolveConfig({ file: {} });
  const out: Record<string, number> = {};

  // Avro encode and pipeline decode+validate: pure CPU, in this process.
  out.avroEncodePerSecond = round(timeRate(200_000, () => encodeTelemetry(SAMPLE_TELEMETRY)));
  // What the pipeline does instead: the compact stored form at ingest, the Avro body from it at send.
  const storedRow = { seq: SAMPLE_TELEMETRY.seq, containerId: SAMPLE_TELEMETRY.container_id, receivedMs: SAMPLE_TELEMETRY.received_time, value: SAMPLE_STORED };
  out.storedEncodePerSecond = round(timeRate(200_000, () => encodeStoredReading(SAMPLE_TELEMETRY, 'mqtt', SAMPLE_TELEMETRY.received_time)));
  out.storedToAvroPerSecond = round(timeRate(200_000, () => storedTelemetryBody(storedRow, SAMPLE_TELEMETRY.gateway_id)));
  const payload = Buffer.from(
    '{"container_id":"B0001","product_id":"P05","target_temperature":5,"ambient_temperature":20.5,"kilowatts":2.6,"time_door_open":0,"content_type":1,"defrost_cycle":5,"oxygen_level":21.5,"nitrogen_level":75.9,"humidity_level":39.8,"carbon_dioxide_level":4.7,"fan_1":true,"fan_2":true,"fan_3":true,"latitude":37.82,"longitude":-122.32,"maintenance_required":0,"measurement_time":1768499985000,"temperature":5.02}',
  );
  const ctx = { topicContainerId: 'B0001', timeZone: 'UTC', nowMs: Date.now(), maxPayloadBytes: 65536 };
  out.decodeValidatePerSecond = round(timeRate(200_000, () => decodeReading(payload, ctx)));
  log(
    `stage avro encode ${out.avroEncodePerSecond}/s, stored form ${out.storedEncodePerSecond}/s, stored → avro ${out.storedToAvroPerSecond}/s, ` +
      `decode+validate ${out.decodeValidatePerSecond}/s`,
  );

  // Outbox: batched inserts of one commit group each, as the commit queue makes them, fsync per commit.
  const dir = mkdtempSync(join(tmpdir(), 'reefer-bench-outbox-'));
  try {
    const outbox = openOutbox({ path: join(dir, 'outbox.db'), sync: defaults.outbox.sync });
    const value = SAMPLE_STORED;
    const batch = defaults.outbox.maxBatch;
    const n = READINGS;
    const base = Date.UTC(2026, 0, 1);
    const start = performance.now();
    for (let i = 0; i < n; i += batch) {
      const rows = [];
      for (let j = i; j < Math.min(n, i + batch); j++) {
        rows.push({ containerId: `B${String(j % 1000).padStart(4, '0')}`, measurementMs: base + j, receivedMs: base + j, lane: 'routine' as const, encode: () => value });
      }
      outbox.append(rows, []);
    }
    out.outboxInsertPerSecond = round(n / ((performance.now() - start) / 1000));
    outbox.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  log(`stage outbox insert (batches of ${defaults.outbox.maxBatch}, sync=${defaults.outbox.sync}) ${out.outboxInsertPerSecond}/s`);

  // Kafka: the transactional producer as the uplink drives it (batch, compression, marker per commit).
  const kafka = createKafkaClient({ brokers: [broker.bootstrap], clientId: 'bench-stage' });
  const admin = kafka.admin();
  const topic = `bench-stage-${Date.now()}`;
  await admin.ensureTopics([{ topic, partitions: defaults.kafka.partitions }]);
  const records = Array.from({ length: defaults.uplink.batchSize }, (_, i) => ({
    key: `B${String(i % 1000).padStart(4, '0')}`,
    value: Buffer.concat([Buffer.alloc(10, 0xc3), encodeTelemetry({ ...SAMPLE_TELEMETRY, seq: i })]),
    headers: { gateway_id: 'bench', seq: String(i), lane: 'routine' },
    timestampMs: Date.now(),
  }));
  const producer = kafka.transactionalProducer({ transactionalId: `bench-stage-${Date.now()}`, compression: defaults.kafka.compression });
  await producer.connect();
  const commits = Math.max(1, Math.round(READINGS / records.length));
  // Warm up; the first marker also waits for the broker to create its offsets topic and group coordinator.
  for (let attempt = 0; ; attempt++) {
    try {
      await producer.commit([{ topic, records }], { groupId: 'bench-stage-progress', topic, partition: 0, offset: 0, metadata: 'x:0-0' });
      break;
    } catch (error) {
      if (attempt >= 30) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  let start = performance.now();
  for (let i = 0; i < commits; i++) {
    await producer.commit([{ topic, records }], { groupId: 'bench-stage-progress', topic, partition: 0, offset: i, metadata: `x:${i}-${i}` });
  }
  out.kafkaTransactionalPerSecond = round((commits * records.length) / ((performance.now() - start) / 1000));
  await producer.close();
  const plain = kafka.producer({ idempotent: true, compression: defaults.kafka.compression });
  await plain.connect();
  start = performance.now();
  for (let i = 0; i < commits; i++) await plain.send(topic, records);
  out.kafkaIdempotentPerSecond = round((commits * records.length) / ((performance.now() - start) / 1000));
  await plain.close();
  await admin.close();
  log(`stage kafka transactional (batches of ${records.length}, ${defaults.kafka.compression}) ${out.kafkaTransactionalPerSecond}/s, idempotent ${out.kafkaIdempotentPerSecond}/s`);

  // MQTT listener (aedes) with a sink that does nothing; the devices are a child process.
  const listener = createMqttListener(
    {
      host: '127.0.0.1',
      port: 0,
      auth: { allowAnonymous: true, users: [] },
      limits: { ...defaults.mqtt.limits, readingsPerSecond: 0 },
    },
    { logger: createLogger('error'), onTelemetry: () => Promise.resolve() },
  );
  await listener.start();
  const load = startLoad(flatJob(`mqtt://127.0.0.1:${listener.port()}`, 'S', READINGS, Date.UTC(2026, 0, 1)));
  await load.connected;
  const listenerCpuBefore = process.cpuUsage();
  const result = await load.done;
  const listenerCpu = process.cpuUsage(listenerCpuBefore);
  await load.close();
  await listener.close();
  out.mqttQos1PerSecond = result.ackRatePerSecond;
  // Whichever side is near a core's worth of CPU is what holds this stage's rate.
  out.mqttListenerCpuMicrosPerReading = round((listenerCpu.user + listenerCpu.system) / READINGS, 2);
  out.mqttDevicesCpuMicrosPerReading = round(result.cpuMicros / READINGS, 2);
  log(
    `stage MQTT QoS 1 (${FLAT_DEVICES} devices, ${LOAD_NAME}, × ${FLAT_IN_FLIGHT} in flight) ${out.mqttQos1PerSecond}/s, ` +
      `listener ${out.mqttListenerCpuMicrosPerReading} µs and devices ${out.mqttDevicesCpuMicrosPerReading} µs of CPU a reading`,
  );
  return out;
}

async function e2e(broker: KafkaBroker): Promise<Record<string, number>> {
  const g = await startGatewayChild(broker, 'e2e');
  try {
    const before = await g.sample();
    const load = startLoad(flatJob(g.mqttUrl, 'E', READINGS, Date.now() - 30 * 86_400_000));
    await load.connected;
    const started = performance.now();
    const brokerCpuBefore = processCpuMicros(broker.pid());
    const mainThreadBefore = g.mainThreadCpuMicros();
    const machineBefore = machineCpuTicks();
    let last = before;
    let peakRss = before.rssBytes;
    let peakBacklog = 0;
    await waitFor(
      async () => {
        last = await g.sample();
        peakRss = Math.max(peakRss, last.rssBytes);
        peakBacklog = Math.max(peakBacklog, last.outboxCount);
        return last.sent - before.sent >= READINGS && last.outboxCount === 0;
      },
      600_000,
      'every reading to be committed in Kafka',
      100,
    );
    const elapsedMs = performance.now() - started;
    const brokerCpuAfter = processCpuMicros(broker.pid());
    const mainThreadAfter = g.mainThreadCpuMicros();
    const machineAfter = machineCpuTicks();
    const result = await load.done;
    await load.close();
    const cpuMicros = last.cpuUserMicros + last.cpuSystemMicros - before.cpuUserMicros - before.cpuSystemMicros;
    const out: Record<string, number> = {
      readings: READINGS,
      endToEndPerSecond: round(READINGS / (elapsedMs / 1000)),
      ingestAckPerSecond: result.ackRatePerSecond,
      ackP50Ms: result.ackP50Ms,
      ackP99Ms: result.ackP99Ms,
      gatewayCpuMicrosPerReading: round(cpuMicros / READINGS, 2),
      gatewayCpuCores: round(cpuMicros / 1000 / elapsedMs, 2),
      gatewayPeakRssMb: round(peakRss / MB, 1),
      peakOutboxBacklog: peakBacklog,
      publishErrors: result.errors,
      duplicates: last.duplicates - before.duplicates,
      rejected: last.rejected - before.rejected,
    };
    // The gateway's event loop runs on one thread: near a core's worth of CPU, it holds the rate.
    if (mainThreadBefore !== undefined && mainThreadAfter !== undefined) {
      out.gatewayMainThreadCpuMicrosPerReading = round((mainThreadAfter - mainThreadBefore) / READINGS, 2);
      out.gatewayMainThreadBusyPercent = round((100 * (mainThreadAfter - mainThreadBefore)) / 1000 / elapsedMs, 1);
    }
    // The machine's CPU budget: the gateway, the devices and the broker share its cores, so a reading
    // costs what the three spend on it together, and the cores divided by that bounds the rate.
    if (brokerCpuBefore !== undefined && brokerCpuAfter !== undefined && machineBefore && machineAfter) {
      out.loadCpuMicrosPerReading = round(result.cpuMicros / READINGS, 2);
      out.brokerCpuMicrosPerReading = round((brokerCpuAfter - brokerCpuBefore) / READINGS, 2);
      out.pipelineCpuMicrosPerReading = round(out.gatewayCpuMicrosPerReading! + out.loadCpuMicrosPerReading + out.brokerCpuMicrosPerReading, 2);
      out.machineBusyPercent = round((100 * (machineAfter.busy - machineBefore.busy)) / (machineAfter.total - machineBefore.total), 1);
      out.cpuBoundPerSecond = round((cpus().length * 1e6) / out.pipelineCpuMicrosPerReading);
      out.shareOfCpuBound = round(out.endToEndPerSecond! / out.cpuBoundPerSecond, 2);
    }
    log(`e2e ${JSON.stringify(out)}`);
    return out;
  } finally {
    await g.close();
  }
}

async function latency(broker: KafkaBroker): Promise<Record<string, number | number[]>> {
  const g = await startGatewayChild(broker, 'latency');
  const kafka = createKafkaClient({ brokers: [broker.bootstrap], clientId: 'bench-reader' });
  const seen: number[] = [];
  const consumer = kafka.consumer({ groupId: `bench-reader-${Date.now()}`, topics: [g.topic], fromBeginning: true, maxWaitTimeMs: 5 });
  try {
    await consumer.start((records) => {
      const now = Date.now();
      for (const r of records) {
        if (!r.value) continue;
        const decoded = decodeSingleObject(r.value);
        if (decoded.ok) seen.push(now - decoded.value.measurement_time, decoded.value.measurement_time);
      }
    });
    // The load runs a warm-up first at the same rate: the consumer's group joins and catches up, and the
    // gateway's code is compiled, before the readings that count are published.
    const total = LATENCY_RATE * (LATENCY_WARMUP_SECONDS + LATENCY_SECONDS);
    const devices = Math.min(MEMORY_DEVICES, Math.max(10, Math.round(LATENCY_RATE / 10)));
    const before = await g.sample();
    const load = startLoad({
      url: g.mqttUrl,
      devices,
      prefix: 'L',
      total,
      ratePerSecond: LATENCY_RATE,
      inFlightPerDevice: 10,
      startTimeMs: 0,
      intervalMs: 0,
      wallClockTimes: true,
      connectSpreadMs: 1000,
      lean: LOAD === 'lean',
    });
    const result = await load.done;
    await load.close();
    await waitFor(() => seen.length / 2 >= total, 120_000, 'the consumer to see every reading', 100);
    const after = await g.sample();
    let loadStartMs = Infinity;
    for (let i = 1; i < seen.length; i += 2) loadStartMs = Math.min(loadStartMs, seen[i]!);
    const measuredFromMs = loadStartMs + LATENCY_WARMUP_SECONDS * 1000;
    const lat: number[] = [];
    const warmup: number[] = [];
    const perSecond: number[][] = [];
    for (let i = 0; i < seen.length; i += 2) {
      const publishedMs = seen[i + 1]!;
      if (publishedMs < measuredFromMs) warmup.push(seen[i]!);
      else {
        lat.push(seen[i]!);
        (perSecond[Math.floor((publishedMs - measuredFromMs) / 1000)] ??= []).push(seen[i]!);
      }
    }
    lat.sort((a, b) => a - b);
    warmup.sort((a, b) => a - b);
    const cpuMicros = after.cpuUserMicros + after.cpuSystemMicros - before.cpuUserMicros - before.cpuSystemMicros;
    const out = {
      offeredPerSecond: LATENCY_RATE,
      achievedAckPerSecond: result.ackRatePerSecond,
      readings: total,
      warmupSeconds: LATENCY_WARMUP_SECONDS,
      measured: lat.length,
      publishToCommittedP50Ms: quantile(lat, 0.5),
      publishToCommittedP99Ms: quantile(lat, 0.99),
      publishToCommittedMaxMs: lat.length > 0 ? lat[lat.length - 1]! : 0,
      warmupPublishToCommittedP99Ms: quantile(warmup, 0.99),
      publishToAckP50Ms: result.ackP50Ms,
      publishToAckP99Ms: result.ackP99Ms,
      gatewayCpuMicrosPerReading: round(cpuMicros / total, 2),
      gatewayCpuCores: round(cpuMicros / 1000 / result.elapsedMs, 2),
      // The tail second by second: one slow moment shows as one slow second.
      publishToCommittedP99MsPerSecond: perSecond.map((v) => quantile(v.sort((a, b) => a - b), 0.99)),
      publishToAckP99MsPerSecond: result.ackP99MsPerSecond ?? [],
    };
    log(`latency ${JSON.stringify(out)}`);
    return out;
  } finally {
    await consumer.close();
    await g.close();
  }
}

async function memory(broker: KafkaBroker): Promise<Record<string, number>> {
  const g = await startGatewayChild(broker, 'memory');
  try {
    const idle = await g.sample();
    const seconds = 15;
    const load = startLoad({
      url: g.mqttUrl,
      devices: MEMORY_DEVICES,
      prefix: 'M',
      total: MEMORY_DEVICES * seconds,
      ratePerSecond: MEMORY_DEVICES,
      inFlightPerDevice: 2,
      startTimeMs: 0,
      intervalMs: 0,
      wallClockTimes: true,
      connectSpreadMs: 10_000,
    });
    await load.connected;
    await waitFor(async () => (await g.sample()).mqttClients >= MEMORY_DEVICES, 60_000, 'every device to connect', 200);
    const connected = await g.sample();
    let peak = connected.rssBytes;
    let peakHeap = connected.heapUsedBytes;
    let running = true;
    load.done.then(
      () => (running = false),
      () => (running = false),
    );
    while (running) {
      const s = await g.sample();
      peak = Math.max(peak, s.rssBytes);
      peakHeap = Math.max(peakHeap, s.heapUsedBytes);
      await new Promise((r) => setTimeout(r, 250));
    }
    const result = await load.done;
    const end = await g.sample();
    await load.close();
    const out = {
      devices: MEMORY_DEVICES,
      readingsPerSecond: MEMORY_DEVICES,
      rssIdleMb: round(idle.rssBytes / MB, 1),
      rssConnectedMb: round(connected.rssBytes / MB, 1),
      rssPeakMb: round(peak / MB, 1),
      heapUsedPeakMb: round(peakHeap / MB, 1),
      rssEndMb: round(end.rssBytes / MB, 1),
      perDeviceKb: round(((connected.rssBytes - idle.rssBytes) / 1024 / MEMORY_DEVICES) * 1, 1),
      // At a ship's pace rather than flat out: what the heap settings cost where they matter.
      gatewayCpuMicrosPerReading: round((end.cpuUserMicros + end.cpuSystemMicros - connected.cpuUserMicros - connected.cpuSystemMicros) / Math.max(1, end.accepted - connected.accepted), 2),
      publishErrors: result.errors,
    };
    log(`memory ${JSON.stringify(out)}`);
    return out;
  } finally {
    await g.close();
  }
}

/** Clock ticks a second in /proc's CPU times. */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** A process's CPU time so far (user + system), µs, from /proc; undefined where there is none. */
function processCpuMicros(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : statCpuMicros(`/proc/${pid}/stat`);
}

/** User and system CPU time in a /proc stat file (of a process or of one of its threads), µs. */
function statCpuMicros(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

/** The whole machine's CPU time so far, busy and in all, in clock ticks (all cores); undefined without /proc. */
function machineCpuTicks(): { busy: number; total: number } | undefined {
  if (!existsSync('/proc/stat')) return undefined;
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  // idle and iowait
  return { busy: total - ticks[3]! - (ticks[4] ?? 0), total };
}

function fileBytes(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/** Bytes of the topic's log segments on the broker: records as Kafka stores them, batches compressed. */
function topicLogBytes(broker: KafkaBroker, topic: string): number {
  const logDir = join(broker.dataDir, 'log');
  let total = 0;
  for (const entry of readdirSync(logDir)) {
    if (!entry.startsWith(`${topic}-`)) continue;
    for (const file of readdirSync(join(logDir, entry))) if (file.endsWith('.log')) total += fileBytes(join(logDir, entry, file));
  }
  return total;
}

async function drain(broker: KafkaBroker): Promise<Record<string, number>> {
  const g = await startGatewayChild(broker, 'drain');
  try {
    await broker.stop();
    await waitFor(async () => (await g.sample()).uplink === 'down', 60_000, 'the uplink to notice the outage', 200).catch(() => undefined);
    const load = startLoad(flatJob(g.mqttUrl, 'D', READINGS, Date.now() - 20 * 86_400_000));
    await load.connected;
    const ingestMainBefore = g.mainThreadCpuMicros();
    const buffering = await load.done;
    const ingestMainAfter = g.mainThreadCpuMicros();
    await load.close();
    const backlog = await g.sample();
    const dbPath = join(g.dataDir, 'outbox.db');
    const withWal = fileBytes(dbPath) + fileBytes(`${dbPath}-wal`);
    // A second connection checkpoints the log into the database, so the file holds what the rows take.
    const reader = openOutbox({ path: dbPath, sync: 'normal' });
    reader.checkpoint();
    reader.close();
    const checkpointed = fileBytes(dbPath) + fileBytes(`${dbPath}-wal`);
    const topicBefore = topicLogBytes(broker, g.topic);
    await broker.start();
    await waitFor(async () => (await g.sample()).sent > backlog.sent, 120_000, 'the first batch after the outage', 20);
    const first = await g.sample();
    const drainMainBefore = g.mainThreadCpuMicros();
    const started = performance.now();
    let last = first;
    let peakRss = first.rssBytes;
    await waitFor(
      async () => {
        last = await g.sample();
        peakRss = Math.max(peakRss, last.rssBytes);
        return last.outboxCount === 0;
      },
      600_000,
      'the backlog to drain',
      50,
    );
    const drainMs = performance.now() - started;
    const drainMainAfter = g.mainThreadCpuMicros();
    const drained = last.sent - first.sent;
    const cpuMicros = last.cpuUserMicros + last.cpuSystemMicros - first.cpuUserMicros - first.cpuSystemMicros;
    const out = {
      backlogReadings: backlog.outboxCount,
      ingestWhileKafkaDownAckPerSecond: buffering.ackRatePerSecond,
      outboxBytesPerReading: round(checkpointed / backlog.outboxCount, 1),
      outboxBytesPerReadingWithWal: round(withWal / backlog.outboxCount, 1),
      drainPerSecond: round(drained / (drainMs / 1000)),
      drainCpuMicrosPerReading: round(cpuMicros / Math.max(1, drained), 2),
      // What the two halves of the pipeline cost the main thread each, alone: taking readings in, and sending them on.
      ...(ingestMainBefore !== undefined && ingestMainAfter !== undefined
        ? { ingestMainThreadCpuMicrosPerReading: round((ingestMainAfter - ingestMainBefore) / READINGS, 2) }
        : {}),
      ...(drainMainBefore !== undefined && drainMainAfter !== undefined
        ? { drainMainThreadCpuMicrosPerReading: round((drainMainAfter - drainMainBefore) / Math.max(1, drained), 2) }
        : {}),
      uplinkBytesPerReading: round((topicLogBytes(broker, g.topic) - topicBefore) / backlog.outboxCount, 1),
      gatewayRssBeforeMb: round(backlog.rssBytes / MB, 1),
      gatewayPeakRssMb: round(peakRss / MB, 1),
    };
    log(`drain ${JSON.stringify(out)}`);
    return out;
  } finally {
    await g.close();
  }
}

async function main(): Promise<void> {
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    kafka: KAFKA_VERSION,
    loadAverageAtStart: loadavg().map((l) => round(l, 2)),
    devices: LOAD_NAME,
  };
  log(`machine ${JSON.stringify(machine)}`);
  const broker = await startKafkaBroker({ heapMb: 1024 });
  // Stopped from outside (kill, a CI timeout): leave no broker, gateway or load generator behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the children and the broker`);
      for (const c of children) c.kill('SIGKILL');
      void broker.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  const results: Record<string, unknown> = { machine, readings: READINGS, gatewayConfig: GATEWAY_OVERRIDES, gatewayFlags: GATEWAY_FLAGS, fsyncDelayMs: FSYNC_DELAY_MS };
  const startedMs = Date.now();
  try {
    if (only.has('stages')) results.stages = await stages(broker);
    if (only.has('e2e')) results.e2e = await e2e(broker);
    if (only.has('latency')) results.latency = await latency(broker);
    if (only.has('memory')) results.memory = await memory(broker);
    if (only.has('drain')) results.drain = await drain(broker);
  } finally {
    await broker.close();
  }
  const stageRates = results.stages as Record<string, number> | undefined;
  const e2eRates = results.e2e as Record<string, number> | undefined;
  if (stageRates && e2eRates) {
    const limits: [string, number][] = [
      ['mqttQos1PerSecond', stageRates.mqttQos1PerSecond!],
      ['decodeValidatePerSecond', stageRates.decodeValidatePerSecond!],
      ['storedEncodePerSecond', stageRates.storedEncodePerSecond!],
      ['storedToAvroPerSecond', stageRates.storedToAvroPerSecond!],
      ['outboxInsertPerSecond', stageRates.outboxInsertPerSecond!],
      ['kafkaTransactionalPerSecond', stageRates.kafkaTransactionalPerSecond!],
    ];
    const [slowest, rate] = limits.reduce((a, b) => (b[1] < a[1] ? b : a));
    // The gateway is one thread: every reading passes every stage on the same core, so the stages'
    // costs add up. This is the rate one core would reach doing nothing but the stages, back to back.
    // The MQTT stage's rate is held by its devices (they spend more CPU a reading than the listener),
    // so the listener counts here with its own CPU time a reading.
    const gatewaySide = limits.map(([name, r]): [string, number] => (name === 'mqttQos1PerSecond' ? [name, 1e6 / stageRates.mqttListenerCpuMicrosPerReading!] : [name, r]));
    const serialBound = 1 / gatewaySide.reduce((sum, [, r]) => sum + 1 / r, 0);
    results.efficiency = {
      slowestStage: slowest,
      slowestStagePerSecond: rate,
      endToEndPerSecond: e2eRates.endToEndPerSecond,
      ratio: round(e2eRates.endToEndPerSecond! / rate, 2),
      stagesInSeriesPerSecond: round(serialBound),
      ratioToStagesInSeries: round(e2eRates.endToEndPerSecond! / serialBound, 2),
    };
  }
  results.loadAverageAtEnd = loadavg().map((l) => round(l, 2));
  results.seconds = round((Date.now() - startedMs) / 1000);
  mkdirSync(resolve(OUT, '..'), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  printTable(results);
  process.stdout.write(`wrote ${OUT}\n`);
}

function printTable(results: Record<string, unknown>): void {
  const rows: [string, unknown, string][] = [];
  const add = (section: string, name: string, unit: string) => {
    const s = results[section] as Record<string, unknown> | undefined;
    if (s && s[name] !== undefined) rows.push([`${section}.${name}`, s[name], unit]);
  };
  add('e2e', 'endToEndPerSecond', 'readings/s, MQTT QoS 1 → outbox → Kafka committed');
  add('e2e', 'ingestAckPerSecond', 'PUBACKs/s during the run');
  add('e2e', 'gatewayCpuMicrosPerReading', 'µs of gateway CPU per reading');
  add('e2e', 'gatewayMainThreadCpuMicrosPerReading', 'µs of it on the main thread (the event loop)');
  add('e2e', 'gatewayMainThreadBusyPercent', '% of the run the main thread was on a core');
  add('e2e', 'gatewayPeakRssMb', 'MB');
  add('e2e', 'loadCpuMicrosPerReading', `µs of the devices' CPU per reading (${LOAD_NAME}, QoS 1)`);
  add('e2e', 'brokerCpuMicrosPerReading', 'µs of the Kafka broker\'s CPU per reading');
  add('e2e', 'machineBusyPercent', '% of all cores busy during the run');
  add('e2e', 'cpuBoundPerSecond', 'readings/s the cores allow at the three processes\' CPU per reading');
  add('e2e', 'shareOfCpuBound', 'end-to-end ÷ that bound');
  add('latency', 'publishToCommittedP50Ms', `ms at ${String((results.latency as Record<string, unknown> | undefined)?.offeredPerSecond)}/s, publish → visible read_committed`);
  add('latency', 'publishToCommittedP99Ms', 'ms');
  add('latency', 'warmupPublishToCommittedP99Ms', 'ms, in the warm-up before (not counted above)');
  add('latency', 'publishToAckP50Ms', 'ms, publish → PUBACK');
  add('latency', 'publishToAckP99Ms', 'ms');
  add('latency', 'gatewayCpuMicrosPerReading', 'µs of gateway CPU per reading');
  add('drain', 'drainPerSecond', 'readings/s after an outage');
  add('drain', 'ingestWhileKafkaDownAckPerSecond', 'PUBACKs/s, Kafka down');
  add('drain', 'ingestMainThreadCpuMicrosPerReading', 'µs of the main thread per reading taken in, Kafka down');
  add('drain', 'drainMainThreadCpuMicrosPerReading', 'µs of the main thread per reading drained');
  add('drain', 'outboxBytesPerReading', 'B on disk per reading (checkpointed)');
  add('drain', 'outboxBytesPerReadingWithWal', 'B on disk per reading (db + WAL)');
  add('drain', 'uplinkBytesPerReading', 'B per reading in Kafka log segments (compressed)');
  add('drain', 'gatewayPeakRssMb', 'MB gateway RSS at the peak of the drain');
  add('memory', 'rssConnectedMb', `MB RSS, ${MEMORY_DEVICES} devices connected`);
  add('memory', 'rssPeakMb', `MB RSS peak, ${MEMORY_DEVICES} devices publishing`);
  add('stages', 'mqttQos1PerSecond', 'stage alone: MQTT listener QoS 1, no-op sink');
  add('stages', 'mqttListenerCpuMicrosPerReading', 'µs of the listener\'s CPU per reading in that stage');
  add('stages', 'mqttDevicesCpuMicrosPerReading', 'µs of the devices\' CPU per reading in that stage');
  add('stages', 'decodeValidatePerSecond', 'stage alone: JSON decode + validate');
  add('stages', 'avroEncodePerSecond', 'stage alone: Avro encode (avsc)');
  add('stages', 'storedEncodePerSecond', 'stage alone: reading → stored form');
  add('stages', 'storedToAvroPerSecond', 'stage alone: stored form → Avro body');
  add('stages', 'outboxInsertPerSecond', 'stage alone: outbox batched insert, fsync per batch');
  add('stages', 'kafkaTransactionalPerSecond', 'stage alone: Kafka transactional producer');
  add('stages', 'kafkaIdempotentPerSecond', 'stage alone: Kafka idempotent producer');
  add('efficiency', 'ratio', `end-to-end ÷ slowest stage (${String((results.efficiency as Record<string, unknown> | undefined)?.slowestStage)})`);
  add('efficiency', 'stagesInSeriesPerSecond', 'readings/s one core reaches running every stage in turn');
  add('efficiency', 'ratioToStagesInSeries', 'end-to-end ÷ stages in series');
  for (const [name, value, unit] of rows) process.stdout.write(`${name.padEnd(44)} ${String(value).padStart(10)}  ${unit}\n`);
  process.stdout.write(`load average at start ${JSON.stringify((results.machine as { loadAverageAtStart: number[] }).loadAverageAtStart)}, at end ${JSON.stringify(results.loadAverageAtEnd)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
