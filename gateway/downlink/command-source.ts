/**
 * Where a gateway's commands come from: straight from Kafka's `reefer-commands` (uplink mode `kafka`)
 * or through the bridge service (uplink mode `mqtt`). Both deliver each command addressed to this
 * gateway at least once and in order; the downlink stores it durably (deduplicating by command id)
 * before the source may move past it.
 */
export interface CommandSource {
  /**
   * Starts delivering. `store` receives a command record's value (as published to `reefer-commands`)
   * and its headers; it resolves once the command is durable (or was refused and counted), and only
   * then does the source move past it. A rejection makes the source deliver it again later.
   */
  start(store: (value: Buffer, headers: Record<string, string>) => Promise<void>): void;
  close(): Promise<void>;
}
