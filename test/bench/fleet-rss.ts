/**
 * How much memory a large simulated fleet takes: N devices, one MQTT.js client each, against a local
 * aedes broker that runs in a child process (so its sockets and memory are not counted here).
 *
 *   npx tsc -p tsconfig.json && node dist/test/bench/fleet-rss.js [devices=10000] [seconds=60] [rate=2000] [qos=1]
 *
 * (or `npx tsx test/bench/fleet-rss.ts …` from source, which costs some more memory: tsx gives every
 * function a `name` property of its own).
 * Prints the simulator's resident set size before the fleet, once every device is connected, and at
 * its peak, one JSON line each. Not a test: it takes a minute and its figures depend on the machine.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { createFleet } from '../../device-sim/fleet.js';
import type { Qos } from '../../device-sim/mqtt-transport.js';

const MB = 1024 * 1024;

async function runBroker(): Promise<void> {
  const broker = await Aedes.createBroker();
  let published = 0;
  broker.on('publish', (_packet, client) => {
    if (client) published += 1;
  });
  const server = createServer((socket) => broker.handle(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  setInterval(() => process.stderr.write(`broker: ${broker.connectedClients} clients, ${published} publishes\n`), 10_000).unref();
  process.on('SIGTERM', () => process.exit(0));
}

async function runFleet(devices: number, seconds: number, rate: number, qos: Qos): Promise<void> {
  // The same loader flags as this process (tsx from source, none when built).
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'broker'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });

  const rssMb = (): number => Math.round((process.memoryUsage().rss / MB) * 10) / 10;
  const report = (what: string, extra: Record<string, unknown> = {}): void => {
    const m = process.memoryUsage();
    process.stdout.write(
      `${JSON.stringify({ what, devices, rssMb: rssMb(), heapUsedMb: Math.round((m.heapUsed / MB) * 10) / 10, ...extra })}\n`,
    );
  };

  report('before fleet');
  const fleet = createFleet({
    mqttUrl: `mqtt://127.0.0.1:${port}`,
    devices,
    ratePerSecond: rate,
    durationMs: seconds * 1000,
    seed: 1,
    qos,
    form: 'canonical-json',
    connectAttempts: 10,
  });
  const running = fleet.run();
  let peakRssMb = rssMb();
  let allConnectedReported = false;
  const sampler = setInterval(() => {
    peakRssMb = Math.max(peakRssMb, rssMb());
    const p = fleet.progress();
    process.stderr.write(`fleet: ${p.connected}/${devices} connected, ${p.sent} sent, ${p.errors} errors, rss ${rssMb()} MB\n`);
    if (!allConnectedReported && p.connected === devices) {
      allConnectedReported = true;
      report('all connected', { elapsedMs: p.elapsedMs, sent: p.sent });
    }
  }, 1000);
  const summary = await running;
  clearInterval(sampler);
  report('end', { peakRssMb, perDeviceKb: Math.round(((peakRssMb * 1024) / devices) * 10) / 10, summary });
  child.kill('SIGTERM');
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'broker') {
  await runBroker();
} else {
  const [devices, seconds, rate, qos] = [mode, ...rest].map((v) => (v === undefined ? undefined : Number(v)));
  await runFleet(devices ?? 10_000, seconds ?? 60, rate ?? 2000, (qos ?? 1) as Qos);
}
