/**
 * The gateway as a client of a site's own MQTT broker (Mosquitto, or anything serving MQTT 5 devices):
 * the only gateway file that imports mqtt. It holds a persistent session, so the broker queues
 * readings while the gateway is away, and acknowledges each QoS 1 message only once the reading is
 * durable; a message that could not be stored is left unacknowledged and the connection dropped, so
 * the broker delivers it again. Up to maxInFlight messages are stored at once, so they share the
 * outbox's commits, and their acknowledgements leave in the order the messages came.
 */
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';

export interface UpstreamClientOptions {
  /** mqtt://host[:port] or mqtts://host[:port], without credentials. */
  url: string;
  /** Names the persistent session; must not change across restarts. */
  clientId: string;
  username?: string;
  password?: string;
  /** 4 is MQTT 3.1.1, 5 is MQTT 5. */
  protocolVersion: 4 | 5;
  topics: readonly string[];
  qos: 1;
  keepaliveS: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** MQTT 5 only: how long the broker keeps the session while the gateway is disconnected. */
  sessionExpiryS: number;
  /** Messages being stored at once, so they share commits; sent to MQTT 5 brokers as Receive Maximum. */
  maxInFlight: number;
  /** Time allowed from opening the socket to CONNACK; 10,000 ms by default. */
  connectTimeoutMs?: number;
  /** Time close() waits for a clean DISCONNECT before dropping the socket; 5,000 ms by default. */
  closeTimeoutMs?: number;
}

export interface UpstreamMessage {
  topic: string;
  payload: Buffer;
  /** The container the topic names, when it is reefer/<id>/telemetry. */
  containerId?: string;
  /** Broker and topic, e.g. mqtt://broker:1883/reefer/C01/telemetry. */
  source: string;
}

export interface UpstreamClientDeps {
  logger: Logger;
  /** Settles once the message is durable (accepted or dead-lettered); a rejection means it was not stored. */
  onTelemetry(message: UpstreamMessage): Promise<void>;
  /** Jitter source, [0, 1). */
  random?: () => number;
}

export interface UpstreamStatus {
  broker: string;
  clientId: string;
  /** up: connected with its subscriptions in place. */
  state: 'up' | 'down';
  /** Messages made durable and acknowledged. */
  messagesIn: number;
  /** Messages that could not be stored and were left for the broker to deliver again. */
  storeFailures: number;
  /** Messages the broker delivered again after a connection was lost before they were acknowledged. */
  redelivered: number;
  /** Connections re-established after one was lost. */
  reconnects: number;
  lastError: string | null;
}

export interface UpstreamClient {
  /** Starts connecting and returns at once; the broker may be unreachable, and the client keeps trying. */
  start(): void;
  status(): UpstreamStatus;
  /** Stops taking messages, lets those being stored finish and be acknowledged, then disconnects. */
  close(): Promise<void>;
}

const TELEMETRY_TOPIC = /^reefer\/([^/]+)\/telemetry$/;
const ACK_DEFERRED = new Error('acknowledged once stored');
const NOT_TAKING = new Error('not taking messages');

interface Delivery {
  /** Absent at QoS 0, which has nothing to acknowledge. */
  messageId: number | undefined;
  outcome: 'stored' | 'failed' | undefined;
}

export function createUpstreamClient(options: UpstreamClientOptions, deps: UpstreamClientDeps): UpstreamClient {
  const url = new URL(options.url);
  const broker = `${url.protocol}//${url.host}`;
  const log = deps.logger.child({ component: 'upstream', broker, clientId: options.clientId });
  const random = deps.random ?? Math.random;

  let client: MqttClient | undefined;
  let state: UpstreamStatus['state'] = 'down';
  let messagesIn = 0;
  let storeFailures = 0;
  let redelivered = 0;
  let reconnects = 0;
  let lastError: string | null = null;
  let everConnected = false;
  let subscribedOnce = false;
  /**
   * Bumped when a connection closes: an acknowledgement belongs to the connection that delivered the
   * message. (Messages may arrive before MQTT.js emits 'connect', so the count does not move then.)
   */
  let connection = 0;
  /** The connection on which a message could not be stored; nothing more is acknowledged on it. */
  let failedConnection = -1;
  let backoffMs = options.reconnectMinMs;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  const storing = new Set<Promise<void>>();
  /** Messages of the current connection in the order received, until each is acknowledged. */
  let unacknowledged: Delivery[] = [];
  /** MQTT.js reads the next message only once this is called: holding it is the backpressure. */
  let resumeReading: (() => void) | undefined;

  const noteError = (error: unknown): string => (lastError = error instanceof Error ? error.message : String(error));

  function healthy(): void {
    backoffMs = options.reconnectMinMs;
  }

  function scheduleReconnect(): void {
    if (closing || reconnectTimer || !client) return;
    // Equal jitter: gateways that lost one broker together do not all come back in the same instant.
    const delayMs = backoffMs / 2 + random() * (backoffMs / 2);
    backoffMs = Math.min(options.reconnectMaxMs, backoffMs * 2);
    log.debug({ retryInMs: Math.round(delayMs) }, 'reconnecting');
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      if (!closing) client?.reconnect();
    }, delayMs);
  }

  function subscribe(c: MqttClient): void {
    const filters = Object.fromEntries(options.topics.map((topic) => [topic, { qos: options.qos }]));
    c.subscribe(filters, (error, granted) => {
      if (error) {
        log.error({ err: noteError(error) }, 'subscription failed; reconnecting');
        c.stream.destroy();
        return;
      }
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) log.error({ err: noteError(`broker refused ${refused.join(', ')}`) }, 'subscription refused');
      subscribedOnce = true;
      state = 'up';
      healthy();
      log.info({ topics: options.topics }, 'subscribed');
    });
  }

  function resume(): void {
    const go = resumeReading;
    resumeReading = undefined;
    go?.();
  }

  /**
   * [MQTT-4.6.0-2]: PUBACKs leave in the order the messages arrived, so one still being stored holds
   * back those after it. The packet is written directly: MQTT.js acknowledges only from inside
   * handleMessage, which would store one message at a time, one commit each.
   */
  function acknowledgeInOrder(): void {
    const c = client;
    while (unacknowledged[0]?.outcome === 'stored') {
      const { messageId } = unacknowledged.shift()!;
      // [MQTT-3.4.1]: fixed header 0x40, remaining length 2, packet identifier. MQTT 5 leaves out the
      // reason code and properties when the reason is success (3.4.2.1).
      if (messageId !== undefined && c?.connected) c.stream.write(Buffer.from([0x40, 0x02, messageId >> 8, messageId & 0xff]));
    }
    if (unacknowledged.length < options.maxInFlight) resume();
  }

  function handleMessage(packet: IPublishPacket, callback: (error?: Error) => void): void {
    const on = connection;
    if (closing || failedConnection === on) {
      // Left unacknowledged: the session keeps it and the broker delivers it again.
      callback(NOT_TAKING);
      return;
    }
    if (packet.dup) redelivered += 1;
    const topic = packet.topic;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const containerId = TELEMETRY_TOPIC.exec(topic)?.[1];
    const delivery: Delivery = { messageId: packet.qos > 0 ? packet.messageId : undefined, outcome: undefined };
    unacknowledged.push(delivery);
    const stored = deps.onTelemetry({ topic, payload, containerId, source: `${broker}/${topic}` }).then(
      () => {
        messagesIn += 1;
        healthy();
        delivery.outcome = 'stored';
        if (on === connection) acknowledgeInOrder();
      },
      (error: unknown) => {
        storeFailures += 1;
        delivery.outcome = 'failed';
        log.error({ err: noteError(error), topic }, 'reading not stored; not acknowledged, dropping the connection so the broker delivers it again');
        if (on === connection) {
          failedConnection = on;
          client?.stream.destroy();
        }
      },
    );
    storing.add(stored);
    void stored.finally(() => storing.delete(stored));
    // The error only tells MQTT.js not to send its own PUBACK.
    if (unacknowledged.length < options.maxInFlight) callback(ACK_DEFERRED);
    else resumeReading = () => callback(ACK_DEFERRED);
  }

  return {
    start() {
      if (client || closing) return;
      const c = mqtt.connect(options.url, {
        clientId: options.clientId,
        username: options.username,
        password: options.password,
        protocolVersion: options.protocolVersion,
        // The session, with its subscriptions and the readings queued for it, outlives the connection.
        clean: false,
        properties: options.protocolVersion === 5 ? { sessionExpiryInterval: options.sessionExpiryS, receiveMaximum: options.maxInFlight } : undefined,
        keepalive: options.keepaliveS,
        connectTimeout: options.connectTimeoutMs ?? 10_000,
        // MQTT.js retries at a fixed period; the backoff here grows and is jittered.
        reconnectPeriod: 0,
        // Subscriptions are renewed here, only when the broker lost the session.
        resubscribe: false,
      });
      client = c;
      // customHandleAcks only takes effect at MQTT 5; handleMessage runs before the PUBACK at either version.
      c.handleMessage = handleMessage;
      c.on('connect', (connack) => {
        if (everConnected) reconnects += 1;
        everConnected = true;
        // Subscribing again to a filter the session already holds makes the broker resend retained
        // messages [MQTT-3.8.4-3]: renew only on the first connection (the configured topics may have
        // changed) or when the broker has no session.
        if (!subscribedOnce || !connack.sessionPresent) {
          subscribe(c);
        } else {
          state = 'up';
        }
        log.info({ sessionPresent: connack.sessionPresent, reconnects }, 'connected');
      });
      c.on('packetreceive', (packet) => {
        // A broker that accepts the connection and then drops it (another client with this id, say)
        // must not be reconnected to at the shortest delay forever: the backoff resets only on signs
        // of a working connection (a keep-alive answer, a SUBACK, a stored message), not on CONNACK.
        if (packet.cmd === 'pingresp') healthy();
      });
      c.on('close', () => {
        // Their acknowledgements cannot be sent now; the broker delivers them again on the next connection.
        connection += 1;
        unacknowledged = [];
        resume();
        if (state === 'up' && !closing) log.warn('connection lost');
        state = 'down';
        scheduleReconnect();
      });
      c.on('error', (error) => {
        log.warn({ err: noteError(error) }, 'upstream broker error');
      });
    },
    status: () => ({ broker, clientId: options.clientId, state, messagesIn, storeFailures, redelivered, reconnects, lastError }),
    close() {
      closing ??= (async () => {
        clearTimeout(reconnectTimer);
        reconnectTimer = undefined;
        await Promise.allSettled([...storing]);
        const c = client;
        if (!c) return;
        await new Promise<void>((resolve) => {
          // A graceful end on a dead connection never calls back.
          const timer = setTimeout(() => {
            c.stream.destroy();
            resolve();
          }, options.closeTimeoutMs ?? 5_000);
          c.end(!c.connected, () => {
            clearTimeout(timer);
            resolve();
          });
        });
        state = 'down';
        log.info({ messagesIn, reconnects }, 'upstream closed');
      })();
      return closing;
    },
  };
}
