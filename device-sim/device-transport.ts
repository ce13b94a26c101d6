import type { ReeferReading } from '../schemas/reefer-reading.js';
import { connectDevice as mqttConnectDevice, type ConnectDevice, type Qos } from './mqtt-transport.js';
import { encodePayload, telemetryTopic, type PayloadForm } from './payload-forms.js';

/** One simulated device's open link to the gateway. */
export interface DeviceLink {
  /**
   * Resolves once the gateway has the reading: acknowledged (MQTT QoS 1 and 2) or written (MQTT QoS 0,
   * a serial line). Rejects when the link closes first.
   */
  send(reading: ReeferReading): Promise<void>;
  /** Lets outstanding sends finish (bounded), then closes. Safe to call twice. */
  close(): Promise<void>;
  readonly connected: boolean;
  /**
   * Receives the gateway's commands (links that can: MQTT): `handle` turns each command payload into
   * the acknowledgement sent back, or null for none. Resolves once subscribed.
   */
  listenForCommands?(handle: (payload: Buffer) => Buffer | null): Promise<void>;
}

/**
 * How a group of simulated devices reaches the gateway: MQTT, a serial line, … The fleet opens one
 * link per device and knows nothing of topics, payload forms or framing.
 */
export interface DeviceTransport {
  /** 'mqtt', 'serial', …: for messages. */
  readonly kind: string;
  /** Opens one device's link; rejects when it cannot, and the fleet retries with backoff. */
  open(containerId: string): Promise<DeviceLink>;
}

/** A share of a mixed fleet: this many devices, in fleet order, on this transport. */
export interface DeviceGroup {
  transport: DeviceTransport;
  devices: number;
}

export interface MqttTransportOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883. */
  url: string;
  qos: Qos;
  form: PayloadForm;
}

/** Devices that each hold an MQTT connection and publish to reefer/<containerId>/telemetry. */
export function createMqttTransport(options: MqttTransportOptions, deps: { connectDevice?: ConnectDevice } = {}): DeviceTransport {
  const connect = deps.connectDevice ?? mqttConnectDevice;
  return {
    kind: 'mqtt',
    async open(containerId) {
      const connection = await connect({ url: options.url, clientId: containerId, qos: options.qos });
      const topic = telemetryTopic(containerId);
      return {
        send: (reading) => connection.publish(topic, encodePayload(reading, options.form)),
        close: () => connection.close(),
        get connected() {
          return connection.connected;
        },
        async listenForCommands(handle) {
          const commands = `reefer/${containerId}/commands`;
          connection.onMessage((messageTopic, payload) => {
            if (messageTopic !== commands) return;
            const ack = handle(payload);
            // A lost acknowledgement is sent again when the gateway redelivers the command.
            if (ack) connection.publish(`${commands}/ack`, ack).catch(() => undefined);
          });
          const granted = await connection.subscribe(commands);
          if (granted >= 128) throw new Error(`${containerId}: the broker refused the subscription to ${commands}`);
        },
      };
    },
  };
}
