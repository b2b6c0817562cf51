/* The launcher's gitignore semantics (https://git-scm.com/docs/gitignore, "PATTERN FORMAT"), and the file walk. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { listFiles } from '../../src/cli/code';
import { isIgnored, parseGitignore } from '../../src/cli/gitignore';

const ignored = (patterns: string, p: string, isDir = false, base = '') => isIgnored(parseGitignore(patterns, base), p, isDir);

test.each([
  ['*.log', 'a.log', false, true],
  ['*.log', 'deep/dir/a.log', false, true],
  ['*.log', 'a.log.txt', false, false],
  ['/build', 'build', true, true],
  ['/build', 'src/build', true, false],
  ['build/', 'src/build', true, true],
  ['build/', 'build', false, false],
  ['doc/frotz', 'doc/frotz', false, true],
  ['doc/frotz', 'a/doc/frotz', false, false],
  ['**/foo', 'a/b/foo', false, true],
  ['**/foo/bar', 'x/foo/bar', false, true],
  ['abc/**', 'abc/x/y', false, true],
  ['a/**/b', 'a/b', false, true],
  ['a/**/b', 'a/x/y/b', false, true],
  ['file?.txt', 'file1.txt', false, true],
  ['file?.txt', 'file10.txt', false, false],
  ['[abc].py', 'b.py', false, true],
  ['[!abc].py', 'b.py', false, false],
  ['# comment\n\n', '# comment', false, false],
  ['\\#hash', '#hash', false, true],
  ['*.md\n!keep.md', 'keep.md', false, false],
  ['*.md\n!keep.md', 'drop.md', false, true],
  ['trailing   ', 'trailing', false, true],
])('%j on %s (dir: %s) ignores: %s', (patterns, p, isDir, expected) => {
  expect(ignored(patterns, p, isDir)).toBe(expected);
});

test('a nested .gitignore applies below its directory only', () => {
  expect(ignored('*.csv', 'data/x.csv', false, 'data')).toBe(true);
  expect(ignored('*.csv', 'x.csv', false, 'data')).toBe(false);
  expect(ignored('/out', 'data/out', true, 'data')).toBe(true);
});

test('the walk skips .git and ignored directories, whose files a negation cannot re-include (as git)', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-walk-'));
  const write = (rel: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), rel);
  };
  ['.git/config', 'venv/lib/x.py', 'keep.py', 'venv/keep.py', 'sub/.gitignore', 'sub/a.tmp', 'sub/b.py'].forEach(write);
  fs.writeFileSync(path.join(root, '.gitignore'), 'venv/\n!venv/keep.py\n');
  fs.writeFileSync(path.join(root, 'sub', '.gitignore'), '*.tmp\n');
  fs.symlinkSync(root, path.join(root, 'loop'));
  try {
    expect(listFiles(root)).toEqual(['.gitignore', 'keep.py', 'sub/.gitignore', 'sub/b.py']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
