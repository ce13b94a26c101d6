/**
 * Outbox databases on real files for tests: each in a temporary folder of its own, closed and removed
 * after every test. Call at a test file's top level.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { Outbox } from '../../gateway/outbox/sqlite-outbox.js';

export interface OutboxFiles {
  /** A path for a new outbox database, in a fresh folder. */
  path(): string;
  /** Closes the outbox after the test. */
  track(outbox: Outbox): Outbox;
}

export function outboxFiles(prefix: string): OutboxFiles {
  const dirs: string[] = [];
  const open: Outbox[] = [];
  afterEach(() => {
    for (const o of open.splice(0)) o.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return {
    path() {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return join(dir, 'outbox.db');
    },
    track(outbox) {
      open.push(outbox);
      return outbox;
    },
  };
}
