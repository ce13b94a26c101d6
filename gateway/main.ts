/**
 * The gateway's composition root: builds every adapter from the validated configuration, wires them,
 * and returns one handle to run and stop the whole process.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createKafkaClient } from '../cloud-bridge/kafka-client.js';
import { frameTelemetryBody } from '../schemas/avro.js';
import type { GatewayConfig } from './config.js';
import { createMqttListener } from './ingest/mqtt-listener.js';
import { createGatewayStats, type StatsSnapshot } from './ops/gateway-stats.js';
import { createCommitQueue } from './outbox/commit-queue.js';
import { openOutbox, type OutboxDepth } from './outbox/sqlite-outbox.js';
import { createIngest, type Ingest } from './pipeline/ingest.js';
import { createUplink, type UplinkState } from './uplink/kafka-uplink.js';

export interface GatewayStatus {
  uplink: UplinkState;
  mqttClients: number;
  outbox: OutboxDepth;
  deadLetters: number;
  stats: StatsSnapshot;
}

export interface Gateway {
  /** The MQTT port bound (useful when configured as 0). */
  mqttPort(): number;
  ingest: Ingest;
  status(): GatewayStatus;
  /** Stops ingest, lets the uplink finish its current batch, and closes the outbox. */
  close(): Promise<void>;
}

/** Bytes of a payload kept with its dead letter. */
const DEAD_LETTER_PAYLOAD_BYTES = 4096;

export async function startGateway(config: Readonly<GatewayConfig>, deps: { logger: Logger }): Promise<Gateway> {
  const logger = deps.logger.child({ gatewayId: config.gatewayId });
  const stats = createGatewayStats();
  const outbox = openOutbox({ path: join(config.dataDir, 'outbox.db'), sync: config.outbox.sync });
  const queue = createCommitQueue({ flushIntervalMs: config.outbox.flushIntervalMs, maxBatch: config.outbox.maxBatch }, { outbox });
  const ingest = createIngest(
    {
      gatewayId: config.gatewayId,
      timeZone: config.site.timeZone,
      maxPayloadBytes: config.mqtt.maxPayloadBytes,
      deadLetterPayloadBytes: DEAD_LETTER_PAYLOAD_BYTES,
    },
    { queue, stats, logger, now: Date.now },
  );

  const kafka = createKafkaClient({
    brokers: config.kafka.brokers,
    clientId: config.kafka.clientId,
    logger,
    connectionTimeoutMs: config.kafka.connectionTimeoutMs,
    requestTimeoutMs: config.kafka.requestTimeoutMs,
  });
  const uplink = createUplink(
    {
      topic: config.kafka.topic,
      gatewayId: config.gatewayId,
      batchSize: config.uplink.batchSize,
      minBackoffMs: config.uplink.minBackoffMs,
      maxBackoffMs: config.uplink.maxBackoffMs,
      idlePollMs: config.uplink.idlePollMs,
    },
    {
      outbox,
      producer: kafka.producer({ idempotent: true, compression: config.kafka.compression }),
      frame: (row) => frameTelemetryBody(row.value),
      logger,
      onSent: (count) => stats.sent(count),
      onError: () => stats.uplinkError(),
    },
  );
  queue.onCommit(() => uplink.notify());

  const mqtt = createMqttListener(
    { host: config.mqtt.host, port: config.mqtt.port },
    {
      logger,
      onTelemetry: async (publish) => {
        await ingest.ingest(publish.payload, { transport: 'mqtt', source: publish.topic, topicContainerId: publish.containerId });
      },
    },
  );

  if (config.kafka.createTopics) {
    // Kafka may be down at start; the uplink buffers meanwhile, so topic creation must not block ingest.
    const admin = kafka.admin();
    void admin
      .ensureTopics([{ topic: config.kafka.topic, partitions: config.kafka.partitions }])
      .catch((error: unknown) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not create topic; the uplink retries'))
      .finally(() => void admin.close().catch(() => undefined));
  }

  await mqtt.start();
  uplink.start();
  logger.info({ mqttPort: mqtt.port(), kafka: config.kafka.brokers, topic: config.kafka.topic, dataDir: config.dataDir }, 'gateway started');

  let closing: Promise<void> | undefined;
  return {
    mqttPort: () => mqtt.port(),
    ingest,
    status: () => ({
      uplink: uplink.state(),
      mqttClients: mqtt.connectedClients(),
      outbox: outbox.depth(),
      deadLetters: outbox.deadLetterCount(),
      stats: stats.snapshot(),
    }),
    close() {
      closing ??= (async () => {
        await mqtt.close();
        queue.close();
        await uplink.close();
        outbox.close();
        logger.info('gateway stopped');
      })();
      return closing;
    },
  };
}
