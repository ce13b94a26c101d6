/**
 * A real single-node Apache Kafka broker (KRaft, broker and controller in one JVM) for tests and the
 * demo. The broker and its dependencies are resolved from Maven Central with `mvn` into a cache
 * folder once; each broker gets its own data folder and loopback ports, and is stopped with nothing
 * left running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import { freePort } from './free-port.js';
import { createTestCertificates, toPkcs12 } from './test-certs.js';

/** The newest Apache Kafka release that kafkajs 2.2.4 works with (see README, "Kafka version"). */
export const KAFKA_VERSION = '4.4.0';

const here = dirname(fileURLToPath(import.meta.url));
/** The pom sits beside the TypeScript source; compiled code runs from dist/test/harness. */
function pomPath(): string {
  const candidates = [join(here, 'kafka-pom.xml'), resolve(here, '../../../test/harness/kafka-pom.xml')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`kafka-pom.xml not found near ${here}`);
  return found;
}

function cacheRoot(): string {
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'reefer-edge', 'kafka');
}

/** Resolves the broker's jars into the cache (once per version) and returns their folder. */
export function resolveKafka(version: string = KAFKA_VERSION): string {
  const libs = join(cacheRoot(), version, 'libs');
  if (existsSync(join(libs, `kafka_2.13-${version}.jar`))) return libs;
  mkdirSync(dirname(libs), { recursive: true });
  // Copy into a fresh folder and rename it into place, so an interrupted copy never looks complete.
  const staging = mkdtempSync(join(dirname(libs), 'staging-'));
  const result = spawnSync(
    'mvn',
    ['-q', '-B', '-f', pomPath(), 'dependency:copy-dependencies', `-Dkafka.version=${version}`, `-DoutputDirectory=${staging}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (result.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`mvn could not resolve Kafka ${version}: ${result.error?.message ?? ''}\n${result.stdout}\n${result.stderr}`);
  }
  rmSync(libs, { recursive: true, force: true });
  renameSync(staging, libs);
  return libs;
}

export interface KafkaBrokerOptions {
  version?: string;
  /** Folder for the broker's log segments and its server log; a temp folder when absent. */
  dataDir?: string;
  heapMb?: number;
  /** Default partition count for topics created without one. */
  partitions?: number;
  startTimeoutMs?: number;
  /**
   * Also listen with SASL_SSL (SCRAM-SHA-512, a certificate from a throwaway CA) and create these
   * users. The plaintext listener stays, for the broker's own traffic and for test readers.
   */
  saslSsl?: { users: readonly { name: string; password: string }[] };
}

export interface KafkaBroker {
  /** `127.0.0.1:<port>`, the bootstrap address clients use. */
  readonly bootstrap: string;
  /** `127.0.0.1:<port>` of the SASL_SSL listener, when `saslSsl` was asked for. */
  readonly saslSslBootstrap?: string;
  /** PEM file of the CA that signed the broker's certificate, when `saslSsl` was asked for. */
  readonly caFile?: string;
  readonly dataDir: string;
  /** Starts the broker again after `stop()`, on the same ports with the same data. */
  start(): Promise<void>;
  /** Stops the broker cleanly (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** Freezes the JVM (SIGSTOP): connections stay open but nothing answers. */
  freeze(): void;
  resume(): void;
  /** Stops the broker and removes its temp data folder if the harness made it. */
  close(): Promise<void>;
  /** The JVM's process id while it runs. */
  pid(): number | undefined;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const attempt = () => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolvePromise();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`Kafka did not listen on ${port} in time`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

export async function startKafkaBroker(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
  const version = options.version ?? KAFKA_VERSION;
  const libs = resolveKafka(version);
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'reefer-kafka-'));
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const controllerPort = await freePort();
  const logDir = join(dataDir, 'log');
  const configPath = join(dataDir, 'server.properties');
  const secure = options.saslSsl ? await saslSslSettings(dataDir, options.saslSsl.users) : undefined;
  writeFileSync(
    configPath,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}${secure ? `,SASL_SSL://127.0.0.1:${secure.port}` : ''}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}${secure ? `,SASL_SSL://127.0.0.1:${secure.port}` : ''}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      `listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${secure ? ',SASL_SSL:SASL_SSL' : ''}`,
      ...(secure?.properties ?? []),
      `log.dirs=${logDir}`,
      `num.partitions=${options.partitions ?? 3}`,
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=3',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=true',
      'log.flush.interval.messages=9223372036854775807',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dataDir, 'log4j2.properties'),
    [
      'rootLogger.level=INFO',
      'rootLogger.appenderRef.file.ref=file',
      'appender.file.type=File',
      'appender.file.name=file',
      `appender.file.fileName=${join(dataDir, 'server.log')}`,
      'appender.file.layout.type=PatternLayout',
      'appender.file.layout.pattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  );
  const classpath = `${libs}/*`;
  const jvm = [`-Xmx${options.heapMb ?? 512}m`, '-Xms64m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', `-Dlog4j2.configurationFile=${join(dataDir, 'log4j2.properties')}`];
  const format = spawnSync('java', [...jvm, '-cp', classpath, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId()}`, '-c', configPath, ...(secure?.formatArgs ?? [])], {
    encoding: 'utf8',
  });
  if (format.status !== 0) throw new Error(`Kafka storage format failed:\n${format.stdout}\n${format.stderr}`);

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    if (child) return;
    const out = openSync(join(dataDir, 'stdout.log'), 'a');
    const proc = spawn('java', [...jvm, '-cp', classpath, 'kafka.Kafka', configPath], { stdio: ['ignore', out, out] });
    closeSync(out);
    child = proc;
    running.add(proc);
    exited = new Promise((resolveExit) => proc.once('exit', () => resolveExit()));
    void exited.then(() => {
      running.delete(proc);
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + (options.startTimeoutMs ?? 60000);
    await Promise.race([
      Promise.all([waitForPort(port, deadline), ...(secure ? [waitForPort(secure.port, deadline)] : [])]),
      exited.then(() => {
        throw new Error(`Kafka exited during start; see ${join(dataDir, 'server.log')}`);
      }),
    ]);
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGCONT');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(timer);
  }

  await start();
  return {
    bootstrap: `127.0.0.1:${port}`,
    ...(secure ? { saslSslBootstrap: `127.0.0.1:${secure.port}`, caFile: secure.caFile } : {}),
    dataDir,
    start,
    stop,
    freeze() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    pid: () => child?.pid,
    async close() {
      await stop();
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A SASL_SSL listener: a certificate for 127.0.0.1 in a PKCS#12 keystore, SCRAM-SHA-512 only, and the
 * users' SCRAM credentials written into the metadata log when the storage is formatted (KRaft has
 * no ZooKeeper to add them to later).
 */
async function saslSslSettings(dataDir: string, users: readonly { name: string; password: string }[]) {
  for (const user of users) {
    // The storage tool's --add-scram syntax has no escaping to speak of; tests need no more than this.
    if (!/^[A-Za-z0-9._-]+$/.test(user.name) || !/^[A-Za-z0-9._-]+$/.test(user.password)) {
      throw new Error(`SCRAM user ${JSON.stringify(user.name)}: expected a name and password of letters, digits, dot, underscore or dash`);
    }
  }
  const tlsDir = join(dataDir, 'tls');
  const certificates = createTestCertificates(tlsDir);
  const keystore = join(tlsDir, 'broker.p12');
  const storePassword = randomUUID().replace(/-/g, '');
  toPkcs12(certificates.server, certificates.caFile, keystore, storePassword);
  const listener = 'listener.name.sasl_ssl';
  return {
    port: await freePort(),
    caFile: certificates.caFile,
    properties: [
      'sasl.enabled.mechanisms=SCRAM-SHA-512',
      `${listener}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
      `${listener}.ssl.keystore.type=PKCS12`,
      `${listener}.ssl.keystore.location=${keystore}`,
      `${listener}.ssl.keystore.password=${storePassword}`,
      `${listener}.ssl.key.password=${storePassword}`,
      `${listener}.ssl.client.auth=none`,
    ],
    formatArgs: users.flatMap((user) => ['--add-scram', `SCRAM-SHA-512=[name=${user.name},password=${user.password}]`]),
  };
}

/** A KRaft cluster id: 16 random bytes in URL-safe base64 without padding. */
function clusterId(): string {
  // An id starting with '-' would be read as an option by the storage tool.
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Lists the jars of the cached broker (for diagnostics). */
export function cachedKafkaJars(version: string = KAFKA_VERSION): string[] {
  const libs = join(cacheRoot(), version, 'libs');
  return existsSync(libs) ? readdirSync(libs) : [];
}
