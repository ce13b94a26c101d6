/**
 * The bridge service's logic: what it does with a gateway's requests and how it feeds it commands,
 * through the Kafka ports only (kafka-client.ts), so it knows neither aedes nor kafkajs.
 *
 * Each gateway gets a transactional producer of its own, with the transactional id the direct uplink
 * uses (`reefer-gateway.<id>`): opening a session fences every earlier one, on this instance or any
 * other, and aborts what it left open. The id, the progress group and the topics a gateway may write
 * come from its login and the bridge's configuration, never from the request. A request is answered
 * only once Kafka answered; a bridge that lost Kafka answers with errors, never with an acknowledgement.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  decodeRequest,
  dropCommitted,
  encodeCommand,
  encodeReply,
  errorReply,
  gatewayKafkaIds,
  okReply,
  parseMarkerRanges,
  rememberCommitted,
  type BridgeChannel,
  type BridgeCompression,
  type BridgeReply,
  type BridgeReplyError,
  type BridgeRequest,
  type CommittedSeqs,
  type GatewayConnection,
} from './bridge-protocol.js';
import type { Compression, ConsumedRecord, KafkaAdminPort, KafkaClient, KafkaConsumerPort, TransactionalProducerPort } from './kafka-client.js';

export interface BridgeServiceOptions {
  /** Topics gateways may write to; a commit naming another is refused whole. */
  allowTopics: readonly string[];
  /** Topic of commands to gateways; empty to forward none. */
  commandsTopic: string;
  /** Compression of the Kafka produce batches. */
  kafkaCompression: Compression;
  transactionTimeoutMs: number;
  /** Compression of the commands the bridge sends to gateways. */
  commandCompression: BridgeCompression;
  /** Longest the bridge waits for a gateway to store a forwarded command before it gives up on the feed. */
  commandStoreTimeoutMs: number;
}

export interface BridgeServiceDeps {
  kafka: Pick<KafkaClient, 'transactionalProducer' | 'consumer'>;
  admin: Pick<KafkaAdminPort, 'fetchMarker' | 'listTopics' | 'close'>;
  /** Publishes to a gateway's channel (replies are returned instead, to go out before the PUBACK). */
  publish(gatewayId: string, channel: BridgeChannel, payload: Buffer): Promise<void>;
  logger: Logger;
}

export interface BridgeServiceStats {
  /** Gateways with an open producer session. */
  sessions: number;
  commits: number;
  /** Records dropped because Kafka had already committed their (gateway, seq). */
  duplicatesDropped: number;
  /** Requests answered with an error, by code. */
  errors: Partial<Record<BridgeReplyError['code'], number>>;
  commandsForwarded: number;
  /** Commit requests' bytes as they came over MQTT (tag + compressed Avro), and the readings (records with a seq) in them. */
  commitBytes: number;
  commitReadings: number;
}

export interface BridgeService {
  /** Answers one request of an authenticated gateway with the reply's payload. Never rejects. */
  handleRequest(connection: GatewayConnection, payload: Buffer): Promise<Buffer>;
  /** The gateway subscribed to its commands: feed it from Kafka while it stays. */
  commandsWanted(connection: GatewayConnection): void;
  /**
   * A gateway's connection went: its session here (fenced anyway by the one it opens elsewhere) is
   * closed, and its command feed stopped, leaving the unstored commands in Kafka.
   */
  connectionGone(connection: GatewayConnection): void;
  stats(): BridgeServiceStats;
  close(): Promise<void>;
}

interface Session {
  id: string;
  gatewayId: string;
  /** The connection that opened it. */
  connectionId: number;
  producer: TransactionalProducerPort;
  /** What Kafka committed for this gateway, for dropping resent records. */
  committed: CommittedSeqs | null;
  /** Requests of a session run one after another. */
  chain: Promise<unknown>;
  current: boolean;
}

interface CommandFeed {
  /** The connection the gateway takes commands on; its disconnect stops the feed. */
  connectionId: number;
  consumer: KafkaConsumerPort;
  waiting: Map<string, { resolve(): void; reject(error: Error): void }>;
  stopped: boolean;
}

class BridgeRequestError extends Error {
  constructor(readonly reply: BridgeReplyError) {
    super(reply.message);
  }
}

function refusal(code: BridgeReplyError['code'], message: string, retriable = false): BridgeRequestError {
  return new BridgeRequestError({ code, message, retriable });
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** kafkajs says a producer was fenced with these protocol error types. */
function isFencing(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return type === 'INVALID_PRODUCER_EPOCH' || type === 'PRODUCER_FENCED';
}

export function createBridgeService(options: BridgeServiceOptions, deps: BridgeServiceDeps): BridgeService {
  const log = deps.logger.child({ component: 'bridge' });
  const allowed = new Set(options.allowTopics);
  const sessions = new Map<string, Session>();
  const feeds = new Map<string, CommandFeed>();
  const stats: BridgeServiceStats = { sessions: 0, commits: 0, duplicatesDropped: 0, errors: {}, commandsForwarded: 0, commitBytes: 0, commitReadings: 0 };
  let closed = false;

  function checkTopic(topic: string): void {
    if (!allowed.has(topic)) {
      throw refusal('topic-not-allowed', `topic ${JSON.stringify(topic)} is not in the bridge's topics.allow (${[...allowed].join(', ')})`);
    }
  }

  function kafkaFailure(what: string, error: unknown): BridgeRequestError {
    if (isFencing(error)) return refusal('fenced', `${what}: the gateway's transactional id was taken over by a newer session (${errorText(error)})`, true);
    return refusal('kafka-unavailable', `${what}: Kafka did not confirm (${errorText(error)}); nothing was acknowledged`, true);
  }

  function endSession(session: Session): void {
    if (!session.current) return;
    session.current = false;
    if (sessions.get(session.gatewayId) === session) sessions.delete(session.gatewayId);
    // A hung producer may never finish disconnecting; its transaction is fenced by the next session anyway.
    void session.producer.close().catch(() => undefined);
  }

  async function open({ gatewayId, connectionId }: GatewayConnection, request: BridgeRequest): Promise<BridgeReply> {
    if (request.topic === null) throw refusal('bad-request', 'open: expected the topic the progress marker is stored under');
    checkTopic(request.topic);
    const ids = gatewayKafkaIds(gatewayId);
    const previous = sessions.get(gatewayId);
    if (previous) endSession(previous);
    const producer = deps.kafka.transactionalProducer({ transactionalId: ids.transactionalId, compression: options.kafkaCompression, transactionTimeoutMs: options.transactionTimeoutMs });
    const session: Session = { id: request.session, gatewayId, connectionId, producer, committed: null, chain: Promise.resolve(), current: true };
    sessions.set(gatewayId, session);
    try {
      // Registering the transactional id fences every earlier producer of this gateway and aborts its open transaction.
      await producer.connect();
      const marker = await deps.admin.fetchMarker(ids.progressGroup, request.topic, 0);
      session.committed = marker ? parseMarkerRanges(marker.metadata) : null;
    } catch (error) {
      endSession(session);
      throw kafkaFailure('open', error);
    }
    if (!session.current) throw refusal('fenced', 'open: a newer session of this gateway started meanwhile', true);
    log.info({ gatewayId, session: session.id }, 'gateway session opened');
    return okReply(request.id);
  }

  async function commit(session: Session, request: BridgeRequest): Promise<BridgeReply> {
    const ids = gatewayKafkaIds(session.gatewayId);
    for (const send of request.sends) {
      checkTopic(send.topic);
      for (const record of send.records) {
        const claimed = record.headers?.gateway_id;
        if (claimed !== undefined && claimed !== session.gatewayId) {
          throw refusal('gateway-id-mismatch', `a record on ${send.topic} names gateway ${JSON.stringify(claimed)}, but this login is ${JSON.stringify(session.gatewayId)}`);
        }
      }
    }
    const marker = request.marker;
    if (marker) {
      if (marker.groupId !== ids.progressGroup) throw refusal('group-not-allowed', `progress group ${JSON.stringify(marker.groupId)}: expected ${ids.progressGroup}`);
      checkTopic(marker.topic);
    }
    if (!session.current) throw refusal('fenced', 'commit: this session was replaced by a newer one of the same gateway', true);
    const { sends, dropped } = dropCommitted(request.sends, marker, session.committed);
    if (dropped > 0) {
      stats.duplicatesDropped += dropped;
      log.info({ gatewayId: session.gatewayId, dropped }, 'records Kafka had already committed dropped from a resent batch');
    }
    try {
      await session.producer.commit(sends, marker ?? undefined);
    } catch (error) {
      // The transaction may or may not have committed; the gateway re-reads the marker in a new session.
      endSession(session);
      throw kafkaFailure('commit', error);
    }
    if (marker) session.committed = rememberCommitted(session.committed, marker.metadata);
    stats.commits += 1;
    return okReply(request.id, { duplicatesDropped: dropped });
  }

  async function answer(connection: GatewayConnection, request: BridgeRequest): Promise<BridgeReply> {
    if (closed) throw refusal('closing', 'the bridge is stopping', true);
    const gatewayId = connection.gatewayId;
    switch (request.kind) {
      case 'open':
        return open(connection, request);
      case 'commit': {
        const session = sessions.get(gatewayId);
        if (!session || session.id !== request.session) throw refusal('fenced', 'commit: no open session of this gateway with that id (replaced, or the bridge restarted)', true);
        const run = session.chain.then(() => commit(session, request));
        session.chain = run.catch(() => undefined);
        return run;
      }
      case 'fetch-marker': {
        if (request.topic === null) throw refusal('bad-request', 'fetch-marker: expected a topic');
        checkTopic(request.topic);
        try {
          const marker = await deps.admin.fetchMarker(gatewayKafkaIds(gatewayId).progressGroup, request.topic, request.partition ?? 0);
          return okReply(request.id, { marker });
        } catch (error) {
          throw kafkaFailure('fetch-marker', error);
        }
      }
      case 'list-topics':
        try {
          return okReply(request.id, { topics: (await deps.admin.listTopics()).filter((t) => allowed.has(t)) });
        } catch (error) {
          throw kafkaFailure('list-topics', error);
        }
      case 'close': {
        const session = sessions.get(gatewayId);
        if (session && session.id === request.session) {
          session.current = false;
          sessions.delete(gatewayId);
          await session.chain;
          await session.producer.close().catch(() => undefined);
        }
        return okReply(request.id);
      }
      case 'command-stored': {
        const waiting = request.deliveryId === null ? undefined : feeds.get(gatewayId)?.waiting.get(request.deliveryId);
        waiting?.resolve();
        return okReply(request.id);
      }
    }
  }

  async function stopFeed(gatewayId: string): Promise<void> {
    const feed = feeds.get(gatewayId);
    if (!feed) return;
    feeds.delete(gatewayId);
    feed.stopped = true;
    for (const w of feed.waiting.values()) w.reject(new Error('gateway disconnected before storing the command'));
    feed.waiting.clear();
    await feed.consumer.close().catch((error: unknown) => log.warn({ gatewayId, err: errorText(error) }, 'command consumer did not close cleanly'));
  }

  function startFeed({ gatewayId, connectionId }: GatewayConnection): void {
    if (!options.commandsTopic || closed) return;
    const running = feeds.get(gatewayId);
    if (running) {
      // The gateway came back on a new connection before the old one was noticed gone: commands go
      // to its topic either way, so the feed (and its place in the group) carries on.
      running.connectionId = connectionId;
      return;
    }
    const ids = gatewayKafkaIds(gatewayId);
    const consumer = deps.kafka.consumer({ groupId: ids.commandGroup, topics: [options.commandsTopic], fromBeginning: true, maxWaitTimeMs: 250 });
    const feed: CommandFeed = { connectionId, consumer, waiting: new Map(), stopped: false };
    feeds.set(gatewayId, feed);
    /** Forwards one command and waits until the gateway says it is durable. */
    async function forward(record: ConsumedRecord): Promise<void> {
      const deliveryId = `${record.partition}:${record.offset}:${randomUUID().slice(0, 8)}`;
      const stored = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          feed.waiting.delete(deliveryId);
          reject(new Error(`gateway did not store command ${record.partition}:${record.offset} within ${options.commandStoreTimeoutMs} ms`));
        }, options.commandStoreTimeoutMs);
        feed.waiting.set(deliveryId, {
          resolve: () => {
            clearTimeout(timer);
            feed.waiting.delete(deliveryId);
            resolve();
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
      });
      await deps.publish(gatewayId, 'commands', encodeCommand({ deliveryId, value: record.value ?? Buffer.alloc(0), headers: record.headers }, options.commandCompression));
      await stored;
      stats.commandsForwarded += 1;
    }
    consumer
      .start(async (records) => {
        for (const record of records) {
          // The consumer group's offset moves past a batch only once this resolves: a command not
          // stored by the gateway is read again by its next feed.
          if (feed.stopped) throw new Error('command feed stopped');
          if (record.headers.gateway_id !== gatewayId) continue;
          await forward(record);
        }
      })
      .catch((error: unknown) => {
        log.warn({ gatewayId, err: errorText(error) }, 'command feed stopped');
        if (feeds.get(gatewayId) === feed) void stopFeed(gatewayId);
      });
  }

  return {
    async handleRequest(connection, payload) {
      const gatewayId = connection.gatewayId;
      let request: BridgeRequest;
      try {
        ({ request } = decodeRequest(payload));
        if (request.kind === 'commit') {
          stats.commitBytes += payload.length;
          stats.commitReadings += request.sends.reduce((n, s) => n + s.records.filter((r) => r.headers?.seq !== undefined).length, 0);
        }
      } catch (error) {
        stats.errors['bad-request'] = (stats.errors['bad-request'] ?? 0) + 1;
        log.warn({ gatewayId, err: errorText(error) }, 'undecodable request');
        return encodeReply(errorReply('', { code: 'bad-request', message: errorText(error), retriable: false }), 'none');
      }
      try {
        // Replies are a few dozen bytes: compressing them would only add bytes.
        return encodeReply(await answer(connection, request), 'none');
      } catch (error) {
        const reply: BridgeReplyError = error instanceof BridgeRequestError ? error.reply : { code: 'kafka-unavailable', message: errorText(error), retriable: true };
        stats.errors[reply.code] = (stats.errors[reply.code] ?? 0) + 1;
        log.warn({ gatewayId, kind: request.kind, code: reply.code, err: reply.message }, 'request refused');
        return encodeReply(errorReply(request.id, reply), 'none');
      }
    },
    commandsWanted: startFeed,
    connectionGone({ gatewayId, connectionId }) {
      const session = sessions.get(gatewayId);
      if (session?.connectionId === connectionId) endSession(session);
      if (feeds.get(gatewayId)?.connectionId === connectionId) void stopFeed(gatewayId);
    },
    stats: () => ({ ...stats, sessions: sessions.size, errors: { ...stats.errors } }),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...feeds.keys()].map(stopFeed));
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.all(open.map((s) => ((s.current = false), s.producer.close().catch(() => undefined))));
      await deps.admin.close().catch(() => undefined);
    },
  };
}
