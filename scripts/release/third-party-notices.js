#!/usr/bin/env node
// Writes THIRD-PARTY-NOTICES.txt beside every JavaScript bundle in assets/ (the Lambda handlers esbuild bundles:
// projen's `bundle`, run by pre-compile), with the license text of every npm package the bundle contains, so that
// the npm tarball (and the jsii wheel, which embeds it) ships the notices of the code it redistributes.
// check_artifacts.py fails a tarball with a bundle but no notices beside it.
//
//   node scripts/release/third-party-notices.js [ROOT]     (default: the current directory)
//
// What a bundle contains is read from esbuild's module comments (`// node_modules/PKG/...`, one before each
// module it inlines; esbuild writes them unless it minifies): a minified bundle, without them, fails here (build it
// without --minify). esbuild's own runtime helpers (`var __name = ...` at the top) are esbuild's code: its license is
// included when the bundle has them.
'use strict';
const fs = require('fs');
const path = require('path');

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\.(md|txt|markdown))?$/i;

function bundlesIn(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && /^index\.(c|m)?js$/.test(e.name))
    .map(e => path.join(e.parentPath ?? e.path, e.name));
}

/** The package directories (relative to ROOT) whose modules BUNDLE inlines, from esbuild's module comments. */
function bundledPackages(source) {
  const comments = [...source.matchAll(/^\s*\/\/ (\S+\.(?:[cm]?[jt]sx?|json))$/gm)].map(m => m[1]);
  const packages = new Set();
  for (const file of comments) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (m) packages.add(m[1]);
  }
  return { modules: comments.length, packages: [...packages].sort() };
}

function licenseOf(root, dir) {
  const abs = path.join(root, dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(abs, 'package.json'), 'utf8'));
  const files = fs.readdirSync(abs).filter(f => LICENSE_FILE.test(f)).sort();
  const license = typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? pkg.licenses ?? 'UNKNOWN');
  const texts = files.map(f => `--- ${f} ---\n${fs.readFileSync(path.join(abs, f), 'utf8').trim()}\n`);
  return { name: pkg.name, version: pkg.version, license, texts };
}

function writeNotices(root) {
  const written = [];
  for (const bundle of bundlesIn(path.join(root, 'assets'))) {
    const rel = path.relative(root, bundle);
    const source = fs.readFileSync(bundle, 'utf8');
    const { modules, packages } = bundledPackages(source);
    if (modules === 0) {
      throw new Error(`${rel} has no esbuild module comments (minified?): cannot tell which packages it bundles; bundle it without --minify`);
    }
    const parts = packages.map(dir => licenseOf(root, dir));
    for (const p of parts) {
      if (p.texts.length === 0) throw new Error(`${rel} bundles ${p.name}@${p.version} (${p.license}), whose package has no license file to ship`);
    }
    if (/^var __\w+ = /m.test(source)) {
      const esbuild = licenseOf(root, 'node_modules/esbuild');
      parts.push({ ...esbuild, note: ' (its runtime helpers, at the top of the bundle)' });
    }
    const head = `Third-party notices for ${path.basename(bundle)} (${rel}), a bundle of @chronos/training-infra (Apache-2.0, see LICENSE).\n` +
      'The AWS SDK for JavaScript v3 it imports is not bundled: the AWS Lambda Node.js runtime provides it.\n' +
      (parts.length ? `It contains code of ${parts.length} other package(s):\n` : 'It contains no code of other packages.\n');
    const body = parts.map(p => `\n=== ${p.name} ${p.version} (${p.license})${p.note ?? ''} ===\n${p.texts.join('\n')}`).join('');
    fs.writeFileSync(path.join(path.dirname(bundle), 'THIRD-PARTY-NOTICES.txt'), head + body);
    written.push({ bundle: rel, packages: parts.map(p => `${p.name}@${p.version}`) });
  }
  return written;
}

if (require.main === module) {
  try {
    for (const w of writeNotices(path.resolve(process.argv[2] ?? '.'))) {
      console.log(`third-party-notices: ${w.bundle}: ${w.packages.length ? w.packages.join(', ') : 'no other package'}`);
    }
  } catch (e) {
    console.error(`third-party-notices: ${e.message}`);
    process.exit(1);
  }
}
module.exports = { writeNotices, bundledPackages };
