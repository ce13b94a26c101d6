/**
 * The gateway's composition root: builds every adapter from the validated configuration, wires them,
 * and returns one handle to run and stop the whole process.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BridgeLink, BridgeLinkStats } from '../cloud-bridge/bridge-link.js';
import { createConfluentTelemetry, valueSubject } from '../cloud-bridge/confluent-telemetry.js';
import { createKafkaClient } from '../cloud-bridge/kafka-client.js';
import { createSchemaRegistryClient } from '../cloud-bridge/schema-registry.js';
import { frameTelemetryBody, TELEMETRY_WRITER_VERSION } from '../schemas/avro.js';
import { frameConfluent } from '../schemas/confluent-framing.js';
import type { OutboxRow } from './outbox/sqlite-outbox.js';
import { defaultUpstreamClientId, type GatewayConfig } from './config.js';
import type { CommandSource } from './downlink/command-source.js';
import { createDownlink, type DownlinkStats } from './downlink/downlink.js';
import { createKafkaCommandSource } from './downlink/kafka-command-source.js';
import { createMqttListener, type MqttSecurityStatus } from './ingest/mqtt-listener.js';
import type { SerialPortStatus } from './ingest/serial-port.js';
import type { UpstreamStatus } from './ingest/upstream-client.js';
import { createDiskMonitor, type DiskUsage } from './ops/disk-monitor.js';
import { createGatewayStats, type StatsSnapshot } from './ops/gateway-stats.js';
import { createHttpServer } from './ops/http-server.js';
import { createLatestReadings, ONLINE_WINDOW_MS } from './ops/latest-readings.js';
import { createMetrics } from './ops/metrics.js';
import { createOpsApi } from './ops/ops-api.js';
import { createCommitQueue } from './outbox/commit-queue.js';
import { openOutbox, type LedgerEntry, type OutboxDepth, type ShedReport } from './outbox/sqlite-outbox.js';
import { storedTelemetryBody } from './outbox/stored-reading.js';
import { createGapTracker } from './pipeline/gap-tracker.js';
import { createIngest, type Ingest } from './pipeline/ingest.js';
import { createUplink, type UplinkState } from './uplink/kafka-uplink.js';

export interface GatewayStatus {
  uplink: UplinkState;
  mqttClients: number;
  outbox: OutboxDepth;
  deadLetters: number;
  stats: StatsSnapshot;
  /** Every reading dropped, expired, rejected or missing, per container and reason. */
  ledger: LedgerEntry[];
  disk: DiskUsage;
  /** Sequence number up to which the outbox holds backlog being replayed; 0 when none. */
  replayUntilSeq: number;
  /** One entry per configured upstream broker. */
  upstream: UpstreamStatus[];
  /** One entry per configured serial port. */
  serial: SerialPortStatus[];
  /** MQTT connections, publishes and subscriptions refused, by reason (bad password, ACL, limits, …). */
  security: MqttSecurityStatus;
  /** Commands to devices, when commands.enabled. */
  commands?: DownlinkStats;
  /** The bridge link, in uplink mode mqtt: the bridge URL connected to, connections made, batches and their bytes. */
  bridge?: BridgeLinkStats;
}

export interface Gateway {
  /** The MQTT port bound (useful when configured as 0); 0 without a plain listener. */
  mqttPort(): number;
  /** The MQTT TLS port bound; 0 without mqtt.tls. */
  mqttTlsPort(): number;
  /** The HTTP port bound (metrics, health, dashboard); 0 when http.enabled is false. */
  httpPort(): number;
  ingest: Ingest;
  status(): GatewayStatus;
  /** Stops ingest, lets the uplink finish its current batch, and closes the outbox. */
  close(): Promise<void>;
}

/** Bytes of a payload kept with its dead letter. */
const DEAD_LETTER_PAYLOAD_BYTES = 4096;
/** How often readings past their age limit are expired and old dedup entries forgotten. */
const HOUSEKEEPING_INTERVAL_MS = 60_000;
/** Share of the outbox shed at once when the disk is full and the policy is to shed. */
const DISK_FULL_SHED_FRACTION = 0.2;
/** Containers the dashboard remembers the latest reading of: a large ship carries 2,000 reefers. */
const LATEST_READINGS_MAX_CONTAINERS = 5000;
/** How often an open dashboard gets fresh numbers. */
const DASHBOARD_FEED_INTERVAL_MS = 1000;

/** The disk is full: the reading is not stored, so the device is not acknowledged and keeps it. */
export class DiskFullError extends Error {
  readonly code = 'REEFER_DISK_FULL';
  readonly retriable = true;
  constructor(detail: string) {
    super(`outbox disk full: ${detail}`);
    this.name = 'DiskFullError';
  }
}

function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'ENOSPC' || error instanceof DiskFullError;
}

export async function startGateway(config: Readonly<GatewayConfig>, deps: { logger: Logger }): Promise<Gateway> {
  const logger = deps.logger.child({ gatewayId: config.gatewayId });
  // The MQTT client and serial libraries are loaded only when configured: each adds 15–20 MB of
  // memory to a process that may run on a small Raspberry Pi.
  const bridgeModule = config.uplink.mode === 'mqtt' ? await import('../cloud-bridge/bridge-link.js') : undefined;
  const upstreamModule = config.upstream.brokers.length > 0 ? await import('./ingest/upstream-client.js') : undefined;
  const serialModule = config.serial.ports.length > 0 ? await import('./ingest/serial-port.js') : undefined;
  // Read before anything is opened: an unreadable password file fails the start with nothing to close.
  const bridgePassword = bridgeModule && config.uplink.bridge ? bridgeModule.readBridgePassword(config.uplink.bridge) : undefined;
  const stats = createGatewayStats();
  const latest = createLatestReadings({ maxContainers: LATEST_READINGS_MAX_CONTAINERS, lanes: config.lanes });
  const metrics = createMetrics(
    { gatewayId: config.gatewayId, defaultMetrics: true },
    { status: () => status(), containersOnline: () => latest.heardSince(Date.now() - ONLINE_WINDOW_MS), now: Date.now },
  );
  const outbox = openOutbox({ path: join(config.dataDir, 'outbox.db'), sync: config.outbox.sync, maxDeadLetters: config.outbox.maxDeadLetters });
  try {
    outbox.claimGateway(config.gatewayId);
  } catch (err) {
    outbox.close();
    throw err;
  }
  const disk = createDiskMonitor({ path: config.dataDir, sampleIntervalMs: 1000 }, { now: Date.now });
  // Set once the uplink exists: shedding must leave the rows it is sending alone.
  let protectedRanges: () => readonly (readonly [number, number])[] = () => [];
  const shedLog = logger.child({ component: 'outbox' });
  const noShed: ShedReport = { expired: 0, thinned: 0, droppedRoutine: 0, droppedAlarm: 0 };
  function shed(maxBytes: number): ShedReport {
    let report: ShedReport;
    try {
      report = outbox.shed({
        maxBytes,
        maxAgeMs: config.outbox.maxAgeMs,
        keepEvery: config.outbox.thinKeepEvery,
        nowMs: Date.now(),
        protect: protectedRanges(),
      });
    } catch (error) {
      // Shedding writes too; on a full disk it may fail, and ingest must go on regardless.
      shedLog.error({ err: error instanceof Error ? error.message : String(error) }, 'could not shed the outbox');
      return noShed;
    }
    const total = report.expired + report.thinned + report.droppedRoutine + report.droppedAlarm;
    if (total > 0) {
      stats.shed(report);
      shedLog.warn({ ...report, depth: outbox.depth() }, 'outbox over its limits: readings shed and counted in the loss ledger');
    }
    return report;
  }
  const queue = createCommitQueue(
    { flushIntervalMs: config.outbox.flushIntervalMs, maxBatch: config.outbox.maxBatch },
    {
      outbox,
      onAppendError(error, entries) {
        if (!isDiskFull(error)) return false;
        if (config.outbox.onDiskFull === 'shed') {
          // Pages freed inside the database are reused by the retried commit.
          const report = shed(Math.floor(outbox.depth().bytes * (1 - DISK_FULL_SHED_FRACTION)));
          if (report.thinned + report.droppedRoutine + report.droppedAlarm + report.expired > 0) return true;
        }
        stats.refused(entries);
        shedLog.warn({ entries, err: error instanceof Error ? error.message : String(error) }, 'disk full: readings refused, devices not acknowledged');
        return false;
      },
    },
  );
  /** True while new input would be refused for a full disk (admit's rule). */
  function outboxRefusing(): boolean {
    return disk.freeBytes() < config.outbox.minFreeBytes && !(config.outbox.onDiskFull === 'shed' && outbox.depth().count > 0);
  }
  /** Refuses input while the disk is nearly full, before SQLite runs out of room mid-commit. */
  function admit(): void {
    const free = disk.freeBytes();
    if (free >= config.outbox.minFreeBytes) return;
    if (config.outbox.onDiskFull === 'shed' && outbox.depth().count > 0) {
      shed(Math.floor(outbox.depth().bytes * (1 - DISK_FULL_SHED_FRACTION)));
      return;
    }
    stats.refused();
    throw new DiskFullError(`${free} bytes free, below outbox.minFreeBytes ${config.outbox.minFreeBytes}`);
  }
  const ingest = createIngest(
    {
      timeZone: config.site.timeZone,
      maxPayloadBytes: config.mqtt.maxPayloadBytes,
      deadLetterPayloadBytes: DEAD_LETTER_PAYLOAD_BYTES,
      lanes: config.lanes,
    },
    {
      queue,
      stats,
      logger,
      now: Date.now,
      admit,
      gaps: createGapTracker({ toleranceIntervals: 1.5, maxContainers: 100_000 }),
      onAccepted: (reading, accepted) => latest.record(reading, accepted),
    },
  );

  // The kafka section's connection keys are named as the adapter's options.
  const kafka = createKafkaClient({ ...config.kafka, logger });
  const registryConfig = config.kafka.schemaRegistry;
  const registry = registryConfig
    ? createSchemaRegistryClient({ url: registryConfig.url, requestTimeoutMs: registryConfig.requestTimeoutMs }, { cache: outbox.schemaIds(), logger })
    : undefined;
  const confluent = registry
    ? createConfluentTelemetry({ subject: registryConfig?.subject ?? valueSubject(config.kafka.topic) }, { registry })
    : undefined;
  // Stored rows become Avro bodies of the writer version as they are sent; only the framing in front differs.
  let schemaId: number | undefined;
  function frameConfluentRow(row: OutboxRow): Buffer {
    if (schemaId === undefined) throw new Error('framing before the uplink prepared the schema id');
    return frameConfluent(schemaId, storedTelemetryBody(row, config.gatewayId));
  }
  // In uplink mode mqtt the uplink's producer and admin are sessions on the bridge service, which
  // holds the Kafka producer; the exactly-once recovery is the same either way.
  const bridgeConfig = config.uplink.mode === 'mqtt' ? config.uplink.bridge : undefined;
  const bridgeLink: BridgeLink | undefined = bridgeConfig
    ? bridgeModule!.createBridgeLink(
        {
          gatewayId: config.gatewayId,
          urls: bridgeConfig.urls,
          username: bridgeConfig.username ?? config.gatewayId,
          password: bridgePassword ?? '',
          tls: bridgeConfig.tls,
          compression: bridgeConfig.compression,
          topic: config.kafka.topic,
          keepaliveS: bridgeConfig.keepaliveS,
          connectTimeoutMs: bridgeConfig.connectTimeoutMs,
          reconnectMinMs: bridgeConfig.reconnectMinMs,
          reconnectMaxMs: bridgeConfig.reconnectMaxMs,
          requestTimeoutMs: 2 * config.uplink.operationTimeoutMs,
        },
        { logger },
      )
    : undefined;
  const uplink = createUplink(
    {
      topic: config.kafka.topic,
      gatewayId: config.gatewayId,
      batchSize: config.uplink.batchSize,
      minBackoffMs: config.uplink.minBackoffMs,
      maxBackoffMs: config.uplink.maxBackoffMs,
      idlePollMs: config.uplink.idlePollMs,
      lingerMs: config.uplink.lingerMs,
      operationTimeoutMs: config.uplink.operationTimeoutMs,
      probeIntervalMs: config.uplink.probeIntervalMs,
      liveFirst: config.uplink.liveFirst,
      liveFirstAfterMs: config.uplink.liveFirstAfterMs,
      replayRatePerSecond: config.uplink.replayRatePerSecond,
      statusTopic: config.uplink.statusTopic,
      deadLetterTopic: config.kafka.deadLetterTopic,
      statusIntervalMs: config.uplink.statusIntervalMs,
      closeTimeoutMs: config.uplink.closeTimeoutMs,
      commandStatusTopic: config.commands.enabled ? config.commands.statusTopic : '',
    },
    {
      outbox,
      createProducer: () =>
        bridgeLink?.producer() ??
        kafka.transactionalProducer({
          transactionalId: `reefer-gateway.${config.gatewayId}`,
          compression: config.kafka.compression,
          transactionTimeoutMs: config.uplink.transactionTimeoutMs,
        }),
      admin: bridgeLink?.admin() ?? kafka.admin(),
      frame: confluent ? frameConfluentRow : (row) => frameTelemetryBody(storedTelemetryBody(row, config.gatewayId)),
      prepare: confluent
        ? async () => {
            schemaId = await confluent.schemaId(TELEMETRY_WRITER_VERSION);
          }
        : undefined,
      statusReport: () => statusReport(),
      now: Date.now,
      logger,
      onSent: (count, latencyMs) => {
        stats.sent(count);
        metrics.observeSend(count, latencyMs);
      },
      onError: () => stats.uplinkError(),
    },
  );
  protectedRanges = () => uplink.inFlight();

  // In uplink mode kafka commands come straight from Kafka; in mode mqtt the bridge service is the
  // gateway's only way to Kafka, so the commands come through it too.
  let commandSource: CommandSource | undefined;
  if (config.commands.enabled && bridgeLink) {
    commandSource = bridgeModule!.createBridgeCommandSource(bridgeLink);
  } else if (config.commands.enabled) {
    commandSource = createKafkaCommandSource(
      { gatewayId: config.gatewayId, topic: config.commands.topic, retryMs: config.uplink.maxBackoffMs, closeTimeoutMs: config.uplink.closeTimeoutMs },
      { createConsumer: (options) => kafka.consumer(options), logger },
    );
  }
  const downlink = config.commands.enabled
    ? createDownlink(
        {
          gatewayId: config.gatewayId,
          maxPendingCommands: config.commands.maxPending,
          expiryCheckIntervalMs: config.commands.expiryCheckIntervalMs,
          retainFinishedMs: config.commands.retainFinishedMs,
        },
        { outbox, publish: (containerId, payload) => mqtt.publishCommand(containerId, payload), source: commandSource, onStatusQueued: () => uplink.notify(), logger, now: Date.now },
      )
    : undefined;
  queue.onCommit(() => {
    shed(config.outbox.maxBytes);
    uplink.notify();
  });
  const housekeeping = setInterval(() => {
    shed(config.outbox.maxBytes);
    try {
      outbox.pruneSeen(Date.now() - config.outbox.dedupWindowMs);
    } catch (error) {
      shedLog.error({ err: error instanceof Error ? error.message : String(error) }, 'could not prune the dedup window');
    }
  }, HOUSEKEEPING_INTERVAL_MS);
  housekeeping.unref();

  function status(): GatewayStatus {
    return {
      uplink: uplink.state(),
      mqttClients: mqtt.connectedClients(),
      outbox: outbox.depth(),
      deadLetters: outbox.deadLetterCount(),
      stats: stats.snapshot(),
      ledger: outbox.ledger(),
      disk: disk.usage(),
      replayUntilSeq: uplink.replayUntilSeq(),
      upstream: upstreams.map((u) => u.status()),
      serial: serialPorts.map((port) => port.status()),
      security: mqtt.security(),
      ...(downlink ? { commands: downlink.stats() } : {}),
      ...(bridgeLink ? { bridge: bridgeLink.stats() } : {}),
    };
  }

  /** What the gateway reports on the status topic: its state, and the loss ledger with its gaps. */
  function statusReport(): unknown {
    const s = status();
    return {
      gatewayId: config.gatewayId,
      timeMs: Date.now(),
      uplink: s.uplink,
      outbox: s.outbox,
      deadLetters: s.deadLetters,
      disk: s.disk,
      accepted: s.stats.accepted,
      duplicates: s.stats.duplicates,
      rejected: s.stats.rejected,
      ledger: s.ledger.filter((e) => e.reason !== 'gap'),
      gaps: s.ledger.filter((e) => e.reason === 'gap'),
      security: s.security,
    };
  }

  const mqtt = createMqttListener(
    { host: config.mqtt.host, port: config.mqtt.port, tls: config.mqtt.tls, auth: config.mqtt.auth, limits: config.mqtt.limits },
    {
      logger,
      onTelemetry: (publish) => ingest.ingest(publish.payload, { transport: 'mqtt', source: publish.topic, topicContainerId: publish.containerId }),
      ...(downlink
        ? {
            onCommandSubscribe: (containerId: string) => downlink.onSubscribe(containerId),
            onCommandDelivered: (containerId: string, payload: Buffer) => downlink.onDelivered(containerId, payload),
            onCommandAck: (ack: { containerId: string; payload: Buffer }) => downlink.onAck(ack.containerId, ack.payload),
          }
        : {}),
    },
  );

  const opsApi = createOpsApi(
    { gatewayId: config.gatewayId, feedIntervalMs: DASHBOARD_FEED_INTERVAL_MS },
    { status: () => status(), mqttListening: () => mqtt.port() > 0 || mqtt.tlsPort() > 0, outboxRefusing, latest, metrics, now: Date.now },
  );
  const http = config.http.enabled
    ? createHttpServer({ host: config.http.host, port: config.http.port }, { logger, routes: opsApi.routes, feeds: opsApi.feeds })
    : undefined;

  const upstreams = config.upstream.brokers.map((broker) =>
    upstreamModule!.createUpstreamClient(
      { ...broker, clientId: broker.clientId ?? defaultUpstreamClientId(config.gatewayId) },
      {
        logger,
        onTelemetry: async (message) => {
          await ingest.ingest(message.payload, { transport: 'upstream', source: message.source, topicContainerId: message.containerId });
        },
      },
    ),
  );

  const serialPorts = config.serial.ports.map((port) =>
    serialModule!.createSerialPort(
      {
        ...port,
        timeZone: config.site.timeZone,
        reopenMinMs: config.serial.reopenMinMs,
        reopenMaxMs: config.serial.reopenMaxMs,
        presenceCheckMs: config.serial.presenceCheckMs,
      },
      { logger, ingest, now: Date.now },
    ),
  );

  // Through the bridge, creating topics is the bridge's job (topics.create).
  if (config.kafka.createTopics && !bridgeLink) {
    // Kafka may be down at start; the uplink buffers meanwhile, so topic creation must not block ingest.
    const admin = kafka.admin();
    void admin
      .ensureTopics([
        { topic: config.kafka.topic, partitions: config.kafka.partitions },
        ...(config.uplink.statusTopic ? [{ topic: config.uplink.statusTopic, partitions: 1, config: { 'cleanup.policy': 'compact' } }] : []),
        ...(config.kafka.deadLetterTopic ? [{ topic: config.kafka.deadLetterTopic, partitions: 1, config: { 'retention.bytes': String(100 * 1024 * 1024) } }] : []),
        ...(config.commands.enabled ? [{ topic: config.commands.topic, partitions: config.kafka.partitions }, { topic: config.commands.statusTopic, partitions: config.kafka.partitions }] : []),
      ])
      .catch((error: unknown) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not create topic; the uplink retries'))
      .finally(() => void admin.close().catch(() => undefined));
  }

  await mqtt.start();
  for (const upstream of upstreams) upstream.start();
  // An absent port does not stop the gateway: it is reopened in the background once it appears.
  await Promise.all(serialPorts.map((port) => port.start()));
  bridgeLink?.start();
  uplink.start();
  downlink?.start();

  let closing: Promise<void> | undefined;
  const gateway: Gateway = {
    mqttPort: () => mqtt.port(),
    mqttTlsPort: () => mqtt.tlsPort(),
    httpPort: () => http?.port() ?? 0,
    ingest,
    status,
    close() {
      closing ??= (async () => {
        // Probes see the gateway gone before it stops taking input; open dashboards must not hold up the stop.
        await http?.close();
        opsApi.close();
        // Upstream messages still being stored need the outbox open to be acknowledged.
        await Promise.all(upstreams.map((u) => u.close()));
        // The command consumer leaves its group alongside the rest of the stop (a hung Kafka bounds it by
        // uplink.closeTimeoutMs); commands it is storing need the outbox, and what it has not stored is
        // read again after the restart.
        const downlinkClosed = downlink?.close();
        await mqtt.close();
        // Lines already read from a port are stored before the outbox closes.
        await Promise.all(serialPorts.map((port) => port.close()));
        clearInterval(housekeeping);
        queue.close();
        // Lets the transaction in flight commit (bounded by uplink.closeTimeoutMs); the rest waits for the restart.
        await uplink.close();
        await bridgeLink?.close();
        await registry?.close();
        await downlinkClosed;
        outbox.close();
        logger.info('gateway stopped');
      })();
      return closing;
    },
  };
  try {
    await http?.start();
  } catch (error) {
    await gateway.close();
    throw error;
  }
  logger.info({ mqttPort: mqtt.port(), httpPort: http?.port() ?? 0, kafka: config.kafka.brokers, topic: config.kafka.topic, schemaRegistry: registryConfig?.url, dataDir: config.dataDir }, 'gateway started');
  return gateway;
}
