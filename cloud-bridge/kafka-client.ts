/**
 * The Kafka adapter: the only file that imports kafkajs. Everything else speaks to Kafka through the
 * small ports below, so the client library can be replaced without touching the gateway.
 */
import type { SASLOptions } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { gzip, gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { encodeProduceRequest, splitBySize, type ProduceMessage, type ProduceTopic } from './kafka-produce-request.js';

const require = createRequire(import.meta.url);

/*
 * kafkajs 2.2.4 (pinned; it is no longer developed) is patched in four modules:
 *
 * - Its Produce request is written by kafka-produce-request.ts instead of kafkajs's encoder, which
 *   builds an object and a growing buffer for every record and header: the same bytes at a fraction
 *   of the CPU and garbage. Codecs other than none and gzip keep kafkajs's own.
 * - Grouping a send's records by partition copied the partition's array for every record (quadratic
 *   in a batch's size); it now appends, and a partition missing from kafkajs's metadata fails the
 *   send instead of being left out of it.
 * - FindCoordinator answers are remembered, and the coordinator's CONCURRENT_TRANSACTIONS retried in
 *   place; see below.
 *
 * These two replace modules in require's cache before kafkajs is loaded, so kafkajs's own requires
 * find them; the Cluster and Broker patches change prototypes.
 */
type ProduceRequestFactory = (fields: {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: ProduceTopic[];
}) => { apiKey: number; apiVersion: number; apiName: string; expectResponse(): boolean; encode(): Promise<unknown> };
const gzipAsync = promisify(gzip);
/**
 * A batch this small is compressed on the event loop: handing it to libuv's threads costs about four
 * times the compression itself (~0.2 against ~0.05 ms for 13 KB), and a live stream's transactions
 * carry one small batch per partition.
 */
const SYNC_GZIP_MAX_BYTES = 16 * 1024;
function gzipBatch(records: Buffer): Promise<Buffer> {
  return records.length <= SYNC_GZIP_MAX_BYTES ? Promise.resolve(gzipSync(records)) : gzipAsync(records);
}
function replaceModule<T>(id: string, replace: (original: T) => T): void {
  const path = require.resolve(id);
  const original = require(path) as T;
  require.cache[path]!.exports = replace(original);
}
replaceModule<ProduceRequestFactory>('kafkajs/src/protocol/requests/produce/v3/request.js', (kafkajsRequest) => (fields) => {
  const codec = fields.compression ?? 0;
  if (codec !== 0 && codec !== 1) return kafkajsRequest(fields);
  return {
    apiKey: 0,
    apiVersion: 3,
    apiName: 'Produce',
    expectResponse: () => fields.acks !== 0,
    async encode() {
      const body = await encodeProduceRequest({
        transactionalId: fields.transactionalId ?? null,
        acks: fields.acks,
        timeoutMs: fields.timeout,
        producerId: fields.producerId === undefined || fields.producerId === null ? -1n : BigInt(String(fields.producerId)),
        producerEpoch: fields.producerEpoch ?? 0,
        codec,
        compress: gzipBatch,
        topicData: fields.topicData,
        nowMs: Date.now(),
      });
      // kafkajs copies what an encoder's `buffer` holds into the request frame.
      return { buf: body, buffer: body };
    },
  };
});
type GroupByPartition = (args: {
  topic: string;
  partitionMetadata: unknown[];
  messages: ProduceMessage[];
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: ProduceMessage }) => number;
}) => Record<number, ProduceMessage[]>;
/*
 * kafkajs looks each partition's leader up in its metadata and silently leaves out the records of a
 * partition it finds no metadata for (Cluster.findLeaderForPartitions): the send would succeed without
 * them, and the uplink would forget readings Kafka never got. A partition missing from the metadata
 * the records were grouped by fails the send instead, as metadata not loaded: kafkajs refreshes its
 * metadata and tries again.
 */
const { KafkaJSMetadataNotLoaded } = require('kafkajs/src/errors.js') as { KafkaJSMetadataNotLoaded: new (message: string, details?: object) => Error };
replaceModule<GroupByPartition>('kafkajs/src/producer/groupMessagesPerPartition.js', () => ({ topic, partitionMetadata, messages, partitioner }) => {
  const grouped: Record<number, ProduceMessage[]> = {};
  if (partitionMetadata.length === 0) return grouped;
  const known = new Set(partitionMetadata.map((p) => (p as { partitionId: number }).partitionId));
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    if (!known.has(partition)) throw new KafkaJSMetadataNotLoaded(`no metadata for partition ${partition} of ${topic}`, { topic, partition });
    (grouped[partition] ??= []).push(message);
  }
  return grouped;
});

const kafkajs = require('kafkajs') as typeof import('kafkajs');
const { Kafka, logLevel, CompressionTypes, Partitioners } = kafkajs;

/*
 * kafkajs asks a broker where the coordinator is (FindCoordinator) before every request a transaction
 * makes to it: AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn each cost that extra
 * round trip, four to five a transaction, ten or more with the coordinator's CONCURRENT_TRANSACTIONS
 * retries. The answer changes only when a coordinator moves (a broker failed or partitions were
 * reassigned), so the clusters of transactional producers remember it: measured on one machine,
 * 100-record transactions p50 14.7 → 12.1 ms, p99 60.7 → 47.1 ms. Remembered coordinators are looked
 * up again once a transaction fails in this adapter, and after COORDINATOR_MEMORY_MS in any case: a
 * moved coordinator answers NOT_COORDINATOR, kafkajs retries, the transaction fails, the uplink tries
 * again and finds the new one. (Not on kafkajs's metadata refreshes: it refreshes after every
 * CONCURRENT_TRANSACTIONS answer, which a transaction started right after a commit often gets.)
 * Consumers' clusters are left alone: a cluster remembers only once it has looked up a transaction
 * coordinator.
 */
const COORDINATOR_MEMORY_MS = 30_000;
const TRANSACTION_COORDINATOR = 1;
interface CoordinatorLookup {
  groupId: string;
  coordinatorType?: number;
}
interface ClusterInternals {
  findGroupCoordinatorMetadata(lookup: CoordinatorLookup): Promise<unknown>;
}
const coordinators = new WeakMap<object, Map<string, { metadata: unknown; atMs: number; generation: number }>>();
/** Bumped when a transaction fails: every remembered coordinator is looked up again. */
let coordinatorGeneration = 0;
{
  const Cluster = require('kafkajs/src/cluster/index.js') as { prototype: ClusterInternals };
  const lookUp = Cluster.prototype.findGroupCoordinatorMetadata;
  Cluster.prototype.findGroupCoordinatorMetadata = async function (this: object, lookup: CoordinatorLookup) {
    let remembered = coordinators.get(this);
    if (!remembered) {
      if (lookup.coordinatorType !== TRANSACTION_COORDINATOR) return lookUp.call(this, lookup);
      remembered = new Map();
      coordinators.set(this, remembered);
    }
    const key = `${lookup.coordinatorType ?? 0}:${lookup.groupId}`;
    const known = remembered.get(key);
    if (known && known.generation === coordinatorGeneration && Date.now() - known.atMs < COORDINATOR_MEMORY_MS) return known.metadata;
    const metadata = await lookUp.call(this, lookup);
    remembered.set(key, { metadata, atMs: Date.now(), generation: coordinatorGeneration });
    return metadata;
  };
}

/*
 * Right after a commit the coordinator answers the next transaction's first request
 * (AddPartitionsToTxn, or AddOffsetsToTxn when it carries offsets alone) with CONCURRENT_TRANSACTIONS
 * until it has written the previous transaction's markers, a few milliseconds. kafkajs treats that
 * like a stale route: it refreshes the cluster's metadata (a round trip) and backs off before trying
 * again. The broker requests retry it in place instead, after 1 ms and growing, for up to about half
 * a second; past that the answer reaches kafkajs as before.
 */
const CONCURRENT_RETRY_WAITS_MS = [1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128];
{
  type BrokerRequest = (this: unknown, request: unknown) => Promise<unknown>;
  const Broker = require('kafkajs/src/broker/index.js') as { prototype: Record<'addPartitionsToTxn' | 'addOffsetsToTxn', BrokerRequest> };
  for (const name of ['addPartitionsToTxn', 'addOffsetsToTxn'] as const) {
    const send = Broker.prototype[name];
    Broker.prototype[name] = async function (this: unknown, request: unknown) {
      for (const waitMs of CONCURRENT_RETRY_WAITS_MS) {
        try {
          return await send.call(this, request);
        } catch (error) {
          if ((error as { type?: unknown } | null)?.type !== 'CONCURRENT_TRANSACTIONS') throw error;
          await new Promise((resolve) => setTimeout(resolve, waitMs));
        }
      }
      return send.call(this, request);
    };
  }
}

export interface KafkaClientOptions {
  brokers: readonly string[];
  clientId: string;
  /** Root logger; kafkajs logs are routed into a child of it. */
  logger?: Logger;
  /** Time allowed to open a TCP connection to a broker. */
  connectionTimeoutMs?: number;
  /** Time allowed for one request before it counts as failed (a hung broker never answers). */
  requestTimeoutMs?: number;
  /** Retries kafkajs makes itself before an operation fails back to the caller. */
  retries?: number;
  /** TLS to the brokers; plain TCP when absent. */
  tls?: KafkaTlsOptions;
  /** SASL authentication; none when absent. */
  sasl?: KafkaSaslOptions;
}

export interface KafkaTlsOptions {
  /** PEM file of the CAs that sign the brokers' certificates; the system's CAs when absent. */
  caFile?: string;
  /** PEM files of a client certificate and its key, for brokers that require one. */
  certFile?: string;
  keyFile?: string;
  /** Check the brokers' certificates; true when absent. */
  rejectUnauthorized?: boolean;
}

export interface KafkaSaslOptions {
  mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain';
  username: string;
  /** Kept out of every log line and error message this adapter emits. */
  password: string;
}

export interface KafkaRecord {
  key: string;
  value: Buffer;
  headers?: Record<string, string>;
  /** Record timestamp; the broker's append time is used when absent. */
  timestampMs?: number;
}

export type Compression = 'none' | 'gzip';

export interface ProducerOptions {
  /** Idempotent producer with acks=all (one in-flight request, so retries keep order). */
  idempotent?: boolean;
  compression?: Compression;
}

export interface KafkaProducerPort {
  connect(): Promise<void>;
  /** Resolves once every record is acknowledged by all in-sync replicas; rejects otherwise. */
  send(topic: string, records: readonly KafkaRecord[]): Promise<void>;
  close(): Promise<void>;
}

/** Where a transactional producer records its progress, atomically with the records it commits. */
export interface ProgressMarker {
  groupId: string;
  topic: string;
  partition: number;
  /** Any non-negative number; stored as the group's committed offset. */
  offset: number;
  /** Free text of at most a few kilobytes, stored with the offset. */
  metadata: string;
}

export interface TopicRecords {
  topic: string;
  records: readonly KafkaRecord[];
}

export interface TransactionalProducerOptions {
  /** Stable per gateway: a restarted gateway fences its previous incarnation and aborts its open transaction. */
  transactionalId: string;
  compression?: Compression;
  /** The broker aborts a transaction left open this long (by a gateway that died mid-transaction). */
  transactionTimeoutMs?: number;
  /** Told the Kafka API name of every request the producer sends (its round trips), e.g. to count them. */
  onRequest?(apiName: string): void;
}

export interface TransactionalProducerPort {
  /** Registers the transactional id; aborts or completes whatever its previous incarnation left open. */
  connect(): Promise<void>;
  /**
   * Sends the records and records the marker in one transaction: consumers reading committed data
   * see all of it or none of it. Rejects if the transaction was not committed; it may still have
   * been, if the commit's answer was lost, so callers re-read the marker after a failure.
   */
  commit(sends: readonly TopicRecords[], marker?: ProgressMarker): Promise<void>;
  close(): Promise<void>;
}

export interface TopicSpec {
  topic: string;
  partitions?: number;
  config?: Record<string, string>;
}

export interface KafkaAdminPort {
  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  listTopics(): Promise<string[]>;
  /** The marker last committed for the group and topic partition, or null if none was. */
  fetchMarker(groupId: string, topic: string, partition: number): Promise<{ offset: number; metadata: string } | null>;
  close(): Promise<void>;
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestampMs: number;
}

export interface ConsumerOptions {
  groupId: string;
  topics: readonly string[];
  fromBeginning?: boolean;
  /** Longest a fetch waits for records to arrive before answering empty; low values lower latency. */
  maxWaitTimeMs?: number;
}

export interface KafkaConsumerPort {
  /**
   * Calls `onRecords` with each fetched batch, in partition order; returns once subscribed. A handler
   * that takes longer than the session timeout (10 s) calls `control.heartbeat()` meanwhile, or the
   * group takes its partitions away.
   */
  start(onRecords: (records: ConsumedRecord[], control: BatchControl) => Promise<void> | void): Promise<void>;
  close(): Promise<void>;
}

export interface KafkaClient {
  producer(options?: ProducerOptions): KafkaProducerPort;
  transactionalProducer(options: TransactionalProducerOptions): TransactionalProducerPort;
  admin(): KafkaAdminPort;
  consumer(options: ConsumerOptions): KafkaConsumerPort;
}

type KafkaLogLevel = (typeof logLevel)[keyof typeof logLevel];

/** Replaces every occurrence of a secret in strings, however deep, before a log line is written. */
function redact<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  if (typeof value === 'string') return secrets.reduce((text: string, secret) => text.split(secret).join('[redacted]'), value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redact(v, secrets)) as T;
  if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, secrets)])) as T;
  }
  return value;
}

function routeLogs(logger: Logger | undefined, secrets: readonly string[]) {
  return () =>
    ({ level, log }: { namespace: string; level: KafkaLogLevel; label: string; log: { message: string } & Record<string, unknown> }) => {
      if (!logger) return;
      // kafkajs is not known to log credentials; this keeps it so should that change.
      const { message, ...rest } = redact(log, secrets);
      // kafkajs reports every failed request at ERROR while it retries; those are warnings for us,
      // since the uplink decides what a failure means.
      if (level === logLevel.ERROR || level === logLevel.WARN) logger.warn(rest, message);
      else if (level === logLevel.INFO) logger.debug(rest, message);
    };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read the Kafka TLS ${what} ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** kafkajs's `ssl` option: the files read once, at start, so a missing file fails early and clearly. */
function tlsSettings(tls: KafkaTlsOptions | undefined) {
  if (!tls) return undefined;
  return {
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    ...(tls.caFile !== undefined ? { ca: [readPem(tls.caFile, 'CA file')] } : {}),
    ...(tls.certFile !== undefined ? { cert: readPem(tls.certFile, 'certificate') } : {}),
    ...(tls.keyFile !== undefined ? { key: readPem(tls.keyFile, 'key') } : {}),
  };
}

function saslSettings(sasl: KafkaSaslOptions | undefined): SASLOptions | undefined {
  if (!sasl) return undefined;
  return { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}

function toMessages(records: readonly KafkaRecord[]) {
  return records.map((r) => ({
    key: r.key,
    value: r.value,
    headers: r.headers,
    timestamp: r.timestampMs === undefined ? undefined : String(r.timestampMs),
  }));
}

function headersToStrings(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  }
  return out;
}

/**
 * kafkajs's default partitioner (murmur2 of the key, as Java clients do), remembered per topic and
 * key: a gateway sends the same few thousand container keys over and over, and kafkajs hashes each
 * record's key afresh after filtering the partition list for it.
 */
function rememberingPartitioner(): ReturnType<typeof Partitioners.DefaultPartitioner> {
  const hash = Partitioners.DefaultPartitioner();
  const topics = new Map<string, { partitions: number; byKey: Map<string, number> }>();
  return (args) => {
    const { topic, partitionMetadata, message } = args;
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (typeof message.key !== 'string') return hash(args);
    let known = topics.get(topic);
    if (!known || known.partitions !== partitionMetadata.length) {
      known = { partitions: partitionMetadata.length, byKey: new Map() };
      topics.set(topic, known);
    }
    let partition = known.byKey.get(message.key);
    if (partition === undefined) {
      partition = hash(args);
      if (known.byKey.size >= 100_000) known.byKey.clear();
      known.byKey.set(message.key, partition);
    }
    return partition;
  };
}

type KafkaProducer = ReturnType<InstanceType<typeof Kafka>['producer']>;
type TransactionOffsets = Parameters<Awaited<ReturnType<KafkaProducer['transaction']>>['sendOffsets']>[0];

/**
 * Most record bytes (uncompressed, as written) in one Produce request: under the broker's default
 * message.max.bytes (1,048,588), which a partition's batch must not exceed. A transaction larger than
 * this is sent in several requests.
 */
const MAX_PRODUCE_BYTES = 1_000_000;

/** Attempts at a transaction refused with CONCURRENT_TRANSACTIONS before it fails (see commitTransaction). */
const CONCURRENT_TRANSACTION_ATTEMPTS = 20;
const CONCURRENT_TRANSACTION_WAIT_MS = 25;

/** An idempotent, transactional kafkajs producer (one in-flight request, so retries keep order). */
function newTransactionalProducer(kafka: InstanceType<typeof Kafka>, transactionalId: string, transactionTimeoutMs: number | undefined, retries: number | undefined): KafkaProducer {
  return kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: transactionTimeoutMs ?? 30000,
    allowAutoTopicCreation: false,
    createPartitioner: rememberingPartitioner,
    // The coordinator answers CONCURRENT_TRANSACTIONS while it finishes the previous commit, which
    // takes it a few milliseconds: retries start at 1 ms and grow by half, so back-to-back
    // transactions do not each sleep 10 ms or more (measured: 3–8 ms less per transaction), while
    // 20 retries still span about 5 s for a coordinator that is really away.
    retry: { retries: Math.max(retries ?? 3, 20), initialRetryTime: 1, multiplier: 1.5, maxRetryTime: 1000 },
  });
}

/**
 * kafkajs registers a transactional id at a producer's first transaction, not on connect. An empty
 * transaction registers it now: the previous holder is fenced, and whatever it left open is finished
 * (a commit already under way) or aborted.
 */
async function registerTransactionalId(producer: KafkaProducer): Promise<void> {
  const fence = await producer.transaction();
  await fence.abort();
}

/**
 * Sends the records and the offsets in one transaction. CONCURRENT_TRANSACTIONS on AddPartitionsToTxn
 * and AddOffsetsToTxn is retried in place for about half a second (the Broker patch above); one that
 * still reaches this function, from those or from another step, aborts the attempt (nothing of it
 * is visible) and the transaction is tried again, for about five seconds more.
 */
async function commitTransaction(
  producer: KafkaProducer,
  sends: readonly { topic: string; messages: ReturnType<typeof toMessages> }[],
  compression: (typeof CompressionTypes)[keyof typeof CompressionTypes],
  offsets: TransactionOffsets | undefined,
): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    const transaction = await producer.transaction();
    try {
      // All topics in one Produce request, split only to keep each partition's batch under the broker's limit.
      for (const topicMessages of splitBySize(sends, MAX_PRODUCE_BYTES)) {
        if (topicMessages.length > 0) await transaction.sendBatch({ acks: -1, compression, topicMessages });
      }
      if (offsets) await transaction.sendOffsets(offsets);
    } catch (error) {
      coordinatorGeneration += 1;
      await transaction.abort().catch(() => undefined);
      if ((error as { type?: unknown } | null)?.type !== 'CONCURRENT_TRANSACTIONS' || attempt >= CONCURRENT_TRANSACTION_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, CONCURRENT_TRANSACTION_WAIT_MS * attempt));
      continue;
    }
    try {
      await transaction.commit();
    } catch (error) {
      coordinatorGeneration += 1;
      throw error;
    }
    return;
  }
}

/** A kafkajs client with the adapter's settings: timeouts, retries, TLS, SASL, logs routed and redacted. */
function newKafka(options: KafkaClientOptions): InstanceType<typeof Kafka> {
  const logger = options.logger?.child({ component: 'kafkajs' });
  const secrets = options.sasl ? [options.sasl.password] : [];
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 10000,
    retry: { retries: options.retries ?? 3, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator: routeLogs(logger, secrets),
    ssl: tlsSettings(options.tls),
    sasl: saslSettings(options.sasl),
  });
}

export function createKafkaClient(options: KafkaClientOptions): KafkaClient {
  const kafka = newKafka(options);

  return {
    producer(producerOptions: ProducerOptions = {}): KafkaProducerPort {
      const idempotent = producerOptions.idempotent ?? true;
      const compression = producerOptions.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
      const producer = kafka.producer({
        idempotent,
        maxInFlightRequests: idempotent ? 1 : undefined,
        allowAutoTopicCreation: false,
        createPartitioner: rememberingPartitioner,
        retry: { retries: options.retries ?? 3, initialRetryTime: 100, maxRetryTime: 2000 },
      });
      let connected = false;
      return {
        async connect() {
          if (connected) return;
          await producer.connect();
          connected = true;
        },
        async send(topic, records) {
          await producer.send({
            topic,
            acks: -1,
            compression,
            messages: toMessages(records),
          });
        },
        async close() {
          if (!connected) return;
          connected = false;
          await producer.disconnect();
        },
      };
    },

    transactionalProducer(txOptions: TransactionalProducerOptions): TransactionalProducerPort {
      const compression = txOptions.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
      const producer = newTransactionalProducer(kafka, txOptions.transactionalId, txOptions.transactionTimeoutMs, options.retries);
      const onRequest = txOptions.onRequest;
      if (onRequest) producer.on(producer.events.REQUEST, (event) => onRequest(event.payload.apiName));
      let connected = false;
      return {
        async connect() {
          if (connected) return;
          await producer.connect();
          // The previous incarnation is fenced before the caller reads its marker, so a late commit
          // by a stalled predecessor cannot land after that read.
          await registerTransactionalId(producer);
          connected = true;
        },
        async commit(sends, marker) {
          await commitTransaction(
            producer,
            sends.map((send) => ({ topic: send.topic, messages: toMessages(send.records) })),
            compression,
            marker && {
              consumerGroupId: marker.groupId,
              topics: [
                { topic: marker.topic, partitions: [{ partition: marker.partition, offset: String(marker.offset), metadata: marker.metadata } as { partition: number; offset: string }] },
              ],
            },
          );
        },
        async close() {
          if (!connected) return;
          connected = false;
          await producer.disconnect();
        },
      };
    },

    admin(): KafkaAdminPort {
      const admin = kafka.admin();
      let connecting: Promise<void> | undefined;
      const ready = () =>
        (connecting ??= admin.connect().catch((error: unknown) => {
          // Forget a failed attempt so the next call tries again (Kafka may be back by then).
          connecting = undefined;
          throw error;
        }));
      return {
        async ensureTopics(topics) {
          await ready();
          const existing = new Set(await admin.listTopics());
          const missing = topics.filter((t) => !existing.has(t.topic));
          if (missing.length === 0) return;
          await admin.createTopics({
            waitForLeaders: true,
            topics: missing.map((t) => ({
              topic: t.topic,
              numPartitions: t.partitions ?? 3,
              replicationFactor: -1,
              configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value })),
            })),
          });
        },
        async listTopics() {
          await ready();
          return admin.listTopics();
        },
        async fetchMarker(groupId, topic, partition) {
          await ready();
          const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
          const found = offsets?.partitions.find((p) => p.partition === partition) as { offset: string; metadata: string | null } | undefined;
          if (!found || Number(found.offset) < 0) return null;
          return { offset: Number(found.offset), metadata: found.metadata ?? '' };
        },
        async close() {
          if (!connecting) return;
          connecting = undefined;
          await admin.disconnect();
        },
      };
    },

    consumer(consumerOptions: ConsumerOptions): KafkaConsumerPort {
      const consumer = kafka.consumer({
        groupId: consumerOptions.groupId,
        readUncommitted: false,
        maxWaitTimeInMs: consumerOptions.maxWaitTimeMs ?? 1000,
        sessionTimeout: 10000,
        heartbeatInterval: 1000,
        retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
      });
      let started = false;
      return {
        async start(onRecords) {
          await consumer.connect();
          started = true;
          await consumer.subscribe({ topics: [...consumerOptions.topics], fromBeginning: consumerOptions.fromBeginning ?? true });
          await consumer.run({
            eachBatch: async ({ batch, heartbeat }) => {
              const records = batch.messages.map((m) => ({
                topic: batch.topic,
                partition: batch.partition,
                offset: m.offset,
                key: m.key ? m.key.toString('utf8') : null,
                value: m.value,
                headers: headersToStrings(m.headers),
                timestampMs: Number(m.timestamp),
              }));
              await onRecords(records, { heartbeat });
            },
          });
        },
        async close() {
          if (!started) return;
          started = false;
          await consumer.disconnect();
        },
      };
    },
  };
}

/*
 * Consume-transform-produce, exactly once, and reading a compacted topic back: for the analytics
 * consumers, which keep per-key state in a changelog topic beside their output.
 */

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A record for a chosen partition; the default partitioner picks one by key when absent. */
export interface PartitionedRecord extends KafkaRecord {
  partition?: number;
}

export interface PartitionedTopicRecords {
  topic: string;
  records: readonly PartitionedRecord[];
}

export interface TransformResult {
  /** Records to write, in the same transaction as the batch's offsets. */
  sends: readonly PartitionedTopicRecords[];
  /** Called once that transaction is committed, and only then: apply the new state here. */
  committed(): void;
}

/** What an exactly-once consumer drives, one input partition at a time. */
export interface PartitionProcessor {
  /**
   * Partitions this instance processes from now on, before their first batch: after start, after
   * every rebalance, and after a failed transaction. The previous owner of each (another instance,
   * or this one before a failure) is fenced by then and its open transaction aborted, so what Kafka
   * holds for them is final: rebuild their state here.
   */
  assigned(partitions: readonly TopicPartition[]): Promise<void>;
  /** Partitions this instance stopped processing (a rebalance, a failed transaction): forget their state. */
  revoked(partitions: readonly TopicPartition[]): void;
  /** One batch of one partition, in offset order, records below the committed offset already dropped. */
  transform(records: readonly ConsumedRecord[], partition: TopicPartition): Promise<TransformResult> | TransformResult;
}

export interface ExactlyOnceConsumerOptions {
  groupId: string;
  /** The one input topic. */
  topic: string;
  /**
   * Each input partition gets its own transactional producer, `<prefix>-<partition>`: whoever takes
   * a partition over fences whoever had it, even an instance that has not yet noticed it lost it
   * (kafkajs's offset commits in a transaction carry no group generation to fence it otherwise).
   */
  transactionalIdPrefix: string;
  compression?: Compression;
  transactionTimeoutMs?: number;
  maxWaitTimeMs?: number;
  /**
   * kafkajs heartbeats between batches only, so this also bounds one batch plus a state rebuild.
   */
  sessionTimeoutMs?: number;
}

export interface ExactlyOnceConsumerPort {
  /** Joins the group and processes until close(); resolves once subscribed. */
  start(processor: PartitionProcessor): Promise<void>;
  /** Finishes the batch in progress, leaves the group (its partitions move to the others) and disconnects. Safe twice. */
  close(): Promise<void>;
  /** Input partitions the group gave this instance at its latest join, ascending. */
  assignment(): number[];
}

/** One record of a compacted topic as last written for its key. */
export interface CompactedRecord {
  key: string;
  partition: number;
  value: Buffer;
}

export interface StreamsClient {
  exactlyOnceConsumer(options: ExactlyOnceConsumerOptions): ExactlyOnceConsumerPort;
  /**
   * The latest committed value of every key of the given partitions of a compacted topic, read
   * from the beginning to the end they had when the call started; keys whose latest record is a
   * tombstone are left out. Rejects after `timeoutMs` (60 s by default).
   */
  readCompacted(topic: string, partitions: readonly number[], timeoutMs?: number): Promise<CompactedRecord[]>;
  /** Partitions of a topic, or null when it does not exist. */
  partitionCount(topic: string): Promise<number | null>;
  close(): Promise<void>;
}

function toPartitionedMessages(records: readonly PartitionedRecord[]) {
  return records.map((r) => ({
    key: r.key,
    value: r.value,
    headers: r.headers,
    partition: r.partition,
    timestamp: r.timestampMs === undefined ? undefined : String(r.timestampMs),
  }));
}

/**
 * The Kafka side of stateful consumers. It builds its own kafkajs client with the same settings as
 * createKafkaClient (TLS, SASL, timeouts, logs routed and redacted).
 */
export function createStreamsClient(options: KafkaClientOptions): StreamsClient {
  const logger = options.logger?.child({ component: 'kafkajs' });
  const kafka = newKafka(options);
  const admin = kafka.admin();
  let adminConnecting: Promise<void> | undefined;
  const adminReady = () =>
    (adminConnecting ??= admin.connect().catch((error: unknown) => {
      adminConnecting = undefined;
      throw error;
    }));

  async function committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>> {
    await adminReady();
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const out = new Map<number, bigint>();
    for (const p of offsets?.partitions ?? []) out.set(p.partition, BigInt(p.offset) < 0n ? 0n : BigInt(p.offset));
    return out;
  }

  return {
    exactlyOnceConsumer(eo: ExactlyOnceConsumerOptions): ExactlyOnceConsumerPort {
      const compression = eo.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
      const consumer = kafka.consumer({
        groupId: eo.groupId,
        readUncommitted: false,
        maxWaitTimeInMs: eo.maxWaitTimeMs ?? 1000,
        sessionTimeout: eo.sessionTimeoutMs ?? 30000,
        heartbeatInterval: 1000,
        allowAutoTopicCreation: false,
        retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
      });
      type Producer = ReturnType<typeof kafka.producer>;
      const producers = new Map<number, Producer>();
      /** Partitions of the latest assignment. */
      let assignment = new Set<number>();
      /** Partitions whose producer is fenced in, state rebuilt and committed offset known. */
      const ready = new Map<number, { committed: bigint }>();
      let processor: PartitionProcessor | null = null;
      let started = false;
      const tp = (partition: number): TopicPartition => ({ topic: eo.topic, partition });

      const dropProducer = async (partition: number): Promise<void> => {
        const producer = producers.get(partition);
        producers.delete(partition);
        await producer?.disconnect().catch(() => undefined);
      };

      // Every join starts every partition over: one this instance kept may have been processed by
      // another while this one was out of the group, and a rebuild is what makes that safe.
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        assignment = new Set(event.payload.memberAssignment[eo.topic] ?? []);
        const had = [...ready.keys()];
        ready.clear();
        if (had.length > 0) processor?.revoked(had.map(tp));
      });

      // kafkajs restarts a crashed consumer itself when the error is retriable; say so either way.
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        logger?.error({ groupId: payload.groupId, err: payload.error.message, restart: payload.restart }, 'consumer crashed');
      });

      const initialise = async (): Promise<void> => {
        for (const partition of [...producers.keys()]) if (!assignment.has(partition)) await dropProducer(partition);
        const todo = [...assignment].filter((p) => !ready.has(p)).sort((a, b) => a - b);
        for (const partition of todo) {
          let producer = producers.get(partition);
          if (!producer) {
            producer = newTransactionalProducer(kafka, `${eo.transactionalIdPrefix}-${partition}`, eo.transactionTimeoutMs, options.retries);
            producers.set(partition, producer);
          }
          await producer.connect();
          // Fenced before the state is read; left to the first batch, a stalled previous holder
          // registering late would fence this one instead.
          await registerTransactionalId(producer);
        }
        await processor!.assigned(todo.map(tp));
        const committed = await committedOffsets(eo.groupId, eo.topic);
        for (const partition of todo) ready.set(partition, { committed: committed.get(partition) ?? 0n });
      };

      return {
        async start(p) {
          processor = p;
          await consumer.connect();
          started = true;
          await consumer.subscribe({ topics: [eo.topic], fromBeginning: true });
          await consumer.run({
            autoCommit: false,
            eachBatch: async ({ batch, heartbeat }) => {
              const partition = batch.partition;
              if (!ready.has(partition)) {
                await initialise();
                // A rebuild can be long; a rebalance meanwhile fails this batch and starts over.
                await heartbeat();
              }
              const state = ready.get(partition);
              // Assigned to another member by a join that happened while this batch was in flight.
              if (!state) return;
              const nextOffset = BigInt(batch.lastOffset()) + 1n;
              if (nextOffset <= state.committed) return;
              const records: ConsumedRecord[] = batch.messages
                .filter((m) => BigInt(m.offset) >= state.committed)
                .map((m) => ({
                  topic: batch.topic,
                  partition,
                  offset: m.offset,
                  key: m.key ? m.key.toString('utf8') : null,
                  value: m.value,
                  headers: headersToStrings(m.headers),
                  timestampMs: Number(m.timestamp),
                }));
              if (records.length === 0) return;
              const result = await processor!.transform(records, tp(partition));
              const producer = producers.get(partition)!;
              try {
                await commitTransaction(
                  producer,
                  result.sends.map((send) => ({ topic: send.topic, messages: toPartitionedMessages(send.records) })),
                  compression,
                  { consumerGroupId: eo.groupId, topics: [{ topic: eo.topic, partitions: [{ partition, offset: String(nextOffset) }] }] },
                );
              } catch (error) {
                // Committed or not (the answer to a commit can be lost), the partition starts over
                // from what Kafka holds: fenced producer, rebuilt state, committed offset.
                ready.delete(partition);
                processor!.revoked([tp(partition)]);
                await dropProducer(partition);
                throw error;
              }
              state.committed = nextOffset;
              result.committed();
            },
          });
        },
        async close() {
          if (!started) return;
          started = false;
          await consumer.disconnect();
          for (const partition of [...producers.keys()]) await dropProducer(partition);
          if (ready.size > 0) processor?.revoked([...ready.keys()].map(tp));
          ready.clear();
          assignment = new Set();
        },
        assignment: () => [...assignment].sort((a, b) => a - b),
      };
    },

    async readCompacted(topic, partitions, timeoutMs = 60000) {
      await adminReady();
      const ends = await admin.fetchTopicOffsets(topic);
      const wanted = new Map<number, bigint>();
      for (const p of ends) {
        if (partitions.includes(p.partition) && BigInt(p.high) > BigInt(p.low)) wanted.set(p.partition, BigInt(p.high) - 1n);
      }
      const latest = new Map<string, CompactedRecord>();
      if (wanted.size === 0) return [];
      const consumer = kafka.consumer({
        // A group of its own, so the whole topic is assigned to this reader, from the beginning.
        groupId: `${topic}-restore-${randomUUID()}`,
        readUncommitted: false,
        maxWaitTimeInMs: 100,
        allowAutoTopicCreation: false,
        retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
      });
      const remaining = new Set(wanted.keys());
      let finish: () => void = () => {};
      const done = new Promise<void>((resolve) => (finish = resolve));
      // Emitted for every batch, also one holding only transaction markers, which eachBatch never sees.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const last = wanted.get(payload.partition);
        if (payload.topic === topic && last !== undefined && BigInt(payload.lastOffset) >= last) {
          remaining.delete(payload.partition);
          if (remaining.size === 0) finish();
        }
      });
      let timer: NodeJS.Timeout | undefined;
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch, pause }) => {
            if (!wanted.has(batch.partition)) {
              pause();
              return;
            }
            for (const m of batch.messages) {
              if (!m.key) continue;
              const key = m.key.toString('utf8');
              if (m.value === null) latest.delete(key);
              else latest.set(key, { key, partition: batch.partition, value: m.value });
            }
          },
        });
        await Promise.race([
          done,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`reading compacted topic ${topic} partitions ${[...remaining].join(',')} did not reach their end within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
        await consumer.disconnect().catch(() => undefined);
      }
      return [...latest.values()];
    },

    async partitionCount(topic) {
      await adminReady();
      const topics = await admin.listTopics();
      if (!topics.includes(topic)) return null;
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      return metadata.topics[0]?.partitions.length ?? null;
    },

    async close() {
      if (!adminConnecting) return;
      adminConnecting = undefined;
      await admin.disconnect();
    },
  };
}

/** What a consumer's batch handler may do while it works on a batch. */
export interface BatchControl {
  /** Tells the group the consumer is alive; rejects when the group rebalanced meanwhile. */
  heartbeat(): Promise<void>;
}
