// Regular expressions in routes run on RE2 (Envoy, and our data plane follows RE2 semantics), so a
// pattern must both compile and avoid the constructs RE2 leaves out on purpose (they need
// backtracking). JavaScript's RegExp catches syntax errors; the scan below names what RE2 lacks.
/** Why `pattern` cannot be used as an RE2 regular expression, or undefined if it can. */
export function re2Problem(pattern: string): string | undefined {
  const unsupported = unsupportedConstruct(pattern);
  if (unsupported) return `uses ${unsupported}, which RE2 does not support`;
  try {
    new RegExp(pattern);
  } catch (e) {
    const detail = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e);
    return `is not a valid regular expression: ${detail}`;
  }
  return undefined;
}

function unsupportedConstruct(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next)) return `a backreference "\\${next}"`;
      if (!inClass && next === 'k' && pattern[i + 2] === '<') return 'a named backreference "\\k<…>"';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      // A "]" right after "[" or "[^" is a literal member, not the end of the class.
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2, i + 4);
      if (rest.startsWith('=')) return 'a lookahead "(?=…)"';
      if (rest.startsWith('!')) return 'a negative lookahead "(?!…)"';
      if (rest === '<=') return 'a lookbehind "(?<=…)"';
      if (rest === '<!') return 'a negative lookbehind "(?<!…)"';
      if (rest.startsWith('>')) return 'an atomic group "(?>…)"';
    }
    if ((c === '+' || c === '*' || c === '?' || c === '}') && pattern[i + 1] === '+') {
      return `a possessive quantifier "${c}+"`;
    }
  }
  return undefined;
}
