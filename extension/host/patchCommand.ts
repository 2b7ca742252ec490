/**
 * `Headlight: Patch Activations…` (headlight.patchActivations): the VS Code half of activation patching. Picks the
 * metric's two tokens from the clean run's top guesses (or typed), runs the patching with a cancellable progress
 * notification, and opens the panel's Patching view, where the cells stream in. The logic is in patching.ts.
 */
import * as vscode from 'vscode';
import { HeadlightError } from '../common/errors';
import type { PatchToken } from '../common/webviewProtocol';
import type { Patching } from './patching';

/** Arguments for keybindings and tests: token ids (or typed text), the position, which side is clean. */
export interface PatchArgs {
  answer?: number | string;
  wrong?: number | string;
  at?: number;
  swap?: boolean;
}

export interface PatchCommandDeps {
  patching: Patching;
  cursorToken: () => number | undefined;
  showPanel?: () => void;
  log: (message: string) => void;
}

type TokenItem = vscode.QuickPickItem & { token?: PatchToken; typed?: string };

/** One token from a QuickPick of guesses; typing adds an item that uses the typed text (or id). */
function pickToken(title: string, guesses: { id: number; text: string; logprob: number }[], from: string, exclude?: number): Promise<TokenItem | undefined> {
  return new Promise((resolve) => {
    const qp = vscode.window.createQuickPick<TokenItem>();
    const base: TokenItem[] = guesses
      .filter((g) => g.id !== exclude)
      .map((g) => ({ label: JSON.stringify(g.text), description: `p = ${Math.exp(g.logprob).toFixed(3)} · id ${g.id}`, detail: from, token: { id: g.id, text: g.text } }));
    qp.title = title;
    qp.placeholder = 'Pick one of the guesses, or type a token (with its leading space, e.g. " Paris") or an id';
    qp.items = base;
    qp.onDidChangeValue((v) => {
      qp.items = v ? [{ label: `Use ${JSON.stringify(v)}`, description: 'typed: must be one token', typed: v, alwaysShow: true }, ...base] : base;
    });
    let done = false;
    qp.onDidAccept(() => {
      done = true;
      resolve(qp.selectedItems[0]);
      qp.hide();
    });
    qp.onDidHide(() => {
      if (!done) resolve(undefined);
      qp.dispose();
    });
    qp.show();
  });
}

async function resolveToken(patching: Patching, arg: number | string | undefined, pick: () => Promise<TokenItem | undefined>): Promise<PatchToken | undefined> {
  if (typeof arg === 'number') return { id: arg, text: `#${arg}` };
  if (typeof arg === 'string') return patching.tokenOf(arg);
  const item = await pick();
  if (!item) return undefined;
  return item.token ?? patching.tokenOf(item.typed ?? '');
}

/** The command. Returns a summary (for tests) or undefined when the user backed out. */
export async function patchActivations(deps: PatchCommandDeps, args: PatchArgs = {}): Promise<unknown> {
  const { patching } = deps;
  const swap = args.swap ?? false;
  const { clean, corrupt } = patching.pair(swap); // refuses without a comparison or with unequal token counts
  const T = clean.tokens.length;
  const cursor = deps.cursorToken();
  const at = args.at ?? (cursor !== undefined && cursor < T ? cursor : T - 1);
  const needsPick = args.answer === undefined || args.wrong === undefined;
  const { from, guesses } = needsPick ? await patching.guesses(at, swap) : { from: 'clean' as const, guesses: [] };
  const fromText = from === 'clean' ? `clean run (${clean.label})` : `corrupted run (${corrupt.label}): the clean version's guesses after its last token are unknown`;
  const where = `after “${clean.tokens[at].text}” (token ${at})`;
  const answer = await resolveToken(patching, args.answer, () => pickToken(`Patching 1/2: the answer ${where}`, guesses, `guess of the ${fromText}`));
  if (!answer) return undefined;
  const wrong = await resolveToken(patching, args.wrong, () => pickToken(`Patching 2/2: the wrong token, against “${answer.text}”`, guesses, `guess of the ${fromText}`, answer.id));
  if (!wrong) return undefined;
  deps.showPanel?.();
  const view = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Headlight: patching ${clean.label} (clean) into ${corrupt.label} (corrupted)`, cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      let last = 0;
      const sub = patching.onDidCell((c) => {
        if (c.total <= 0) return;
        progress.report({ message: `${c.done} of ${c.total} runs`, increment: ((c.done - last) / c.total) * 100 });
        last = c.done;
      });
      try {
        return await patching.start({ answer, wrong, at, swap }, controller.signal);
      } catch (err) {
        if (controller.signal.aborted) throw new HeadlightError('cancelled', 'Patching was cancelled.');
        throw err;
      } finally {
        sub.dispose();
      }
    },
  );
  deps.log(`patched ${clean.label} into ${corrupt.label} at token ${at}: logit(${JSON.stringify(answer.text)}) − logit(${JSON.stringify(wrong.text)}) clean ${view.metricClean?.toFixed(3)}, corrupted ${view.metricCorrupt?.toFixed(3)}; ${view.runs} runs in ${Math.round(view.ms ?? 0)} ms`);
  return { position: at, answer, wrong, metricClean: view.metricClean, metricCorrupt: view.metricCorrupt, runs: view.runs, resid: Array.from(view.resid), heads: Array.from(view.heads) };
}
