/**
 * Notices readings that never arrived. Reefers report at a steady interval; when the time between
 * two consecutive readings of a container is well beyond its usual interval, the readings in between
 * are counted as missing in the loss ledger (reason `gap`), even though the gateway never saw them.
 */

export interface GapTrackerOptions {
  /** A pause longer than this many usual intervals counts as a gap. */
  toleranceIntervals: number;
  /** Containers tracked at most; the least recently seen are forgotten first. */
  maxContainers: number;
}

export interface GapTracker {
  /** Returns how many readings are missing before this one (0 when none). */
  observe(containerId: string, measurementMs: number): number;
}

/** Intervals remembered per container; their median is the usual interval. */
const HISTORY = 5;

interface ContainerHistory {
  lastMs: number;
  intervals: number[];
}

export function createGapTracker(options: GapTrackerOptions): GapTracker {
  const containers = new Map<string, ContainerHistory>();
  return {
    observe(containerId, measurementMs) {
      const h = containers.get(containerId);
      if (!h) {
        if (containers.size >= options.maxContainers) {
          const oldest = containers.keys().next().value;
          if (oldest !== undefined) containers.delete(oldest);
        }
        containers.set(containerId, { lastMs: measurementMs, intervals: [] });
        return 0;
      }
      // Map order is insertion order: re-inserting keeps the least recently seen first.
      containers.delete(containerId);
      containers.set(containerId, h);
      // A late or resent reading says nothing about gaps.
      if (measurementMs <= h.lastMs) return 0;
      const delta = measurementMs - h.lastMs;
      h.lastMs = measurementMs;
      let missing = 0;
      if (h.intervals.length >= 2) {
        const usual = median(h.intervals);
        if (delta > usual * options.toleranceIntervals) missing = Math.max(0, Math.round(delta / usual) - 1);
      }
      // A gap is not a new interval: remembering it would teach the tracker to expect gaps.
      if (missing === 0) {
        h.intervals.push(delta);
        if (h.intervals.length > HISTORY) h.intervals.shift();
      }
      return missing;
    },
  };
}

/** Scratch for median(): called for every reading, so it sorts in place here instead of allocating. */
const scratch = new Float64Array(HISTORY);

function median(values: readonly number[]): number {
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    let j = i;
    for (; j > 0 && scratch[j - 1]! > v; j--) scratch[j] = scratch[j - 1]!;
    scratch[j] = v;
  }
  return scratch[Math.floor(n / 2)]!;
}
