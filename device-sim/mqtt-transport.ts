import mqtt from 'mqtt';

export type Qos = 0 | 1 | 2;

export interface DeviceConnectionOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883. */
  url: string;
  clientId: string;
  /** QoS of every publish on this connection. */
  qos: Qos;
  /** MQTT keep-alive; 60 s by default. */
  keepaliveS?: number;
  /**
   * First wait before reconnecting once connected; it doubles with every failed attempt up to
   * reconnectMaxMs, each wait jittered by ±50 %. 1,000 ms by default, 0 disables reconnection.
   */
  reconnectPeriodMs?: number;
  /** Longest wait between reconnection attempts; 30,000 ms by default. */
  reconnectMaxMs?: number;
  /** Uniform in [0, 1), for the jitter; Math.random by default. */
  random?: () => number;
  /** How long the first connection may take before it counts as failed; 10,000 ms by default. */
  connectTimeoutMs?: number;
  /** How long close() waits for unacknowledged publishes before dropping the connection; 5,000 ms by default. */
  closeTimeoutMs?: number;
  /** 4 (MQTT 3.1.1) by default; 5 for devices that speak MQTT 5, which the embedded broker refuses. */
  protocolVersion?: 4 | 5;
  /** Credentials the broker checks; none by default. */
  username?: string;
  password?: string;
  /** For mqtts:// URLs: the CAs to trust (the system's by default) and a device certificate, in PEM. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
}

/** One device's connection to the broker. */
export interface DeviceConnection {
  /**
   * Resolves once the broker acknowledged the message (QoS 1 and 2) or once it was written to the
   * socket (QoS 0). Rejects if the connection is closed first.
   */
  publish(topic: string, payload: Buffer): Promise<void>;
  /** Waits for pending publishes (bounded), then disconnects. Safe to call twice. */
  close(): Promise<void>;
  /** Subscribes at QoS 1; resolves with the QoS granted, or 128 when the broker refused the subscription. */
  subscribe(filter: string): Promise<number>;
  /**
   * Calls `handler` with every message arriving on a subscription. Subscriptions are renewed after a
   * reconnection, so messages keep coming.
   */
  onMessage(handler: (topic: string, payload: Buffer) => void): void;
  readonly connected: boolean;
}

export type ConnectDevice = (options: DeviceConnectionOptions) => Promise<DeviceConnection>;

/**
 * The wait before retry number `attempt` (0 for the first): doubling from baseMs up to maxMs, then
 * scaled by a factor in [0.5, 1.5), so devices dropped together do not come back together.
 */
export function jitteredBackoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceilingMs = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(ceilingMs * (0.5 + random())));
}

/**
 * Connects one device over MQTT 3.1.1 (the protocol the reference devices and every broker the
 * gateway embeds speak), or MQTT 5 when asked. Rejects if the first connection fails; after that, MQTT.js reconnects on its
 * own and resends unacknowledged QoS 1/2 messages.
 */
export const connectDevice: ConnectDevice = (options) => {
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  const client = mqtt.connect(options.url, {
    clientId: options.clientId,
    protocolVersion: options.protocolVersion ?? 4,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.tls ?? {}),
    clean: true,
    keepalive: options.keepaliveS ?? 60,
    reconnectPeriod: options.reconnectPeriodMs ?? 1_000,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
  });

  const pending = new Set<(error: Error) => void>();
  let drained: (() => void) | null = null;
  let closing: Promise<void> | null = null;

  const publish = (topic: string, payload: Buffer): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (closing) {
        reject(new Error(`${options.clientId}: connection closed`));
        return;
      }
      let settled = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        pending.delete(settle);
        if (pending.size === 0) drained?.();
        if (error) reject(error);
        else resolve();
      };
      pending.add(settle);
      client.publish(topic, payload, { qos: options.qos }, (error) => settle(error ?? undefined));
    });

  const end = (force: boolean): Promise<void> =>
    new Promise<void>((resolve) => {
      // A disconnected client never calls back from a graceful end: it queues the DISCONNECT.
      const timer = setTimeout(resolve, closeTimeoutMs);
      client.end(force, () => {
        clearTimeout(timer);
        resolve();
      });
    });

  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (pending.size > 0 && client.connected) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, closeTimeoutMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await end(!client.connected || pending.size > 0);
      // MQTT.js keeps unacknowledged messages in its store on a forced end and never calls them back.
      for (const settle of [...pending]) {
        settle(new Error(`${options.clientId}: connection closed before the broker acknowledged`));
      }
    })();
    return closing;
  };

  const subscribe = (filter: string): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      client.subscribe(filter, { qos: 1 }, (error, granted) => {
        // [MQTT-3.9.3]: a SUBACK return code of 0x80 is a refusal, which MQTT.js reports as an error
        // carrying the SUBACK.
        const code = (error as { packet?: { granted?: unknown[] } } | null)?.packet?.granted?.[0];
        if (typeof code === 'number' && (code & 0x80) !== 0) resolve(code);
        else if (error) reject(error);
        else resolve(granted?.[0]?.qos ?? 128);
      });
    });

  const connection: DeviceConnection = {
    publish,
    subscribe,
    onMessage(handler) {
      client.on('message', (topic, payload) => handler(topic, payload));
    },
    close,
    get connected() {
      return client.connected;
    },
  };

  let established = false;
  return new Promise<DeviceConnection>((resolve, reject) => {
    const fail = (error: Error): void => {
      client.removeListener('connect', onConnect);
      client.removeListener('close', onClose);
      client.end(true);
      reject(error);
    };
    const onConnect = (): void => {
      established = true;
      client.removeListener('close', onClose);
      // MQTT.js keeps unacknowledged QoS 1/2 publishes to resend after reconnecting; a device that
      // does not reconnect would wait for them for ever once the broker drops it.
      if (options.reconnectPeriodMs === 0) {
        client.on('close', () => {
          for (const settle of [...pending]) settle(new Error(`${options.clientId}: connection closed before the broker acknowledged`));
        });
      }
      resolve(connection);
    };
    const onClose = (): void => fail(new Error(`${options.clientId}: connection to ${options.url} closed before CONNACK`));
    client.once('connect', onConnect);
    client.once('close', onClose);
    // Without a listener an 'error' event would crash the process; failures surface through publish.
    client.on('error', (error) => {
      if (!established) fail(error);
    });
  });
};
