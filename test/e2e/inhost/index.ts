// Entry VS Code calls inside the extension host (extensionTestsPath): runs the mocha suite and resolves when done.
// Bundled by test/e2e/extension.e2e.ts into out/test/inhost/index.js (vscode and mocha stay external). The output
// and the failure count also go to $HEADLIGHT_INHOST_RESULT (a JSON file) for the driver outside.
import Mocha from 'mocha';
import { writeFileSync } from 'node:fs';
import { FIGURES, suite } from './extension.test';
import { experimentsSuite } from './experiments.test';

export function run(): Promise<void> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
    log(...args);
  };
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  mocha.suite.emit('pre-require', globalThis, 'inhost', mocha);
  suite();
  experimentsSuite();
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      console.log = log;
      const out = process.env.HEADLIGHT_INHOST_RESULT;
      if (out) writeFileSync(out, JSON.stringify({ failures, lines: [...lines, ...FIGURES] }));
      if (failures) reject(new Error(`${failures} in-host test(s) failed`));
      else resolve();
    });
    runner.on('pass', (t) => lines.push(`✔ ${t.fullTitle()} (${t.duration} ms)`));
    runner.on('fail', (t, err: Error) => lines.push(`✖ ${t.fullTitle()}\n${err.stack ?? err.message}`));
  });
}
