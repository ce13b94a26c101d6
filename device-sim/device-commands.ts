/**
 * A simulated device's side of the commands contract (docs/commands.md): it reads a command the
 * gateway published on `reefer/<containerId>/commands`, applies it to its reefer once whatever the
 * number of redeliveries, and answers with the acknowledgement to publish on
 * `reefer/<containerId>/commands/ack`. Pure: no I/O.
 */
import type { Reefer } from './reefer-model.js';

export interface DeviceCommandAck {
  commandId: string;
  status: 'applied' | 'rejected';
  detail?: string;
}

export interface DeviceCommandHandlerOptions {
  /** Command ids remembered, so a redelivered command is acknowledged again but not applied twice. */
  rememberCommands?: number;
  now?: () => number;
  /** Called once per command applied or rejected (not for repeats). */
  onApplied?: (command: { commandId: string; kind: string; targetTemperature?: number }, ack: DeviceCommandAck) => void;
}

export interface DeviceCommandHandler {
  /** The acknowledgement payload for a command payload; null when the payload names no command at all. */
  handle(payload: Buffer): Buffer | null;
  /** Commands applied or rejected so far (repeats not counted). */
  handled(): number;
}

/** Setpoints the simulated reefer accepts, °C (as the gateway's contract allows). */
const SETPOINT_RANGE_C = [-70, 30] as const;
const DEFAULT_REMEMBER = 1000;

export function createDeviceCommandHandler(
  reefer: Pick<Reefer, 'containerId' | 'setTargetTemperature' | 'startDefrost' | 'repair'>,
  options: DeviceCommandHandlerOptions = {},
): DeviceCommandHandler {
  const now = options.now ?? Date.now;
  const remember = options.rememberCommands ?? DEFAULT_REMEMBER;
  /** Acks by command id, oldest first (Map keeps insertion order). */
  const answered = new Map<string, Buffer>();
  let handled = 0;

  function apply(c: Record<string, unknown>): Pick<DeviceCommandAck, 'status' | 'detail'> {
    if (c.containerId !== undefined && c.containerId !== reefer.containerId) {
      return { status: 'rejected', detail: `containerId: expected ${reefer.containerId}, got ${String(c.containerId)}` };
    }
    if (typeof c.expiresMs === 'number' && c.expiresMs <= now()) return { status: 'rejected', detail: 'expired before it reached the device' };
    switch (c.kind) {
      case 'setpoint': {
        const t = c.targetTemperature;
        if (typeof t !== 'number' || !Number.isFinite(t) || t < SETPOINT_RANGE_C[0] || t > SETPOINT_RANGE_C[1]) {
          return { status: 'rejected', detail: `targetTemperature: expected °C from ${SETPOINT_RANGE_C[0]} to ${SETPOINT_RANGE_C[1]}, got ${JSON.stringify(t)}` };
        }
        reefer.setTargetTemperature(t);
        return { status: 'applied' };
      }
      case 'defrost':
        return reefer.startDefrost() ? { status: 'applied' } : { status: 'rejected', detail: 'a defrost is already running' };
      case 'maintenance':
        return { status: 'applied', detail: reefer.repair() ? 'failure in progress repaired' : 'no failure in progress' };
      default:
        return { status: 'rejected', detail: `kind: expected setpoint, maintenance or defrost, got ${JSON.stringify(c.kind)}` };
    }
  }

  return {
    handle(payload) {
      let c: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(payload.toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null) return null;
        c = parsed as Record<string, unknown>;
      } catch {
        return null;
      }
      if (typeof c.commandId !== 'string' || c.commandId.length === 0) return null;
      const repeat = answered.get(c.commandId);
      if (repeat) return repeat;
      const outcome = apply(c);
      const ack: DeviceCommandAck = { commandId: c.commandId, ...outcome };
      const encoded = Buffer.from(JSON.stringify(ack), 'utf8');
      answered.set(c.commandId, encoded);
      if (answered.size > remember) answered.delete(answered.keys().next().value!);
      handled += 1;
      options.onApplied?.({ commandId: c.commandId, kind: String(c.kind), ...(typeof c.targetTemperature === 'number' ? { targetTemperature: c.targetTemperature } : {}) }, ack);
      return encoded;
    },
    handled: () => handled,
  };
}
