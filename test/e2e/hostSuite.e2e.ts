// Mocha suites inside the real extension host, through the workbench's `payload` test mechanism.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runInHostSuite, startServer, type Server } from './harness.js';

let server: Server | undefined;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test('the in-host suite passes', async () => {
  const result = await runInHostSuite(server!, 'test/e2e/host/activation.host.ts');
  const output = result.output.join('\n');
  assert.equal(result.code, 0, `in-host suite failed:\n${output}`);
  assert.match(output, /2 passing/);
});

test('a failing in-host test is reported as a failure', async () => {
  const result = await runInHostSuite(server!, 'test/e2e/host/failing.host.ts');
  const output = result.output.join('\n');
  assert.equal(result.code, 1, `expected exit code 1:\n${output}`);
  assert.match(output, /1 failing/);
  assert.match(output, /fails on purpose/);
});
