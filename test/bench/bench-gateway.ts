/**
 * The gateway under benchmark, in a process of its own (forked by bench.ts), so its CPU time and
 * resident memory are its own and not the load generator's or the Kafka consumer's.
 *
 * Speaks over the fork IPC channel: receives `{ type: 'start', config }` (a gateway config file as an
 * object), answers `{ type: 'ready', mqttPort }`; `{ type: 'sample' }` answers with the outbox depth,
 * readings sent, uplink state, process.cpuUsage() and process.memoryUsage(); `{ type: 'close' }` stops
 * the gateway and exits.
 *
 * It applies the V8 heap settings reefer-gateway gives itself (gateway/cli.ts), so the figures are
 * those of what ships; node flags passed with --gateway-flags override them as they would there.
 */
import { applyGatewayHeapFlags } from '../../gateway/cli.js';
import type { Gateway } from '../../gateway/main.js';

// As in reefer-gateway: set before the gateway's libraries load.
applyGatewayHeapFlags(process.execArgv, process.env.NODE_OPTIONS);
const gatewayModules = Promise.all([import('../../gateway/config.js'), import('../../gateway/main.js'), import('../../gateway/ops/logger.js')]);

export interface GatewaySample {
  type: 'sample';
  outboxCount: number;
  outboxBytes: number;
  sent: number;
  accepted: number;
  rejected: number;
  duplicates: number;
  uplink: string;
  mqttClients: number;
  cpuUserMicros: number;
  cpuSystemMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
}

type Command = { type: 'start'; config: Record<string, unknown> } | { type: 'sample' } | { type: 'close' };

let gateway: Gateway | undefined;

function send(message: unknown): void {
  process.send?.(message);
}

function sample(g: Gateway): GatewaySample {
  const status = g.status();
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const duplicates = Object.values(status.stats.duplicates).reduce((a, b) => a + b, 0);
  return {
    type: 'sample',
    outboxCount: status.outbox.count,
    outboxBytes: status.outbox.bytes,
    sent: status.stats.sent,
    accepted: status.stats.acceptedTotal,
    rejected: status.stats.rejectedTotal,
    duplicates,
    uplink: status.uplink,
    mqttClients: status.mqttClients,
    cpuUserMicros: cpu.user,
    cpuSystemMicros: cpu.system,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    externalBytes: mem.external,
  };
}

process.on('message', (raw: unknown) => {
  const command = raw as Command;
  void (async () => {
    try {
      if (command.type === 'start') {
        const [{ resolveConfig }, { startGateway }, { createLogger }] = await gatewayModules;
        const config = resolveConfig({ file: command.config });
        gateway = await startGateway(config, { logger: createLogger(config.log.level) });
        send({ type: 'ready', mqttPort: gateway.mqttPort() });
      } else if (command.type === 'sample') {
        if (gateway) send(sample(gateway));
      } else if (command.type === 'close') {
        await gateway?.close();
        send({ type: 'closed' });
        process.disconnect?.();
        // Leaves time for a --cpu-prof profile to be written by a normal exit.
        setTimeout(() => process.exit(0), 50);
      }
    } catch (error) {
      send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  })();
});
