/**
 * The bridge service's MQTT server, which gateways connect to: the only cloud-bridge file that imports
 * aedes. It checks each gateway's login (scrypt hashes, bridge-password.ts) and keeps every gateway to
 * its own topics, `reefer-bridge/<its id>/…`. A request is handed to the service before the broker
 * acknowledges it: the reply is published and the PUBACK sent only once the service (and so Kafka)
 * answered.
 */
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { parsePasswordHash, verifyPassword, type PasswordHash } from './bridge-password.js';
import { bridgeTopic, parseBridgeTopic, type BridgeChannel, type GatewayConnection } from './bridge-protocol.js';

export interface BridgeServerTls {
  /** 0 lets the OS choose. */
  port: number;
  certFile: string;
  keyFile: string;
  /** CAs that sign gateway certificates; needed when they are required. */
  caFile?: string;
  requireClientCert: boolean;
}

export interface BridgeLogin {
  /** The gateway id: a gateway logs in under its own id, and may use its own topics only. */
  username: string;
  passwordHash: string;
}

export interface BridgeServerOptions {
  host: string;
  /** Plain TCP (for a TLS-terminating proxy in front, or tests); null for none. */
  port: number | null;
  tls?: BridgeServerTls;
  logins: readonly BridgeLogin[];
}

export interface BridgeServerDeps {
  logger: Logger;
  /**
   * Handles a request an authenticated gateway published; resolves with the reply's payload, which is
   * published to the gateway before the request is acknowledged. Never rejects for Kafka's failures:
   * those are error replies.
   */
  onRequest(connection: GatewayConnection, payload: Buffer): Promise<Buffer>;
  /** The gateway subscribed to its commands on this connection. */
  onCommandsWanted?(connection: GatewayConnection): void;
  /** An authenticated connection closed. */
  onConnectionGone?(connection: GatewayConnection): void;
}

export type BridgeRefusal = 'no-credentials' | 'unknown-user' | 'bad-password' | 'publish-denied' | 'subscribe-denied' | 'tls-handshake';

export interface BridgeServer {
  start(): Promise<void>;
  port(): number;
  tlsPort(): number;
  /** Publishes to a gateway's channel at QoS 1; resolves once handed to its connection. */
  publish(gatewayId: string, channel: BridgeChannel, payload: Buffer): Promise<void>;
  connectedGateways(): number;
  refused(): Partial<Record<BridgeRefusal, number>>;
  close(): Promise<void>;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read the bridge TLS ${what} ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
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

function authError(message: string, returnCode: 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export function createBridgeServer(options: BridgeServerOptions, deps: BridgeServerDeps): BridgeServer {
  const log = deps.logger.child({ component: 'bridge-mqtt' });
  const logins = new Map<string, PasswordHash>();
  for (const login of options.logins) {
    const parsed = parsePasswordHash(login.passwordHash);
    if (!parsed.ok) throw new Error(`bridge login ${JSON.stringify(login.username)}: password hash ${parsed.problem}`);
    if (logins.has(login.username)) throw new Error(`bridge login ${JSON.stringify(login.username)} is listed twice`);
    logins.set(login.username, parsed.hash);
  }
  const connectionOf = new WeakMap<Client, GatewayConnection>();
  let connections = 0;
  const sockets = new Set<Socket>();
  const refusedCounts: Partial<Record<BridgeRefusal, number>> = {};
  let broker: Aedes | undefined;
  let plain: Server | undefined;
  let tlsGate: Server | undefined;
  let plainPort = 0;
  let tlsPort = 0;
  let gateways = 0;
  let closing: Promise<void> | undefined;
  let decoy: PasswordHash | undefined;

  function refuse(reason: BridgeRefusal, fields: Record<string, unknown>): void {
    refusedCounts[reason] = (refusedCounts[reason] ?? 0) + 1;
    log.warn({ reason, ...fields }, 'bridge refused');
  }

  async function check(username: string | undefined, password: Buffer | undefined): Promise<'ok' | BridgeRefusal> {
    if (!username) return 'no-credentials';
    const hash = logins.get(username);
    if (!hash) {
      // The same work as for a known login, so timing does not tell which gateway ids exist.
      decoy ??= (parsePasswordHash('$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') as { ok: true; hash: PasswordHash }).hash;
      await verifyPassword(password ?? Buffer.alloc(0), decoy);
      return 'unknown-user';
    }
    return (await verifyPassword(password ?? Buffer.alloc(0), hash)) ? 'ok' : 'bad-password';
  }

  function authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    check(username, password).then(
      (outcome) => {
        if (outcome === 'ok') {
          connections += 1;
          connectionOf.set(client, { gatewayId: username!, connectionId: connections });
          done(null, true);
          return;
        }
        refuse(outcome, { clientId: client.id.slice(0, 128), username: username?.slice(0, 128) });
        done(authError(outcome, outcome === 'no-credentials' ? 5 : 4), false);
      },
      (error: unknown) => {
        log.error({ err: error instanceof Error ? error.message : String(error) }, 'could not check credentials');
        done(authError('could not check credentials', 5), false);
      },
    );
  }

  function authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    // The bridge's own publishes (replies, commands) come without a client.
    if (!client) {
      callback(null);
      return;
    }
    const connection = connectionOf.get(client);
    const gatewayId = connection?.gatewayId;
    const target = parseBridgeTopic(packet.topic);
    if (!connection || !target || target.gatewayId !== gatewayId || target.channel !== 'request') {
      // MQTT 3.1.1 has no refusal code for a publish: the connection is closed.
      refuse('publish-denied', { username: gatewayId, topic: packet.topic.slice(0, 256) });
      callback(new Error('publish-denied'));
      return;
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    deps
      .onRequest(connection, payload)
      .then((reply) => publish(connection.gatewayId, 'reply', reply))
      .then(
        // The request itself goes no further: nobody may subscribe to request topics.
        () => callback(null),
        (error: unknown) => {
          log.error({ gatewayId, err: error instanceof Error ? error.message : String(error) }, 'request not answered');
          callback(error instanceof Error ? error : new Error(String(error)));
        },
      );
  }

  function authorizeSubscribe(client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void {
    const connection = connectionOf.get(client);
    const gatewayId = connection?.gatewayId;
    const target = parseBridgeTopic(subscription.topic);
    if (!connection || !target || target.gatewayId !== gatewayId || target.channel === 'request') {
      refuse('subscribe-denied', { username: gatewayId, topic: subscription.topic.slice(0, 256) });
      // A refused subscription gets the failure code 0x80 in its SUBACK [MQTT-3.9.3].
      callback(null, null);
      return;
    }
    callback(null, subscription);
    if (target.channel === 'commands') deps.onCommandsWanted?.(connection);
  }

  function publish(gatewayId: string, channel: BridgeChannel, payload: Buffer): Promise<void> {
    const b = broker;
    if (!b) return Promise.reject(new Error('bridge server not started'));
    return new Promise((resolve, reject) => {
      b.publish({ cmd: 'publish', topic: bridgeTopic(gatewayId, channel), payload, qos: 1, retain: false, dup: false }, (error) => (error ? reject(error) : resolve()));
    });
  }

  return {
    async start() {
      const tls = options.tls;
      const b = await Aedes.createBroker({ authenticate, authorizePublish, authorizeSubscribe });
      broker = b;
      b.on('client', () => {
        gateways += 1;
      });
      b.on('clientDisconnect', (client) => {
        gateways -= 1;
        const connection = connectionOf.get(client);
        if (connection) deps.onConnectionGone?.(connection);
      });
      b.on('clientError', (client, error) => log.debug({ clientId: client.id, err: error.message }, 'client error'));
      const track = (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      };
      if (options.port !== null) {
        plain = createServer((socket) => {
          track(socket);
          b.handle(socket);
        });
        plainPort = await listen(plain, options.port, options.host);
        log.info({ host: options.host, port: plainPort }, 'bridge MQTT listening');
      }
      if (tls) {
        const secure = createTlsServer(
          {
            cert: readPem(tls.certFile, 'certificate'),
            key: readPem(tls.keyFile, 'key'),
            ca: tls.caFile === undefined ? undefined : readPem(tls.caFile, 'CA file'),
            requestCert: tls.requireClientCert,
            rejectUnauthorized: tls.requireClientCert,
            handshakeTimeout: 10_000,
            minVersion: 'TLSv1.2',
          },
          (socket: TLSSocket) => b.handle(socket),
        );
        secure.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => refuse('tls-handshake', { remoteAddress: socket.remoteAddress, err: error.code ?? error.message }));
        tlsGate = createServer((socket) => {
          track(socket);
          secure.emit('connection', socket);
        });
        tlsPort = await listen(tlsGate, tls.port, options.host);
        log.info({ host: options.host, tlsPort }, 'bridge MQTT TLS listening');
      }
    },
    port: () => plainPort,
    tlsPort: () => tlsPort,
    publish,
    connectedGateways: () => gateways,
    refused: () => ({ ...refusedCounts }),
    close() {
      closing ??= (async () => {
        const servers = [plain, tlsGate].filter((s): s is Server => s !== undefined);
        const closed = Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
        const b = broker;
        if (b) await new Promise<void>((resolve) => b.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
      })();
      return closing;
    },
  };
}
