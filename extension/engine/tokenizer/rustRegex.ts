/**
 * Translates the Oniguruma/Rust regular expressions of `tokenizer.json` (Split pre-tokenizers, Replace normalizers
 * and decoders) into JavaScript `u`-flag regular expressions that match the same text.
 *
 * Differences handled:
 * - `\s` / `\S` are Unicode White_Space in Oniguruma; JavaScript's `\s` adds U+FEFF and leaves out U+0085.
 * - `\w`, `\d` (and negations) are Unicode in Oniguruma, ASCII in JavaScript.
 * - `(?i:…)` inline groups do not exist in Node 20's engine: letters inside become case classes.
 * - possessive quantifiers `x*+ x++ x?+` and atomic groups `(?>…)` become `(?=(…))\k` look-ahead captures.
 * - escapes JavaScript's `u` mode rejects (`\'`, `\ `) become the literal character.
 * Anything else unusual (back-references, `\G`, `\K`, named groups, `(?x)`) is refused with a HeadlightError.
 */
import { HeadlightError } from '../../common/errors.js';
import { shown } from './shown.js';

const WHITE = '\\p{White_Space}';
const WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';
const DIGIT = '\\p{Nd}';
const SYNTAX = new Set('^$\\.*+?()[]{}|/-'.split(''));

/** Compiles `pattern` (Oniguruma syntax) as a global JavaScript regex; `where` names it in errors. */
export function rustRegex(pattern: string, where: string): RegExp {
  const source = translate(pattern, where);
  try {
    const re = new RegExp(source, 'gu');
    re.test(''); // V8 compiles on first use: "Regular expression too large" shows here, not at the first encode
    re.lastIndex = 0;
    return re;
  } catch (err) {
    const why = (err as Error).message; // "Invalid regular expression: /<the whole source>/gu: <reason>"
    throw unsupported(pattern, where, `it does not compile in JavaScript after translation (${why.slice(why.lastIndexOf(': ') + 2)})`);
  }
}

/** Escapes a literal string for use in a `u`-flag regex. */
export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

function unsupported(pattern: string, where: string, why: string): HeadlightError {
  return new HeadlightError(
    'tokenizer-unsupported',
    `${where}: the regular expression ${shown(pattern)} is not supported: ${why}.`,
    'Headlight cannot tokenize this model exactly; please open an issue with the model name.',
  );
}

/** The JavaScript source for an Oniguruma pattern. */
export function translate(pattern: string, where: string): string {
  let out = '';
  let i = 0;
  let groups = 0; // capture groups emitted so far (ours included), for the atomic-group back-references
  const caseless: boolean[] = [false]; // (?i) scope per open group
  const atomicOpen: Array<number | null> = []; // per open group: its capture number when it is atomic
  const n = pattern.length;
  const fail = (why: string): never => {
    throw unsupported(pattern, where, why);
  };

  // Returns the translation of the escape at pattern[i] === '\\' and advances i; `inClass` changes \s etc.
  const escape = (inClass: boolean): string => {
    const c = pattern[i + 1];
    if (c === undefined) fail('it ends with a backslash');
    i += 2;
    switch (c) {
      case 's':
        return WHITE;
      case 'S':
        return '\\P{White_Space}';
      case 'w':
        return inClass ? WORD : `[${WORD}]`;
      case 'W':
        if (inClass) fail('\\W inside a character class');
        return `[^${WORD}]`;
      case 'd':
        return DIGIT;
      case 'D':
        return '\\P{Nd}';
      case 'p':
      case 'P': {
        const m = /^\{\^?[A-Za-z_ =]+\}/.exec(pattern.slice(i));
        if (!m) fail(`\\${c} without {Property}`);
        let body = m![0].slice(1, -1);
        let kind = c;
        if (body.startsWith('^')) {
          body = body.slice(1);
          kind = c === 'p' ? 'P' : 'p';
        }
        i += m![0].length;
        return `\\${kind}{${body}}`;
      }
      case 'n':
      case 'r':
      case 't':
      case 'f':
      case 'v':
        return `\\${c}`;
      case 'x': {
        const m = /^(\{[0-9A-Fa-f]+\}|[0-9A-Fa-f]{2})/.exec(pattern.slice(i));
        if (!m) fail('\\x without hex digits');
        i += m![0].length;
        const hex = m![0].startsWith('{') ? m![0].slice(1, -1) : m![0];
        return `\\u{${hex}}`;
      }
      case 'u': {
        const m = /^[0-9A-Fa-f]{4}/.exec(pattern.slice(i));
        if (!m) fail('\\u without four hex digits');
        i += 4;
        return `\\u{${m![0]}}`;
      }
      case 'A':
        if (inClass) fail('\\A in a class');
        return '(?<![\\s\\S])';
      case 'z':
        if (inClass) fail('\\z in a class');
        return '(?![\\s\\S])';
      case 'b':
      case 'B':
        fail(`\\${c} (word boundaries are ASCII in JavaScript)`);
    }
    if (/[0-9A-Za-z]/.test(c!)) fail(`the escape \\${c}`);
    return SYNTAX.has(c!) ? `\\${c}` : literal(c!, false);
  };

  const literal = (ch: string, fold: boolean): string => {
    const escaped = SYNTAX.has(ch) ? `\\${ch}` : ch;
    if (!fold) return escaped;
    const variants = caseVariants(ch);
    return variants.length > 1 ? `[${variants.map((v) => (SYNTAX.has(v) ? `\\${v}` : v)).join('')}]` : escaped;
  };

  while (i < n) {
    const c = pattern[i]!;
    const fold = caseless[caseless.length - 1]!;
    if (c === '\\') {
      out += escape(false);
    } else if (c === '[') {
      // Character class: copied with escapes translated; (?i) letters get both cases.
      let cls = '[';
      i++;
      if (pattern[i] === '^') {
        cls += '^';
        i++;
      }
      let first = true;
      while (i < n && (pattern[i] !== ']' || first)) {
        const d = pattern[i]!;
        first = false;
        if (d === '\\') cls += escape(true);
        else if (d === '[') fail('nested character classes');
        else if (d === '&' && pattern[i + 1] === '&') fail('class intersection &&');
        else {
          cls += fold && pattern[i + 1] !== '-' && pattern[i - 1] !== '-' ? caseVariants(d).join('') : d === '/' ? '\\/' : d;
          i++;
        }
      }
      if (i >= n) fail('an unclosed character class');
      i++;
      out += cls + ']';
    } else if (c === '(') {
      if (pattern.startsWith('(?:', i)) {
        out += '(?:';
        i += 3;
        caseless.push(fold);
        atomicOpen.push(null);
      } else if (pattern.startsWith('(?i:', i)) {
        out += '(?:';
        i += 4;
        caseless.push(true);
        atomicOpen.push(null);
      } else if (pattern.startsWith('(?>', i)) {
        groups++;
        out += '(?=(';
        i += 3;
        caseless.push(fold);
        atomicOpen.push(groups);
      } else if (pattern.startsWith('(?=', i) || pattern.startsWith('(?!', i) || pattern.startsWith('(?<=', i) || pattern.startsWith('(?<!', i)) {
        const len = pattern[i + 2] === '<' ? 4 : 3;
        out += pattern.slice(i, i + len);
        i += len;
        caseless.push(fold);
        atomicOpen.push(null);
      } else if (pattern[i + 1] === '?') {
        fail(`the group ${pattern.slice(i, i + 4)}…`);
      } else {
        groups++;
        out += '(';
        i++;
        caseless.push(fold);
        atomicOpen.push(null);
      }
    } else if (c === ')') {
      if (caseless.length <= 1) fail('an unbalanced )');
      caseless.pop();
      const atomic = atomicOpen.pop();
      out += atomic ? `))\\${atomic}` : ')';
      i++;
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      let quant = c;
      if (c === '{') {
        const m = /^\{\d*(,\d*)?\}/.exec(pattern.slice(i));
        if (!m) {
          out += '\\{';
          i++;
          continue;
        }
        quant = m[0];
      }
      i += quant.length;
      if (pattern[i] === '+') {
        // Possessive: wrap the preceding atom as an atomic group.
        i++;
        const atomStart = lastAtomStart(out);
        if (countCaptures(out.slice(atomStart)) > 0) fail('a possessive quantifier on a capturing group');
        groups++;
        out = `${out.slice(0, atomStart)}(?=(${out.slice(atomStart)}${quant}))\\${groups}`;
      } else {
        if (pattern[i] === '?') {
          quant += '?';
          i++;
        }
        out += quant;
      }
    } else if (c === '|' || c === '^' || c === '$') {
      out += c; // alternation and anchors (Oniguruma's ^ and $ are line anchors)
      if (c !== '|') fail(`the anchor ${c} (line anchors differ in JavaScript)`);
      i++;
    } else if (c === '.') {
      out += '[^\\n]';
      i++;
    } else {
      const cp = pattern.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out += literal(ch, fold && /\p{L}/u.test(ch));
      i += ch.length;
    }
  }
  if (caseless.length !== 1) fail('an unclosed (');
  return out;
}

/** Every character whose simple case folding equals that of `ch` (as Oniguruma's (?i) matches), ch first. */
function caseVariants(ch: string): string[] {
  if (!/\p{L}/u.test(ch)) return [ch];
  const re = new RegExp(`^${ch}$`, 'iu');
  const out = [ch];
  for (const candidate of CASE_CANDIDATES(ch)) if (candidate !== ch && re.test(candidate)) out.push(candidate);
  return out;
}

function CASE_CANDIDATES(ch: string): string[] {
  const set = new Set([ch.toLowerCase(), ch.toUpperCase()]);
  // Characters that fold to ASCII letters besides the two cases: long s, Kelvin sign, Angstrom sign, dotted/dotless i.
  for (const extra of ['\u017f', '\u212a', '\u212b', '\u0130', '\u0131', '\u1e9e', '\u00df']) set.add(extra);
  return [...set];
}

/** Index in `out` where the last atom (char, escape, class or group) starts. */
function lastAtomStart(out: string): number {
  const end = out.length;
  const last = out[end - 1];
  if (last === ')') {
    let depth = 0;
    for (let k = end - 1; k >= 0; k--) {
      if (out[k] === ')' && !isEscaped(out, k)) depth++;
      else if (out[k] === '(' && !isEscaped(out, k)) {
        depth--;
        if (depth === 0) return k;
      }
    }
  }
  if (last === ']' && !isEscaped(out, end - 1)) {
    for (let k = end - 2; k >= 0; k--) if (out[k] === '[' && !isEscaped(out, k)) return k;
  }
  if (last === '}') {
    const m = /\\[pPu]\{[^}]*\}$/.exec(out);
    if (m) return end - m[0].length;
  }
  if (end >= 2 && isEscaped(out, end - 1)) return end - 2;
  const cp = out.codePointAt(end - 2);
  return cp !== undefined && cp > 0xffff ? end - 2 : end - 1;
}

function isEscaped(s: string, k: number): boolean {
  let slashes = 0;
  for (let j = k - 1; j >= 0 && s[j] === '\\'; j--) slashes++;
  return slashes % 2 === 1;
}

function countCaptures(s: string): number {
  let count = 0;
  for (let k = 0; k < s.length; k++) if (s[k] === '(' && !isEscaped(s, k) && s[k + 1] !== '?') count++;
  return count;
}
