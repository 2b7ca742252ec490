/**
 * A value from a tokenizer file as error messages show it: its JSON, shortened. Never throws: a value nested too
 * deeply for JSON.stringify (which recurses) is named by its kind, so a damaged file gets its HeadlightError.
 */
export function shown(v: unknown, max = 80): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = `${Array.isArray(v) ? 'an array' : 'an object'} nested too deeply to show`;
  }
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
