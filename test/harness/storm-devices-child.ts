/**
 * Runs the reconnect storm's devices (storm-devices.ts) in a child process: forked with the
 * StormOptions as JSON in argv[2], it sends its tally back over IPC and exits.
 */
import { runStorm, type StormOptions } from './storm-devices.js';

// A test that timed out does not get to kill its devices: they leave with it.
process.once('disconnect', () => process.exit(1));
const options = JSON.parse(process.argv[2] ?? '{}') as StormOptions;
const tally = await runStorm(options);
process.send!(tally, () => process.exit(0));
