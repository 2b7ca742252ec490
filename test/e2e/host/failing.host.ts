// A suite that must fail: proves that runInHostSuite reports an in-host failure as exit code 1.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';

describe('harness self-check', () => {
  it('fails on purpose', () => {
    assert.equal(1 + 1, 3);
  });
});
