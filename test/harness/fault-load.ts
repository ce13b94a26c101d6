/**
 * Continuous device load for fault injection: a fleet publishing QoS 1 readings as fast as the
 * gateway acknowledges them (or at a set rate), recording every reading it was acknowledged for.
 * Devices reconnect on their own and resend what was not acknowledged, as real ones do.
 */
import { createFleet, type Fleet } from '../../device-sim/fleet.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';

export interface FaultLoad {
  acknowledged(): ReeferReading[];
  /** Stops publishing and waits for the acknowledgements still due. */
  stop(): Promise<void>;
}

export function startFaultLoad(options: { mqttUrl: string; devices: number; ratePerSecond: number; seed: number }): FaultLoad {
  const acked: ReeferReading[] = [];
  const fleet: Fleet = createFleet({
    mqttUrl: options.mqttUrl,
    devices: options.devices,
    ratePerSecond: options.ratePerSecond,
    seed: options.seed,
    qos: 1,
    form: 'canonical-json',
    maxInFlightPerDevice: 5,
    // One reading a second of simulated time, starting a month ago: never in the future, never repeated.
    startTimeMs: Date.now() - 30 * 86_400_000,
    intervalMs: 1000,
    onSent: (reading) => acked.push(reading),
  });
  const run = fleet.run();
  return {
    acknowledged: () => acked,
    async stop() {
      await fleet.stop();
      await run;
    },
  };
}
