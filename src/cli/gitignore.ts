/*
 * The part of gitignore's semantics the launcher needs to choose the files of a working directory
 * (https://git-scm.com/docs/gitignore, "PATTERN FORMAT"): blank lines and `#` comments, `\` escapes,
 * trailing spaces, `!` negation, a trailing `/` for directories only, a `/` at the start or in the
 * middle anchoring the pattern to the .gitignore's directory, `*`, `?`, `[...]` and `**`. The last
 * matching pattern wins; deeper .gitignore files come after shallower ones. As in git, a file under an
 * excluded directory cannot be re-included (the walk does not enter the directory).
 */

/** One pattern of a .gitignore file. */
export interface IgnoreRule {
  /** The directory of the .gitignore, relative to the root, with `/` separators ('' for the root). */
  readonly base: string;
  readonly negate: boolean;
  readonly dirOnly: boolean;
  readonly regex: RegExp;
  /** The line as written, for messages. */
  readonly source: string;
}

/** Parses the text of a .gitignore found in `base` (relative to the root). */
export function parseGitignore(text: string, base: string = ''): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    // Trailing spaces are ignored unless escaped with a backslash.
    line = line.replace(/(?<!\\)\s+$/, '').replace(/\\(\s)$/, '$1');
    if (line === '') continue;
    let negate = false;
    if (line.startsWith('!')) {
      negate = true;
      line = line.slice(1);
    } else if (line.startsWith('\\!') || line.startsWith('\\#')) {
      line = line.slice(1);
    }
    let dirOnly = false;
    if (line.endsWith('/')) {
      dirOnly = true;
      line = line.slice(0, -1);
    }
    if (line === '') continue;
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    const body = globToRegex(line);
    const regex = new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`);
    rules.push({ base, negate, dirOnly, regex, source: raw });
  }
  return rules;
}

/** A gitignore glob as a regular expression body (no anchors). */
function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const atStart = i === 0 || glob[i - 1] === '/';
        const atEnd = i + 2 === glob.length;
        if (atStart && glob[i + 2] === '/') {
          out += '(?:.*/)?'; // `**/`: zero or more directories
          i += 2;
          continue;
        }
        if (atStart && atEnd) {
          out += '.*'; // `/**` at the end: everything inside
          i += 1;
          continue;
        }
        out += '[^/]*'; // another `**` is a plain `*`
        i += 1;
        continue;
      }
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '\\' && i + 1 < glob.length) {
      out += escapeRegex(glob[++i]);
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      out += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

function escapeRegex(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/**
 * Whether `relPath` (relative to the root, `/` separators) is ignored by `rules` (in the order of their
 * files, shallower first): the last rule that matches decides.
 */
export function isIgnored(rules: readonly IgnoreRule[], relPath: string, isDir: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.dirOnly && !isDir) continue;
    let rel: string;
    if (rule.base === '') {
      rel = relPath;
    } else if (relPath.startsWith(`${rule.base}/`)) {
      rel = relPath.slice(rule.base.length + 1);
    } else {
      continue;
    }
    if (rule.regex.test(rel)) ignored = !rule.negate;
  }
  return ignored;
}
