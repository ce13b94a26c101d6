import { describe, expect, it } from 'vitest';
import { errorChain } from '../../cloud-bridge/cli.js';

describe('reefer-bridge error line', () => {
  it('names an error and each of its causes once, without the stack', () => {
    const cause = new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1');
    const wrapped = new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1', { cause });
    expect(errorChain(wrapped)).toBe('Connection error: connect ECONNREFUSED 127.0.0.1:1');
    const outer = new Error('cannot read /etc/reefer/users', { cause: new Error('ENOENT: no such file or directory') });
    expect(errorChain(outer)).toBe('cannot read /etc/reefer/users: ENOENT: no such file or directory');
    expect(errorChain('plain text')).toBe('plain text');
  });
});
