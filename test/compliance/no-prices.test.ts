/*
 * Issue 31: no prices in errors or docstrings. A synthesis error says what bills while idle and why; a dollar figure
 * goes stale and differs by region ("Amazon EC2 On-Demand Pricing": prices are listed per Region and change), so the
 * prices live in docs, dated (docs/IDLE-COSTS.md, docs/BATCH.md "Costs").
 */
import * as fs from 'fs';
import * as path from 'path';

const SRC = path.join(__dirname, '..', '..', 'src');

/** A price: `$0.25`, `$8/hour`, `$1 per`, `~$32`, `≈ $8`; not a shell positional parameter (`$1`, `"$0"`). */
const PRICE = /~\s?\$\d|≈\s?\$\d|\$\d+\.\d+|\$\d+\s?(\/|per\b|a (month|day|year|hour)\b)/;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const file = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(file) : e.name.endsWith('.ts') ? [file] : [];
  });
}

describe('no prices in the library source', () => {
  test('the price pattern finds the forms the source used to hold, and not a shell parameter', () => {
    for (const price of ['~$0.25/vCPU-hour', 'g5.xlarge $1.006', '32 vCPUs ≈ $8/hour', '$1/month while idle', '$0.40/month per secret']) {
      expect(price).toMatch(PRICE);
    }
    for (const shell of ['n=$1; shift', 'cp "$0" "$pb/x"', "replace(/x/, '$1')"]) {
      expect(shell).not.toMatch(PRICE);
    }
  });

  test('no docstring, comment or message of src/ holds a price', () => {
    const found = sourceFiles(SRC).flatMap(file => fs.readFileSync(file, 'utf8').split('\n')
      .map((line, i) => [`${path.relative(SRC, file)}:${i + 1}`, line] as const)
      .filter(([, line]) => PRICE.test(line))
      .map(([where, line]) => `${where}: ${line.trim()}`));
    expect(found).toEqual([]);
  });
});
