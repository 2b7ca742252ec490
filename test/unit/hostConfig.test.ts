/**
 * Settings (extension/host/configValues.ts, which extension/host/config.ts feeds VS Code's WorkspaceConfiguration):
 * an untrusted workspace cannot choose the model (issue #22 item 5), values are clamped to package.json's ranges,
 * and the fallbacks are package.json's defaults.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configFrom, modelOf, type InspectedSetting, type SettingsReader } from '../../extension/host/configValues';

const PKG = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));
const PROPS: Record<string, { default?: unknown; minimum?: number; maximum?: number; scope?: string }> = PKG.contributes.configuration.properties
  ?? Object.assign({}, ...PKG.contributes.configuration.map((c: { properties: object }) => c.properties));

type Scopes = Record<string, InspectedSetting<unknown>>;

/** A settings section over explicit scopes, merged the way VS Code does: folder, then workspace, then user, then default. */
function reader(scopes: Scopes): SettingsReader {
  return {
    get: <T>(key: string) => {
      const s = scopes[key];
      return (s?.workspaceFolderValue ?? s?.workspaceValue ?? s?.globalValue ?? s?.defaultValue) as T | undefined;
    },
    inspect: <T>(key: string) => scopes[key] as InspectedSetting<T> | undefined,
  };
}

/** Every setting at package.json's default, with `extra` scopes on top. */
function withDefaults(extra: Scopes = {}): SettingsReader {
  const scopes: Scopes = {};
  for (const [k, v] of Object.entries(PROPS)) scopes[k.replace(/^headlight\./, '')] = { defaultValue: v.default };
  for (const [k, v] of Object.entries(extra)) scopes[k] = { ...scopes[k], ...v };
  return reader(scopes);
}

describe('untrusted workspace: the model', () => {
  test('workspace and folder settings are ignored; the user setting and the default count', () => {
    const evil = { defaultValue: 'bundled', workspaceValue: '/tmp/workspace-model', workspaceFolderValue: 'attacker/model' };
    assert.equal(configFrom(withDefaults({ model: evil }), false).model, 'bundled');
    assert.equal(configFrom(withDefaults({ model: { ...evil, globalValue: 'openai-community/gpt2' } }), false).model, 'openai-community/gpt2');
    assert.equal(configFrom(withDefaults({ model: { workspaceValue: '/tmp/x' } }), false).model, 'bundled', 'no default given: bundled');
  });

  test('a trusted workspace chooses it (folder over workspace over user)', () => {
    const scopes = { defaultValue: 'bundled', globalValue: 'openai-community/gpt2', workspaceValue: '/models/ws' };
    assert.equal(configFrom(withDefaults({ model: scopes }), true).model, '/models/ws');
    assert.equal(configFrom(withDefaults({ model: { ...scopes, workspaceFolderValue: '/models/folder' } }), true).model, '/models/folder');
    assert.equal(configFrom(withDefaults({ model: { ...scopes, workspaceValue: '' } }), true).model, 'bundled', 'an empty value is the bundled model');
  });

  test('the decision itself: trust alone switches between the effective value and the user value', () => {
    const inspected = { defaultValue: 'bundled', globalValue: 'user/model', workspaceValue: 'ws/model' };
    assert.equal(modelOf(inspected, 'ws/model', true), 'ws/model');
    assert.equal(modelOf(inspected, 'ws/model', false), 'user/model');
    assert.equal(modelOf(undefined, undefined, false), 'bundled');
    assert.equal(modelOf(undefined, undefined, true), 'bundled');
  });

  test('package.json declares it restricted in untrusted workspaces (VS Code then warns about a workspace value)', () => {
    assert.equal(PKG.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.deepEqual(PKG.capabilities.untrustedWorkspaces.restrictedConfigurations, ['headlight.model']);
  });
});

describe('settings values', () => {
  test("with nothing set, every value is package.json's default (the fallbacks agree with it)", () => {
    const fromDefaults = configFrom(withDefaults(), true);
    const fromNothing = configFrom(reader({}), true);
    assert.deepEqual(fromNothing, fromDefaults);
    assert.deepEqual(
      [fromDefaults.debounceMs, fromDefaults.highlightThreshold, fromDefaults.windowTokens, fromDefaults.threads, fromDefaults.live, fromDefaults.surprisalEnabled],
      [PROPS['headlight.debounceMs'].default, PROPS['headlight.highlight.threshold'].default, PROPS['headlight.window.tokens'].default, PROPS['headlight.threads'].default, PROPS['headlight.live'].default, PROPS['headlight.surprisal.enabled'].default],
    );
    assert.ok(Object.isFrozen(fromDefaults));
  });

  test("numbers are clamped to package.json's minimum and maximum; junk falls back to the default", () => {
    const keys = { debounceMs: 'debounceMs', 'highlight.threshold': 'highlightThreshold', 'window.tokens': 'windowTokens', threads: 'threads' } as const;
    for (const [key, field] of Object.entries(keys)) {
      const { minimum, maximum, default: def } = PROPS[`headlight.${key}`];
      assert.equal(configFrom(withDefaults({ [key]: { globalValue: -1e9 } }), true)[field], minimum, `${key} below`);
      assert.equal(configFrom(withDefaults({ [key]: { globalValue: 1e9 } }), true)[field], maximum, `${key} above`);
      for (const junk of [NaN, Infinity, '12', null]) assert.equal(configFrom(withDefaults({ [key]: { globalValue: junk } }), true)[field], def, `${key} = ${String(junk)}`);
    }
    assert.equal(configFrom(withDefaults({ 'window.tokens': { globalValue: 100.6 } }), true).windowTokens, 101);
  });

  test('switches and choices: only the documented values count', () => {
    assert.equal(configFrom(withDefaults({ live: { globalValue: 'false' } }), true).live, true, 'a string is not a boolean');
    assert.equal(configFrom(withDefaults({ live: { workspaceValue: false } }), true).live, false);
    assert.equal(configFrom(withDefaults({ 'highlight.direction': { globalValue: 'targets' } }), true).highlightDirection, 'targets');
    assert.equal(configFrom(withDefaults({ 'highlight.direction': { globalValue: 'sideways' } }), true).highlightDirection, 'sources');
    assert.equal(configFrom(withDefaults({ attentionMode: { globalValue: 'valueWeighted' } }), true).attentionMode, 'value-weighted');
    assert.equal(configFrom(withDefaults({ attentionMode: { globalValue: 'value-weighted' } }), true).attentionMode, 'attention');
  });
});
