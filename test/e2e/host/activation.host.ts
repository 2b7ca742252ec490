// Runs inside the real extension host (see runInHostSuite in ../harness.ts): the vscode API, no DOM.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import * as vscode from 'vscode';

describe('Headlight in the extension host', () => {
  it('is loaded from the development folder and activates', async () => {
    const extension = vscode.extensions.getExtension('headlight.headlight');
    assert.ok(extension, 'headlight.headlight is not among the extensions');
    await extension.activate();
    assert.equal(extension.isActive, true);
    assert.equal(extension.packageJSON.name, 'headlight');
  });

  it('runs as a remote extension, as users of code-server and Remote-SSH see it', () => {
    assert.ok(vscode.env.remoteName, 'env.remoteName should be set in code-server');
  });
});
