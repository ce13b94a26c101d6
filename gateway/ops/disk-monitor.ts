/**
 * SD-card care: how much space is left where the outbox lives, and how many bytes this process has
 * written to storage today (an SD card wears out by bytes written).
 */
import { readFileSync, statfsSync } from 'node:fs';

export interface DiskUsage {
  freeBytes: number;
  totalBytes: number;
  /** Bytes this process caused to be written to storage since the start of the UTC day (or of the process). */
  writtenBytesToday: number;
  writtenBytesTotal: number;
}

export interface DiskMonitor {
  usage(): DiskUsage;
  /** Free space, sampled at most once per `sampleIntervalMs`. */
  freeBytes(): number;
}

/** Storage bytes written by this process, from Linux's per-process I/O accounting; 0 where unavailable. */
function processWrittenBytes(): number {
  try {
    const match = /^write_bytes:\s*(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

export function createDiskMonitor(options: { path: string; sampleIntervalMs: number }, deps: { now(): number }): DiskMonitor {
  let sampledMs = -Infinity;
  let free = 0;
  let total = 0;
  let day = Math.floor(deps.now() / 86_400_000);
  let dayStartWritten = processWrittenBytes();

  function sample(): void {
    const now = deps.now();
    if (now - sampledMs < options.sampleIntervalMs) return;
    sampledMs = now;
    try {
      const s = statfsSync(options.path);
      free = s.bavail * s.bsize;
      total = s.blocks * s.bsize;
    } catch {
      free = 0;
    }
  }

  return {
    usage() {
      sample();
      const written = processWrittenBytes();
      const today = Math.floor(deps.now() / 86_400_000);
      if (today !== day) {
        day = today;
        dayStartWritten = written;
      }
      return { freeBytes: free, totalBytes: total, writtenBytesToday: written - dayStartWritten, writtenBytesTotal: written };
    },
    freeBytes() {
      sample();
      return free;
    },
  };
}
