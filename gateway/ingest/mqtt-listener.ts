/**
 * The embedded MQTT broker devices publish to: the only file that imports aedes. A telemetry publish
 * is handed to the pipeline before the broker acknowledges it, so a QoS 1 PUBACK (or QoS 2 PUBREC)
 * leaves only once the reading is durable.
 */
import { Aedes, type Client, type PublishPacket } from 'aedes';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Logger } from 'pino';

export interface MqttListenerOptions {
  host: string;
  /** 0 lets the OS choose. */
  port: number;
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
  onTelemetry(publish: TelemetryPublish): Promise<void>;
  onClientCountChange?(connected: number): void;
}

export interface MqttListener {
  start(): Promise<void>;
  /** The port bound, once started. */
  port(): number;
  connectedClients(): number;
  close(): Promise<void>;
}

const TELEMETRY_TOPIC = /^reefer\/([^/]+)\/telemetry$/;

export function createMqttListener(options: MqttListenerOptions, deps: MqttListenerDeps): MqttListener {
  const log = deps.logger.child({ component: 'mqtt' });
  let broker: Aedes | undefined;
  let server: Server | undefined;
  let boundPort = 0;
  let clients = 0;
  let closing: Promise<void> | undefined;

  function authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    const match = TELEMETRY_TOPIC.exec(packet.topic);
    if (!client || !match) {
      callback(null);
      return;
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    deps.onTelemetry({ containerId: match[1]!, topic: packet.topic, payload, clientId: client.id }).then(
      () => callback(null),
      (error: unknown) => {
        log.error({ err: error instanceof Error ? error.message : String(error), clientId: client.id }, 'reading not stored; device not acknowledged');
        callback(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  return {
    async start() {
      broker = await Aedes.createBroker({ authorizePublish });
      broker.on('client', () => deps.onClientCountChange?.(++clients));
      broker.on('clientDisconnect', () => deps.onClientCountChange?.(--clients));
      broker.on('clientError', (client, error) => log.debug({ clientId: client.id, err: error.message }, 'client error'));
      const srv = createServer(broker.handle);
      server = srv;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(options.port, options.host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      boundPort = (srv.address() as AddressInfo).port;
      log.info({ host: options.host, port: boundPort }, 'MQTT listening');
    },
    port: () => boundPort,
    connectedClients: () => clients,
    close() {
      closing ??= (async () => {
        const srv = server;
        const b = broker;
        if (srv) {
          await new Promise<void>((resolve) => {
            srv.close(() => resolve());
            // Devices hold their connections open; close() waits for them unless the broker drops them.
            if (b) b.close();
            else resolve();
          });
        } else if (b) {
          await new Promise<void>((resolve) => b.close(() => resolve()));
        }
      })();
      return closing;
    },
  };
}
