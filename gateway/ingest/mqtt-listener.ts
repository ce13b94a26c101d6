/**
 * The embedded MQTT broker devices publish to: the only file that imports aedes. A telemetry publish
 * is handed to the pipeline before the broker acknowledges it, so a QoS 1 PUBACK (or QoS 2 PUBREC)
 * leaves only once the reading is durable.
 *
 * It is also the gateway's front door: it checks who connects (mqtt-auth.ts), what each device may
 * publish and subscribe to, and the input limits (mqtt-limits.ts). Every refusal is counted and
 * logged without secrets.
 */
import './quiet-packet-debug.js';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createMqttAuthenticator, mayPublish, maySubscribe, parseCredentialsFile, type AuthRefusal, type MqttIdentity, type MqttUser } from './mqtt-auth.js';
import { checkTopic, createLogThrottle, createPacketSizeGuard, createRateLimiter, type PacketSizeGuard, type TopicRefusal } from './mqtt-limits.js';

export interface MqttTlsOptions {
  /** 0 lets the OS choose. */
  port: number;
  /** PEM files. */
  certFile: string;
  keyFile: string;
  /** CAs that sign device certificates; needed when they are required. */
  caFile?: string;
  /** The TLS handshake fails without a device certificate signed by caFile. */
  requireClientCert: boolean;
  /** The plain listener, if any, refuses every device (counted as tls-required). */
  required: boolean;
}

export interface MqttAuthConfig {
  allowAnonymous: boolean;
  users: readonly MqttUser[];
  /** More users, read once at start; see parseCredentialsFile. */
  usersFile?: string;
}

export interface MqttLimits {
  maxConnections: number;
  maxPacketBytes: number;
  maxTopicBytes: number;
  maxTopicLevels: number;
  /** Per client id; 0 turns the rate limit off. */
  readingsPerSecond: number;
  readingsBurst: number;
  /** A publish over the rate is held back at most this long, then refused. */
  maxThrottleMs: number;
}

export interface MqttListenerOptions {
  host: string;
  /** Plain TCP; 0 lets the OS choose, null for no plain listener. */
  port: number | null;
  tls?: MqttTlsOptions;
  auth: MqttAuthConfig;
  limits: MqttLimits;
}

export interface TelemetryPublish {
  containerId: string;
  topic: string;
  payload: Buffer;
  clientId: string;
}

export interface MqttListenerDeps {
  logger: Logger;
  /**
   * Settles once the publish is durable (accepted or dead-lettered). A rejection means it could not
   * be stored: the device is not acknowledged and its connection is closed, so it sends again.
   */
  onTelemetry(publish: TelemetryPublish): Promise<unknown>;
  onClientCountChange?(connected: number): void;
  now?(): number;
  /** A device subscribed to its own `reefer/<containerId>/commands`: what waits for it can be sent now. */
  onCommandSubscribe?(containerId: string, clientId: string): void;
  /** A device acknowledged (PUBACK) a command published to it with publishCommand. */
  onCommandDelivered?(containerId: string, payload: Buffer, clientId: string): void;
  /**
   * A device published on `reefer/<containerId>/commands/ack`. The device gets its PUBACK once this
   * settles; a rejection closes its connection, so it sends the acknowledgement again.
   */
  onCommandAck?(ack: { containerId: string; payload: Buffer; clientId: string }): Promise<void>;
}

export type MqttRefusal =
  | AuthRefusal
  | TopicRefusal
  | 'tls-required'
  | 'tls-handshake'
  | 'publish-denied'
  | 'subscribe-denied'
  | 'rate-limited'
  | 'too-many-connections'
  | 'packet-too-large';

export interface MqttSecurityStatus {
  /** Connections, publishes and subscriptions refused, by reason. */
  refused: Partial<Record<MqttRefusal, number>>;
  refusedTotal: number;
  /** Publishes held back by the rate limit and then taken. */
  throttled: number;
  /** Open TCP connections, on both listeners, logged in or not. */
  connections: number;
}

export interface MqttListener {
  start(): Promise<void>;
  /** The plain port bound, once started; 0 when there is none. */
  port(): number;
  /** The TLS port bound, once started; 0 when there is none. */
  tlsPort(): number;
  connectedClients(): number;
  security(): MqttSecurityStatus;
  close(): Promise<void>;
  /**
   * Publishes a command at QoS 1 to whoever is subscribed to `reefer/<containerId>/commands`; a device
   * that is not subscribed does not get it (onCommandSubscribe says when to try again).
   */
  publishCommand(containerId: string, payload: Buffer): Promise<void>;
}

const TELEMETRY_TOPIC = /^reefer\/([^/]+)\/telemetry$/;
const COMMANDS_TOPIC = /^reefer\/([^/+#]+)\/commands$/;
const COMMAND_ACK_TOPIC = /^reefer\/([^/]+)\/commands\/ack$/;
/** One log line per refusal reason per this interval; the counts keep every one. */
const REFUSAL_LOG_INTERVAL_MS = 1000;
/** A device that opens a TLS connection and never finishes the handshake holds a slot this long. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

type Listener = 'plain' | 'tls';

/**
 * aedes writes packets with mqtt-packet, which by default fills a cache of 65,536 two-byte buffers
 * (one per packet id) on its first write: ~7 MB of heap, a tenth of the gateway's with 2,000 devices
 * connected, to save allocating 2 bytes per acknowledgement. The copy switched off is the one aedes
 * itself resolves, so this holds whichever version it depends on.
 */
function dropPacketIdCache(): void {
  const aedesRequire = createRequire(import.meta.resolve('aedes'));
  const mqttPacket = aedesRequire('mqtt-packet') as { writeToStream: { cacheNumbers: boolean } };
  mqttPacket.writeToStream.cacheNumbers = false;
}

/**
 * Puts the packet-size guard between a device's socket and aedes. aedes takes what the socket has
 * buffered with read(), and so does the socket's own flowing mode: every chunk passes the guard
 * first, and a packet announcing more than the limit closes the connection before aedes buffers any
 * of it. (A Duplex wrapping the socket did the same with one more stream a connection: ~1.3 KB of
 * heap a device, and a second stream to pass for every acknowledgement written.)
 */
function guardReads(socket: Socket | TLSSocket, guard: PacketSizeGuard, onTooLarge: (packetBytes: number) => void): void {
  const read = socket.read;
  socket.read = function guardedRead(this: Socket, size?: number): unknown {
    const chunk = read.call(this, size) as Buffer | null;
    if (chunk === null) return chunk;
    const scan = guard.push(chunk);
    if (scan.ok) return chunk;
    if (scan.reason === 'packet-too-large') onTooLarge(scan.packetBytes);
    this.destroy();
    return null;
  };
}

/** User names and client ids are the client's to choose, and so are their lengths: logs get a bounded piece. */
function shown(text: string | undefined): string | undefined {
  return text !== undefined && text.length > 128 ? `${text.slice(0, 128)}…` : text;
}

function authError(message: string, returnCode: 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read the MQTT TLS ${what} ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function loadUsers(auth: MqttAuthConfig): MqttUser[] {
  if (auth.usersFile === undefined) return [...auth.users];
  let text: string;
  try {
    text = readFileSync(auth.usersFile, 'utf8');
  } catch (error) {
    throw new Error(`cannot read mqtt.auth.usersFile ${auth.usersFile}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const parsed = parseCredentialsFile(text);
  const inline = new Set(auth.users.map((u) => u.username));
  for (const user of parsed.users) if (inline.has(user.username)) parsed.problems.push(`user ${user.username} is also in mqtt.auth.users`);
  if (parsed.problems.length > 0) throw new Error(`mqtt.auth.usersFile ${auth.usersFile}:\n  ${parsed.problems.join('\n  ')}`);
  return [...auth.users, ...parsed.users];
}

export function createMqttListener(options: MqttListenerOptions, deps: MqttListenerDeps): MqttListener {
  const log = deps.logger.child({ component: 'mqtt' });
  const now = deps.now ?? Date.now;
  const limits = options.limits;
  const limiter = createRateLimiter({
    ratePerSecond: limits.readingsPerSecond,
    burst: limits.readingsBurst,
    maxDelayMs: limits.maxThrottleMs,
    maxKeys: Math.max(1024, 2 * limits.maxConnections),
  });
  const logThrottle = createLogThrottle(REFUSAL_LOG_INTERVAL_MS);
  const refused: Partial<Record<MqttRefusal, number>> = {};
  let refusedTotal = 0;
  let throttled = 0;
  const identities = new WeakMap<Client, MqttIdentity>();
  const connections = new WeakMap<object, { listener: Listener; remoteAddress: string | undefined }>();
  const sockets = new Set<Socket>();
  /** Publishes held back by the rate limit; released with an error when the broker closes. */
  const held = new Map<NodeJS.Timeout, (error?: Error | null) => void>();
  let broker: Aedes | undefined;
  let plainServer: Server | undefined;
  let tlsGate: Server | undefined;
  let plainPort = 0;
  let tlsPort = 0;
  let clients = 0;
  /** Devices subscribed to each container's commands topic. */
  const commandSubscribers = new Map<string, Set<Client>>();
  /** Per device, the containers whose commands it subscribed to, with the QoS granted. */
  const subscribedTo = new WeakMap<Client, Map<string, number>>();
  /** Commands published to a device at QoS 1, in order, until its PUBACK. */
  const awaitingPuback = new WeakMap<Client, { containerId: string; payload: Buffer }[]>();

  /** Records a subscription to a container's commands at `qos`, or its end (null). */
  function commandSubscription(client: Client, containerId: string, qos: number | null): void {
    const clients = commandSubscribers.get(containerId) ?? new Set<Client>();
    const containers = subscribedTo.get(client) ?? new Map<string, number>();
    if (qos !== null) {
      clients.add(client);
      containers.set(containerId, qos);
      commandSubscribers.set(containerId, clients);
      subscribedTo.set(client, containers);
      return;
    }
    clients.delete(client);
    containers.delete(containerId);
    if (clients.size === 0) commandSubscribers.delete(containerId);
  }
  /**
   * Whether telemetry is routed on to subscribers: once anything other than a device's own commands
   * is subscribed to (only anonymous clients may), from then on. Until then nothing can match it.
   */
  let routeTelemetry = false;
  /** Sockets corked while this tick's acknowledgements are written; uncorked together on the next tick. */
  const corked = new Set<Writable>();
  /** A subscription granted or restored: a device's own commands, or anything else, after which telemetry is routed. */
  function subscribed(client: Client, topic: string, qos: number): void {
    const match = COMMANDS_TOPIC.exec(topic);
    if (!match) {
      routeTelemetry = true;
      return;
    }
    commandSubscription(client, match[1]!, qos);
    deps.onCommandSubscribe?.(match[1]!, client.id);
  }
  /** Per client, settles once its last held publish was handed on. */
  const gates = new WeakMap<Client, Promise<void>>();
  let closing: Promise<void> | undefined;

  /** Counts a refusal and logs it, at most once a second per reason. Never given a password. */
  function refuse(reason: MqttRefusal, fields: Record<string, unknown>): void {
    refused[reason] = (refused[reason] ?? 0) + 1;
    refusedTotal += 1;
    const { log: shouldLog, suppressed } = logThrottle.admit(reason, now());
    if (shouldLog) log.warn({ reason, ...fields, ...(suppressed > 0 ? { alsoRefusedSinceLastLine: suppressed } : {}) }, 'MQTT refused');
  }

  function whoIs(client: Client): Record<string, unknown> {
    const identity = identities.get(client);
    return {
      clientId: shown(client.id),
      ...(identity?.kind === 'user' ? { username: identity.username } : {}),
      remoteAddress: connections.get(client.conn)?.remoteAddress,
    };
  }

  /** Admits a new TCP connection, on either listener, up to the limit. */
  function admit(socket: Socket): boolean {
    if (sockets.size >= limits.maxConnections) {
      refuse('too-many-connections', { remoteAddress: socket.remoteAddress, maxConnections: limits.maxConnections });
      socket.destroy();
      return false;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return true;
  }

  function hand(socket: Socket | TLSSocket, listener: Listener): void {
    const b = broker;
    if (!b || closing) {
      socket.destroy();
      return;
    }
    guardReads(socket, createPacketSizeGuard(limits.maxPacketBytes), (packetBytes) =>
      refuse('packet-too-large', { remoteAddress: socket.remoteAddress, packetBytes, maxPacketBytes: limits.maxPacketBytes }),
    );
    connections.set(socket, { listener, remoteAddress: socket.remoteAddress });
    b.handle(socket);
  }

  function authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    // Only the wills of a dead aedes instance in a cluster come without a client; the gateway runs one.
    if (!client) {
      callback(null);
      return;
    }
    const topicProblem = checkTopic(packet.topic, limits);
    if (topicProblem) {
      refuse(topicProblem, { ...whoIs(client), topicBytes: Buffer.byteLength(packet.topic) });
      callback(new Error(topicProblem));
      return;
    }
    const identity = identities.get(client);
    // Commands come from the gateway alone: a device publishing there would command itself or another.
    if (!identity || !mayPublish(identity, packet.topic) || COMMANDS_TOPIC.test(packet.topic)) {
      refuse('publish-denied', { ...whoIs(client), topic: packet.topic });
      callback(new Error('publish-denied'));
      return;
    }
    const decision = limiter.reserve(client.id, now());
    if (!decision.ok) {
      refuse('rate-limited', { ...whoIs(client), readingsPerSecond: limits.readingsPerSecond });
      callback(new Error('rate-limited'));
      return;
    }
    const waiting = gates.get(client);
    if (decision.waitMs === 0 && !waiting) {
      take(client, packet, callback);
      return;
    }
    if (decision.waitMs > 0) throttled += 1;
    const dueMs = now() + decision.waitMs;
    // aedes reads no more from this client until its packets are settled: holding one back slows
    // the device down through TCP, without buffering what it sends meanwhile. A publish never
    // overtakes one held before it, or a container's readings would reach Kafka out of order.
    const gate = (waiting ?? Promise.resolve()).then(
      () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            held.delete(timer);
            resolve();
            if (client.closed) callback(new Error('connection closed'));
            else take(client, packet, callback);
          }, Math.max(0, dueMs - now()));
          held.set(timer, callback);
        }),
    );
    gates.set(client, gate);
    void gate.then(() => {
      if (gates.get(client) === gate) gates.delete(client);
    });
  }

  function take(client: Client, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    const ack = COMMAND_ACK_TOPIC.exec(packet.topic);
    if (ack && deps.onCommandAck) {
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      deps.onCommandAck({ containerId: ack[1]!, payload, clientId: client.id }).then(
        () => callback(null),
        (error: unknown) => {
          log.error({ err: error instanceof Error ? error.message : String(error), clientId: client.id }, 'command acknowledgement not stored; device not acknowledged');
          callback(error instanceof Error ? error : new Error(String(error)));
        },
      );
      return;
    }
    const match = TELEMETRY_TOPIC.exec(packet.topic);
    if (!match) {
      callback(null);
      return;
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    deps.onTelemetry({ containerId: match[1]!, topic: packet.topic, payload, clientId: client.id }).then(
      () => acknowledge(client, callback),
      (error: unknown) => {
        log.error({ err: error instanceof Error ? error.message : String(error), clientId: client.id }, 'reading not stored; device not acknowledged');
        callback(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /**
   * Lets aedes write the PUBACK (or PUBREC) of a durable reading, into a corked socket: the readings
   * of one group commit settle in the same tick, so a device's acknowledgements leave in one write
   * instead of one system call each.
   */
  function acknowledge(client: Client, callback: (error?: Error | null) => void): void {
    const conn = client.conn as Writable;
    if (!corked.has(conn)) {
      if (corked.size === 0) process.nextTick(uncorkAll);
      conn.cork();
      corked.add(conn);
    }
    callback(null);
  }

  function uncorkAll(): void {
    for (const conn of corked) conn.uncork();
    corked.clear();
  }

  /**
   * aedes hands every publish on to its subscribers after authorizePublish: a copy of the packet, two
   * topic matches and two promises, more than the rest of the MQTT work for a reading. Telemetry is
   * taken in authorizePublish already, and while nothing but commands is subscribed to no one can
   * receive it: it skips the routing. A retained publish does not, so a later subscriber gets it.
   */
  function skipTelemetryRouting(b: Aedes): void {
    type Publish = (packet: PublishPacket, client: Client | null, done?: (error?: Error | null) => void) => void;
    const route = (b.publish as unknown as Publish).bind(b);
    const publish: Publish = (packet, client, done) => {
      if (!routeTelemetry && client !== null && typeof client === 'object' && typeof done === 'function' && !packet.retain && TELEMETRY_TOPIC.test(packet.topic)) {
        done(null);
        return;
      }
      route(packet, client, done);
    };
    (b as unknown as { publish: Publish }).publish = publish;
  }

  /** A refused subscription gets the failure code 0x80 in its SUBACK [MQTT-3.9.3]; the connection stays. */
  function authorizeSubscribe(client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void {
    const topicProblem = checkTopic(subscription.topic, limits);
    if (topicProblem) {
      refuse(topicProblem, { ...whoIs(client), topicBytes: Buffer.byteLength(subscription.topic) });
      callback(null, null);
      return;
    }
    const identity = identities.get(client);
    if (!identity || !maySubscribe(identity, subscription.topic)) {
      refuse('subscribe-denied', { ...whoIs(client), topic: subscription.topic });
      callback(null, null);
      return;
    }
    callback(null, subscription);
  }

  return {
    async start() {
      const tls = options.tls;
      const auth = createMqttAuthenticator({ allowAnonymous: options.auth.allowAnonymous, users: loadUsers(options.auth) });
      const tlsContext = tls && {
        cert: readPem(tls.certFile, 'certificate'),
        key: readPem(tls.keyFile, 'key'),
        ca: tls.caFile === undefined ? undefined : readPem(tls.caFile, 'CA file'),
      };

      function authenticate(
        client: Client,
        username: string | undefined,
        password: Buffer | undefined,
        done: (error: AuthenticateError | null, success: boolean | null) => void,
      ): void {
        const remoteAddress = connections.get(client.conn)?.remoteAddress;
        if (tls?.required && connections.get(client.conn)?.listener === 'plain') {
          refuse('tls-required', { clientId: shown(client.id), username: shown(username), remoteAddress });
          done(authError('TLS required', 5), false);
          return;
        }
        auth.authenticate(username, password).then(
          (outcome) => {
            if (outcome.ok) {
              identities.set(client, outcome.identity);
              done(null, true);
              return;
            }
            refuse(outcome.reason, { clientId: shown(client.id), username: shown(username), remoteAddress });
            done(authError(outcome.reason, outcome.returnCode), false);
          },
          (error: unknown) => {
            log.error({ err: error instanceof Error ? error.message : String(error), clientId: client.id }, 'could not check credentials');
            done(authError('could not check credentials', 5), false);
          },
        );
      }

      dropPacketIdCache();
      const b = await Aedes.createBroker({ authenticate, authorizePublish, authorizeSubscribe });
      broker = b;
      b.on('client', () => {
        clients += 1;
        deps.onClientCountChange?.(clients);
      });
      b.on('clientDisconnect', () => {
        clients -= 1;
        deps.onClientCountChange?.(clients);
      });
      skipTelemetryRouting(b);
      b.on('subscribe', (subscriptions, client) => {
        // aedes reports refused subscriptions too, with the failure code as their QoS.
        for (const sub of subscriptions) if ((sub.qos as number) !== 128) subscribed(client, sub.topic, sub.qos);
      });
      // A device with a persistent session gets its subscriptions back without subscribing again.
      b.on('clientReady', (client) => {
        const restored = (client as unknown as { subscriptions?: Record<string, { qos?: number }> }).subscriptions ?? {};
        for (const [topic, sub] of Object.entries(restored)) subscribed(client, topic, sub.qos ?? 0);
      });
      b.on('unsubscribe', (topics, client) => {
        for (const topic of topics) {
          const match = COMMANDS_TOPIC.exec(topic);
          if (match) commandSubscription(client, match[1]!, null);
        }
      });
      b.on('clientDisconnect', (client) => {
        for (const containerId of [...(subscribedTo.get(client)?.keys() ?? [])]) commandSubscription(client, containerId, null);
      });
      b.on('ack', (packet: PublishPacket | { cmd: string } | undefined, client) => {
        const queue = awaitingPuback.get(client);
        if (!queue || queue.length === 0) return;
        // aedes keeps the packet a PUBACK answers only for persistent sessions; devices with clean
        // sessions acknowledge QoS 1 publishes in the order they got them [MQTT-4.6.0-2].
        let index = 0;
        if (packet?.cmd === 'publish') {
          const p = packet as PublishPacket;
          index = queue.findIndex((q) => p.topic === `reefer/${q.containerId}/commands` && Buffer.from(p.payload).equals(q.payload));
          if (index < 0) return;
        }
        const [delivered] = queue.splice(index, 1);
        if (delivered) deps.onCommandDelivered?.(delivered.containerId, delivered.payload, client.id);
      });
      b.on('clientError', (client, error) => {
        // aedes refuses topics past its own ceiling of 100 levels before asking authorizePublish.
        if (error.message === 'topic has too many levels') refuse('topic-too-deep', whoIs(client));
        else log.debug({ clientId: client.id, err: error.message }, 'client error');
      });

      if (options.port !== null) {
        const srv = createServer((socket) => {
          if (admit(socket)) hand(socket, 'plain');
        });
        plainServer = srv;
        plainPort = await listen(srv, options.port, options.host);
        log.info({ host: options.host, port: plainPort }, 'MQTT listening');
      }
      if (tls && tlsContext) {
        const secure: TlsServer = createTlsServer(
          {
            ...tlsContext,
            requestCert: tls.requireClientCert,
            rejectUnauthorized: tls.requireClientCert,
            handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
            minVersion: 'TLSv1.2',
          },
          (socket) => hand(socket, 'tls'),
        );
        secure.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
          refuse('tls-handshake', { remoteAddress: socket.remoteAddress, err: error.code ?? error.message });
        });
        // Connections are admitted before the handshake, so those over the limit cost no TLS work.
        const gate = createServer((socket) => {
          if (admit(socket)) secure.emit('connection', socket);
        });
        tlsGate = gate;
        tlsPort = await listen(gate, tls.port, options.host);
        log.info({ host: options.host, tlsPort, clientCertificates: tls.requireClientCert ? 'required' : 'not asked' }, 'MQTT TLS listening');
      }
    },
    port: () => plainPort,
    tlsPort: () => tlsPort,
    connectedClients: () => clients,
    security: () => ({ refused: { ...refused }, refusedTotal, throttled, connections: sockets.size }),
    async publishCommand(containerId, payload) {
      if (!broker || closing) throw new Error('MQTT listener not running');
      const topic = `reefer/${containerId}/commands`;
      const writes = [...(commandSubscribers.get(containerId) ?? [])]
        .filter((client) => !client.closed)
        .map(
          (client) =>
            new Promise<void>((resolve, reject) => {
              // A device subscribed at QoS 0 gets it at QoS 0 and sends no PUBACK.
              if ((subscribedTo.get(client)?.get(containerId) ?? 0) >= 1) {
                const queue = awaitingPuback.get(client) ?? [];
                awaitingPuback.set(client, queue);
                queue.push({ containerId, payload });
              }
              client.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (error) => (error ? reject(error) : resolve()));
            }),
        );
      await Promise.all(writes);
    },
    close() {
      closing ??= (async () => {
        for (const [timer, callback] of held) {
          clearTimeout(timer);
          callback(new Error('gateway closing'));
        }
        held.clear();
        const servers = [plainServer, tlsGate].filter((s): s is Server => s !== undefined);
        const closed = Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
        const b = broker;
        // Devices hold their connections open; the servers wait for them unless they are dropped.
        if (b) await new Promise<void>((resolve) => b.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
      })();
      return closing;
    },
  };
}
