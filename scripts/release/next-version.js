#!/usr/bin/env node
// projen's `bump:next-version` (nextVersionCommand): the first release is 0.1.0.
// With no `v*` tag, projen would release the seed version 0.0.0; this prints 0.1.0
// instead (docs/DEVELOPMENT.md, "Releasing", says why). Once a tag exists it prints nothing, and
// the bump comes from the conventional commits since that tag.
'use strict';
const { execFileSync } = require('child_process');

const FIRST_RELEASE = '0.1.0';
const tags = execFileSync('git', ['tag', '--list', 'v*'], { encoding: 'utf8' }).trim();
if (!tags) process.stdout.write(FIRST_RELEASE);
