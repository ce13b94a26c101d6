/**
 * The benchmark's MQTT load generator, in a process of its own (forked by bench.ts), so the devices'
 * CPU and memory are not counted against the gateway.
 *
 * Receives one `{ type: 'run', job }` over the fork IPC channel: connects `devices` MQTT 3.1.1 clients
 * (MQTT.js, or the lean publisher of lean-mqtt-device.ts), reports `{ type: 'connected' }`, publishes
 * canonical-JSON readings at QoS 1 (flat out with up to `inFlightPerDevice` unacknowledged per device,
 * or paced at `ratePerSecond` across the fleet), and answers `{ type: 'done', result }` with the
 * publish → PUBACK latencies. Then it waits for `{ type: 'close' }` to disconnect, so devices can stay
 * connected while the gateway is sampled.
 */
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { connectLeanDevice, type LeanDevice } from './lean-mqtt-device.js';

export interface LoadJob {
  url: string;
  devices: number;
  /** Container ids are this prefix and the device number; one prefix per job keeps jobs apart. */
  prefix: string;
  /** Readings across the fleet; the job ends once all are acknowledged. */
  total: number;
  /** Readings per second across the fleet; 0 publishes as fast as acknowledgements allow. */
  ratePerSecond: number;
  inFlightPerDevice: number;
  /**
   * Measurement time of a device's first reading and the step between its readings; with
   * `wallClockTimes`, each reading carries the time it was published instead (for end-to-end latency).
   */
  startTimeMs: number;
  intervalMs: number;
  wallClockTimes: boolean;
  /** Devices connect spread over this window. */
  connectSpreadMs: number;
  /** Devices speak through the lean publisher (lean-mqtt-device.ts) instead of MQTT.js. */
  lean?: boolean;
}

export interface LoadResult {
  sent: number;
  errors: number;
  connectMs: number;
  /** From the first publish to the last PUBACK. */
  elapsedMs: number;
  ackRatePerSecond: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
  /** CPU time (user + system) of the load generator from the first publish to the last PUBACK, µs. */
  cpuMicros: number;
  /** Paced jobs: the p99 publish → PUBACK of the readings published in each second. */
  ackP99MsPerSecond?: number[];
}

/** Value at quantile q of sorted samples. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Device {
  connection: LeanDevice;
  topic: string;
  head: string;
  nextTimeMs: number;
  inFlight: number;
}

/** The reference reading as canonical JSON, everything but the measurement time fixed per device. */
function deviceHead(containerId: string): string {
  return `{"container_id":"${containerId}","product_id":"P05","target_temperature":5,"ambient_temperature":20.5,"kilowatts":2.6,"time_door_open":0,"content_type":1,"defrost_cycle":5,"oxygen_level":21.5,"nitrogen_level":75.9,"humidity_level":39.8,"carbon_dioxide_level":4.7,"fan_1":true,"fan_2":true,"fan_3":true,"latitude":37.82,"longitude":-122.32,"maintenance_required":0,`;
}

let devices: Device[] = [];

async function run(job: LoadJob): Promise<LoadResult> {
  const connectStart = performance.now();
  const spreadMs = job.devices > 1 ? job.connectSpreadMs / job.devices : 0;
  const connecting: Promise<Device>[] = [];
  for (let i = 0; i < job.devices; i++) {
    const containerId = `${job.prefix}${String(i).padStart(4, '0')}`;
    connecting.push(
      (job.lean
        ? connectLeanDevice(job.url, `bench-${containerId}`, 30_000)
        : connectDevice({ url: job.url, clientId: `bench-${containerId}`, qos: 1, connectTimeoutMs: 30_000, reconnectPeriodMs: 0 })
      ).then((connection) => ({
        connection,
        topic: `reefer/${containerId}/telemetry`,
        head: deviceHead(containerId),
        nextTimeMs: job.startTimeMs,
        inFlight: 0,
      })),
    );
    if (spreadMs > 0) await new Promise((resolve) => setTimeout(resolve, spreadMs));
  }
  devices = await Promise.all(connecting);
  const connectMs = performance.now() - connectStart;
  process.send?.({ type: 'connected' });

  const latencies = new Float64Array(job.total);
  let issued = 0;
  let acked = 0;
  let errors = 0;
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  function publishOne(device: Device): void {
    let timeMs: number;
    if (job.wallClockTimes) {
      timeMs = Math.max(Date.now(), device.nextTimeMs);
      device.nextTimeMs = timeMs + 1;
    } else {
      timeMs = device.nextTimeMs;
      device.nextTimeMs += job.intervalMs;
    }
    const temperature = (5 + ((issued % 7) - 3) / 10).toFixed(2);
    const payload = Buffer.from(`${device.head}"measurement_time":${timeMs},"temperature":${temperature}}`);
    const index = issued++;
    device.inFlight += 1;
    const t0 = performance.now();
    device.connection.publish(device.topic, payload).then(
      () => {
        latencies[index] = performance.now() - t0;
        settle(device);
      },
      () => {
        errors += 1;
        latencies[index] = Number.NaN;
        settle(device);
      },
    );
  }

  function settle(device: Device): void {
    device.inFlight -= 1;
    acked += 1;
    if (acked === job.total) finish();
    else if (job.ratePerSecond === 0 && issued < job.total) publishOne(device);
  }

  if (job.ratePerSecond === 0) {
    for (let k = 0; k < job.inFlightPerDevice; k++) for (const device of devices) if (issued < job.total) publishOne(device);
  } else {
    // Paced: every tick, publish what is due, round robin over the devices with room in flight.
    let cursor = 0;
    const tick = setInterval(() => {
      const due = Math.min(job.total, Math.floor(((performance.now() - started) / 1000) * job.ratePerSecond));
      let tries = 0;
      while (issued < due && tries < devices.length) {
        const device = devices[cursor]!;
        cursor = (cursor + 1) % devices.length;
        if (device.inFlight < job.inFlightPerDevice) {
          publishOne(device);
          tries = 0;
        } else tries += 1;
      }
      if (issued >= job.total) clearInterval(tick);
    }, 5);
  }
  if (job.total > 0) await finished;
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuAtStart);
  const ok = Array.from(latencies).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return {
    sent: job.total - errors,
    errors,
    connectMs: Math.round(connectMs),
    elapsedMs: Math.round(elapsedMs),
    ackRatePerSecond: Math.round(job.total / (elapsedMs / 1000)),
    ackP50Ms: round(quantile(ok, 0.5)),
    ackP99Ms: round(quantile(ok, 0.99)),
    ackMaxMs: round(ok.length > 0 ? ok[ok.length - 1]! : 0),
    cpuMicros: cpu.user + cpu.system,
    ...(job.ratePerSecond > 0 ? { ackP99MsPerSecond: perSecondP99(latencies, job.ratePerSecond) } : {}),
  };
}

/** A paced job publishes reading i at about i / rate seconds: the p99 of each second's readings. */
function perSecondP99(latencies: Float64Array, ratePerSecond: number): number[] {
  const out: number[] = [];
  for (let from = 0; from < latencies.length; from += ratePerSecond) {
    const second = Array.from(latencies.subarray(from, from + ratePerSecond)).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
    out.push(round(quantile(second, 0.99)));
  }
  return out;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

process.on('message', (raw: unknown) => {
  const message = raw as { type: 'run'; job: LoadJob } | { type: 'close' };
  if (message.type === 'run') {
    run(message.job).then(
      (result) => process.send?.({ type: 'done', result }),
      (error: unknown) => process.send?.({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
    );
  } else if (message.type === 'close') {
    void Promise.all(devices.map((d) => d.connection.close().catch(() => undefined))).then(() => {
      process.send?.({ type: 'closed' });
      process.exit(0);
    });
  }
});
