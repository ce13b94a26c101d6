/**
 * A real schema registry for tests: Apicurio Registry, whose `/apis/ccompat/v7` serves the
 * Confluent Schema Registry API. Maven Central publishes it as a ready-built Quarkus application
 * (`io.apicurio:apicurio-registry-app:<version>:tar.gz:all`, the `quarkus-app` layout); it is
 * resolved with `mvn` and unpacked into a cache folder once. Each registry gets its own loopback
 * ports and an H2 database file in its own temp folder, and is stopped with nothing left running.
 * Apicurio 3 is built for Java 21, so a JDK of 21 or later is looked for beside the default one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './free-port.js';

export const APICURIO_VERSION = '3.3.3';
const ARTIFACT = 'io.apicurio:apicurio-registry-app';
const MIN_JAVA = 21;

function cacheRoot(): string {
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'reefer-edge', 'apicurio');
}

/** Resolves and unpacks the registry into the cache (once per version); returns the quarkus-app folder. */
export function resolveApicurio(version: string = APICURIO_VERSION): string {
  const app = join(cacheRoot(), version, 'quarkus-app');
  if (existsSync(join(app, 'quarkus-run.jar'))) return app;
  mkdirSync(dirname(app), { recursive: true });
  // Unpack into a fresh folder and rename it into place, so an interrupted unpack never looks complete.
  const staging = mkdtempSync(join(dirname(app), 'staging-'));
  try {
    const copy = spawnSync('mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=${ARTIFACT}:${version}:tar.gz:all`, `-DoutputDirectory=${staging}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (copy.status !== 0) {
      throw new Error(`mvn could not resolve ${ARTIFACT}:${version}:tar.gz:all: ${copy.error?.message ?? ''}\n${copy.stdout}\n${copy.stderr}`);
    }
    const tarball = join(staging, `apicurio-registry-app-${version}-all.tar.gz`);
    const unpacked = join(staging, 'quarkus-app');
    mkdirSync(unpacked);
    const untar = spawnSync('tar', ['-xzf', tarball, '-C', unpacked], { encoding: 'utf8' });
    if (untar.status !== 0) throw new Error(`could not unpack ${tarball}: ${untar.stderr}`);
    if (!existsSync(join(unpacked, 'quarkus-run.jar'))) throw new Error(`${tarball} holds no quarkus-run.jar`);
    rmSync(app, { recursive: true, force: true });
    renameSync(unpacked, app);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return app;
}

/** Major version of a java binary, or undefined if it does not run. */
function javaMajor(java: string): number | undefined {
  const result = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${result.stderr}${result.stdout}`);
  if (!match) return undefined;
  const first = Number(match[1]);
  // Java 8 and older call themselves 1.x.
  return first === 1 ? Number(match[2]) : first;
}

/** A java binary of at least MIN_JAVA: JAVA_HOME's, the one on PATH, or any JDK in /usr/lib/jvm. */
export function findJava(): string {
  const candidates: string[] = [];
  if (process.env.JAVA_HOME) candidates.push(join(process.env.JAVA_HOME, 'bin', 'java'));
  candidates.push('java');
  const jvmRoot = '/usr/lib/jvm';
  if (existsSync(jvmRoot)) {
    for (const dir of readdirSync(jvmRoot).sort().reverse()) candidates.push(join(jvmRoot, dir, 'bin', 'java'));
  }
  const seen: string[] = [];
  for (const java of candidates) {
    const major = javaMajor(java);
    if (major !== undefined && major >= MIN_JAVA) return java;
    seen.push(`${java}: ${major ?? 'does not run'}`);
  }
  throw new Error(`Apicurio Registry ${APICURIO_VERSION} needs Java ${MIN_JAVA} or later; found only ${seen.join(', ')}`);
}

export interface SchemaRegistryServerOptions {
  version?: string;
  heapMb?: number;
  startTimeoutMs?: number;
}

export interface SchemaRegistryServer {
  /** Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:41234/apis/ccompat/v7`. */
  readonly url: string;
  readonly dataDir: string;
  /** Starts the registry again after `stop()`, on the same port with the same schemas and ids. */
  start(): Promise<void>;
  /** Stops the registry (SIGTERM, then SIGKILL after a grace period); its port then refuses connections. */
  stop(): Promise<void>;
  /** Stops the registry and removes its data folder. */
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function waitUntilServing(url: string, deadline: number, alive: () => boolean): Promise<void> {
  while (alive()) {
    try {
      const response = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`the schema registry did not serve ${url}/subjects in time`);
    await delay(100);
  }
}

export async function startSchemaRegistry(options: SchemaRegistryServerOptions = {}): Promise<SchemaRegistryServer> {
  const app = resolveApicurio(options.version);
  const java = findJava();
  const dataDir = mkdtempSync(join(tmpdir(), 'reefer-registry-'));
  const port = await freePort();
  const managementPort = await freePort();
  const url = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  const args = [
    `-Xmx${options.heapMb ?? 384}m`,
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    `-Dquarkus.http.host=127.0.0.1`,
    `-Dquarkus.http.port=${port}`,
    // The health and metrics interface listens on 0.0.0.0:9000 unless told otherwise.
    `-Dquarkus.management.host=127.0.0.1`,
    `-Dquarkus.management.port=${managementPort}`,
    // A database file rather than the default in-memory one, so a restarted registry keeps its ids.
    `-Dapicurio.datasource.url=jdbc:h2:file:${join(dataDir, 'registry')}`,
    '-Dapicurio.datasource.jdbc.initial-size=2',
    '-Dapicurio.datasource.jdbc.min-size=2',
    '-Dquarkus.log.level=WARN',
    '-Dquarkus.log.category."io.apicurio".level=WARN',
    '-jar',
    join(app, 'quarkus-run.jar'),
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    if (child) return;
    const out = openSync(join(dataDir, 'registry.log'), 'a');
    const proc = spawn(java, args, { stdio: ['ignore', out, out], cwd: dataDir });
    closeSync(out);
    child = proc;
    running.add(proc);
    exited = new Promise((resolveExit) => proc.once('exit', () => resolveExit()));
    void exited.then(() => {
      running.delete(proc);
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
    await Promise.race([
      waitUntilServing(url, deadline, () => child === proc),
      exited.then(() => {
        throw new Error(`the schema registry exited during start; see ${join(dataDir, 'registry.log')}`);
      }),
    ]);
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  try {
    await start();
  } catch (err) {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    dataDir,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
