/**
 * The gateway's link to the bridge service over MQTT: the only cloud-bridge file that imports mqtt.
 * It gives the uplink the same ports a Kafka connection does — a transactional producer and the
 * admin's progress lookup and probe — answered by the bridge, which holds the real Kafka producer. So
 * the uplink's exactly-once recovery works unchanged: each producer is a session on the bridge, and a
 * new one fences the old one in Kafka, whichever bridge instance either runs on.
 *
 * One connection at a time, to the first bridge URL that answers; when it drops, requests in flight
 * fail (the uplink recovers) and the link moves on to the next URL.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  bridgeTopic,
  decodeCommand,
  decodeReply,
  encodeRequest,
  type BridgeCompression,
  type BridgeErrorCode,
  type BridgeReply,
  type BridgeRequest,
} from './bridge-protocol.js';
import type { KafkaAdminPort, TransactionalProducerPort } from './kafka-client.js';

export interface BridgeLinkTls {
  /** PEM file of the CAs that sign the bridge's certificate; the system's CAs when absent. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  rejectUnauthorized: boolean;
}

export interface BridgeLinkOptions {
  gatewayId: string;
  /** mqtt:// or mqtts:// URLs of the bridge instances, tried in turn. */
  urls: readonly string[];
  username: string;
  password: string;
  tls?: BridgeLinkTls;
  compression: BridgeCompression;
  /** The gateway's telemetry topic: its progress marker is stored under it. */
  topic: string;
  keepaliveS: number;
  connectTimeoutMs: number;
  /** Wait before trying the next URL, doubled while none answers, up to reconnectMaxMs. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** A request not answered in this long is given up (the uplink's own operation timeout is usually shorter). */
  requestTimeoutMs: number;
}

export interface BridgeLinkStats {
  /** The bridge URL connected to, or null. */
  connectedUrl: string | null;
  /** Connections made, including the first. */
  connections: number;
  /** Commit requests published, and their bytes as they went on the MQTT wire (tag + compressed Avro). */
  commits: number;
  commitBytes: number;
  /** Records in those commits on the telemetry topic. */
  commitReadings: number;
}

export type BridgeAdminPort = Pick<KafkaAdminPort, 'fetchMarker' | 'listTopics' | 'close'>;

export interface BridgeLink {
  /** Starts connecting and returns at once; the bridge may be unreachable, and the link keeps trying. */
  start(): void;
  /** A fresh producer session: its connect() opens it on the bridge, fencing earlier ones. */
  producer(): TransactionalProducerPort;
  admin(): BridgeAdminPort;
  /** Delivers the commands the bridge forwards; one handler at a time. */
  onCommands(handler: ((value: Buffer, headers: Record<string, string>) => Promise<void>) | undefined): void;
  stats(): BridgeLinkStats;
  close(): Promise<void>;
}

export class BridgeError extends Error {
  readonly retriable: boolean;
  constructor(
    readonly code: BridgeErrorCode | 'bridge-unreachable' | 'bridge-timeout',
    message: string,
    retriable: boolean,
  ) {
    super(message);
    this.name = 'BridgeError';
    this.retriable = retriable;
  }
}

/** The bridge's password: given, or read from a file (its first line). */
export function readBridgePassword(source: { password?: string; passwordFile?: string }): string {
  if (source.password !== undefined) return source.password;
  if (source.passwordFile === undefined) throw new Error('uplink.bridge: expected password or passwordFile');
  try {
    return readFileSync(source.passwordFile, 'utf8').split(/\r?\n/)[0] ?? '';
  } catch (error) {
    throw new Error(`cannot read uplink.bridge.passwordFile ${source.passwordFile}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read the bridge TLS ${what} ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Longest close() waits for a command being stored. */
const COMMAND_CLOSE_WAIT_MS = 2000;

interface Pending {
  resolve(reply: BridgeReply): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export function createBridgeLink(options: BridgeLinkOptions, deps: { logger: Logger; random?: () => number }): BridgeLink {
  const log = deps.logger.child({ component: 'bridge-link' });
  const random = deps.random ?? Math.random;
  const replyTopic = bridgeTopic(options.gatewayId, 'reply');
  const requestTopic = bridgeTopic(options.gatewayId, 'request');
  const commandsTopic = bridgeTopic(options.gatewayId, 'commands');
  const tls = options.tls && {
    rejectUnauthorized: options.tls.rejectUnauthorized,
    ...(options.tls.caFile !== undefined ? { ca: readPem(options.tls.caFile, 'CA file') } : {}),
    ...(options.tls.certFile !== undefined ? { cert: readPem(options.tls.certFile, 'certificate') } : {}),
    ...(options.tls.keyFile !== undefined ? { key: readPem(options.tls.keyFile, 'key') } : {}),
  };
  const pending = new Map<string, Pending>();
  const linkId = randomUUID().slice(0, 8);
  let nextRequest = 0;
  let client: MqttClient | undefined;
  let ready = false;
  let urlIndex = 0;
  let backoffMs = options.reconnectMinMs;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let started = false;
  let closing: Promise<void> | undefined;
  let commandHandler: ((value: Buffer, headers: Record<string, string>) => Promise<void>) | undefined;
  /** Commands are stored one after another, in the order the bridge sent them. */
  let commandChain: Promise<void> = Promise.resolve();
  const stats: BridgeLinkStats = { connectedUrl: null, connections: 0, commits: 0, commitBytes: 0, commitReadings: 0 };

  function failPending(error: Error): void {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(error);
    }
  }

  function scheduleConnect(): void {
    if (closing || reconnectTimer) return;
    // Equal jitter: gateways that lost one bridge instance together do not all move in the same instant.
    const delayMs = backoffMs / 2 + random() * (backoffMs / 2);
    backoffMs = Math.min(options.reconnectMaxMs, backoffMs * 2);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect();
    }, delayMs);
  }

  function subscribeCommands(c: MqttClient): void {
    c.subscribe(commandsTopic, { qos: 1 }, (error) => {
      if (error) log.warn({ err: error.message }, 'could not subscribe to commands');
    });
  }

  function connect(): void {
    if (closing) return;
    const url = options.urls[urlIndex % options.urls.length]!;
    const c = mqtt.connect(url, {
      clientId: `reefer-gateway.${options.gatewayId}.${linkId}`,
      username: options.username,
      password: options.password,
      protocolVersion: 4,
      // Requests are not resent across connections: the uplink recovers and asks again.
      clean: true,
      keepalive: options.keepaliveS,
      connectTimeout: options.connectTimeoutMs,
      reconnectPeriod: 0,
      ...tls,
    });
    client = c;
    c.on('connect', () => {
      c.subscribe(replyTopic, { qos: 1 }, (error, granted) => {
        if (error || granted?.some((g) => g.qos === 128)) {
          log.error({ url, err: error?.message ?? 'subscription refused' }, 'bridge refused the reply subscription');
          c.end(true);
          return;
        }
        if (commandHandler) subscribeCommands(c);
        ready = true;
        backoffMs = options.reconnectMinMs;
        stats.connections += 1;
        stats.connectedUrl = url;
        log.info({ url }, 'connected to the bridge');
      });
    });
    c.on('message', (topic, payload) => {
      if (topic === replyTopic) onReply(payload);
      else if (topic === commandsTopic) onCommand(payload);
    });
    c.on('error', (error) => log.warn({ url, err: error.message }, 'bridge connection error'));
    c.on('close', () => {
      if (client !== c) return;
      const wasReady = ready;
      ready = false;
      client = undefined;
      stats.connectedUrl = null;
      c.end(true);
      failPending(new BridgeError('bridge-unreachable', `connection to the bridge ${url} closed before it answered`, true));
      if (wasReady && !closing) log.warn({ url }, 'bridge connection lost; trying the next bridge');
      // The next URL: a bridge instance that went away is skipped for the others.
      urlIndex += 1;
      scheduleConnect();
    });
  }

  function onReply(payload: Buffer): void {
    let reply: BridgeReply;
    try {
      reply = decodeReply(payload);
    } catch (error) {
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'undecodable reply from the bridge');
      return;
    }
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    clearTimeout(p.timer);
    if (reply.error) p.reject(new BridgeError(reply.error.code as BridgeErrorCode, `bridge: ${reply.error.message}`, reply.error.retriable));
    else p.resolve(reply);
  }

  function onCommand(payload: Buffer): void {
    const handler = commandHandler;
    if (!handler) return;
    let command: ReturnType<typeof decodeCommand>;
    try {
      command = decodeCommand(payload);
    } catch (error) {
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'undecodable command from the bridge');
      return;
    }
    commandChain = commandChain.then(async () => {
      // A command that could not be stored is tried again here, in order, before any later one.
      for (let attemptMs = options.reconnectMinMs; !closing; attemptMs = Math.min(options.reconnectMaxMs, attemptMs * 2)) {
        try {
          await handler(command.value, command.headers);
          break;
        } catch (error) {
          log.warn({ err: error instanceof Error ? error.message : String(error), retryInMs: attemptMs }, 'command not stored; trying again');
          await new Promise((resolve) => setTimeout(resolve, attemptMs));
        }
      }
      if (closing) return;
      await request({ kind: 'command-stored', session: '', deliveryId: command.deliveryId }).catch((error: unknown) =>
        // The bridge then feeds the command again; the downlink deduplicates it by its id.
        log.warn({ err: error instanceof Error ? error.message : String(error) }, 'bridge did not take the command acknowledgement'),
      );
    });
  }

  function request(fields: Partial<BridgeRequest> & Pick<BridgeRequest, 'kind' | 'session'>): Promise<BridgeReply> {
    const c = client;
    if (!c || !ready) return Promise.reject(new BridgeError('bridge-unreachable', `not connected to a bridge (${options.urls.join(', ')})`, true));
    nextRequest += 1;
    const id = `${linkId}-${nextRequest}`;
    const payload = encodeRequest({ id, sends: [], marker: null, topic: null, partition: null, deliveryId: null, ...fields }, options.compression);
    if (fields.kind === 'commit') {
      stats.commits += 1;
      stats.commitBytes += payload.length;
      stats.commitReadings += (fields.sends ?? []).filter((s) => s.topic === options.topic).reduce((n, s) => n + s.records.length, 0);
    }
    return new Promise<BridgeReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new BridgeError('bridge-timeout', `bridge did not answer ${fields.kind} within ${options.requestTimeoutMs} ms`, true));
      }, options.requestTimeoutMs);
      pending.set(id, { resolve, reject, timer });
      c.publish(requestTopic, payload, { qos: 1 }, (error) => {
        if (!error) return;
        const p = pending.get(id);
        if (!p) return;
        pending.delete(id);
        clearTimeout(p.timer);
        p.reject(new BridgeError('bridge-unreachable', `request not delivered to the bridge: ${error.message}`, true));
      });
    });
  }

  return {
    start() {
      if (started || closing) return;
      started = true;
      connect();
    },
    producer(): TransactionalProducerPort {
      const session = randomUUID();
      let opened = false;
      return {
        async connect() {
          await request({ kind: 'open', session, topic: options.topic });
          opened = true;
        },
        async commit(sends, marker) {
          await request({ kind: 'commit', session, sends: [...sends], marker: marker ?? null });
        },
        async close() {
          if (!opened) return;
          opened = false;
          // Best effort: a session left open is fenced by the next one anyway.
          await request({ kind: 'close', session }).catch(() => undefined);
        },
      };
    },
    admin(): BridgeAdminPort {
      return {
        async fetchMarker(_groupId, topic, partition) {
          // The bridge derives the group from the gateway's login; only the topic and partition travel.
          return (await request({ kind: 'fetch-marker', session: '', topic, partition })).marker;
        },
        async listTopics() {
          return (await request({ kind: 'list-topics', session: '' })).topics;
        },
        // The connection outlives the uplink's admin: the link closes with the gateway.
        close: async () => undefined,
      };
    },
    onCommands(handler) {
      commandHandler = handler;
      if (handler && client && ready) subscribeCommands(client);
    },
    stats: () => ({ ...stats }),
    close() {
      closing ??= (async () => {
        clearTimeout(reconnectTimer);
        reconnectTimer = undefined;
        // A command being stored finishes first, so its acknowledgement can still go; one that does
        // not finish in time is left for the bridge to feed again (the downlink drops the repeat).
        await Promise.race([commandChain.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, COMMAND_CLOSE_WAIT_MS).unref())]);
        const c = client;
        client = undefined;
        ready = false;
        failPending(new BridgeError('closing', 'the bridge link is closing', true));
        if (!c) return;
        await new Promise<void>((resolve) => {
          // A graceful end on a dead connection never calls back.
          const timer = setTimeout(() => {
            c.end(true);
            resolve();
          }, 2000);
          c.end(!c.connected, () => {
            clearTimeout(timer);
            resolve();
          });
        });
      })();
      return closing;
    },
  };
}

/**
 * Where the gateway's commands come from, as the gateway's downlink takes it (its CommandSource;
 * declared here too because cloud-bridge does not import the gateway).
 */
export interface BridgeCommandSource {
  start(store: (value: Buffer, headers: Record<string, string>) => Promise<void>): void;
  close(): Promise<void>;
}

/**
 * The gateway's commands through the bridge (uplink mode `mqtt`): the bridge consumes
 * `reefer-commands` for this gateway while the link is up, forwards each command addressed to it, and
 * moves the consumer group past it only after `store` resolved here.
 */
export function createBridgeCommandSource(link: Pick<BridgeLink, 'onCommands'>): BridgeCommandSource {
  let started = false;
  return {
    start(store) {
      if (started) return;
      started = true;
      link.onCommands(store);
    },
    async close() {
      if (!started) return;
      started = false;
      link.onCommands(undefined);
    },
  };
}
