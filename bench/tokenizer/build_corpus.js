#!/usr/bin/env node
// pieces-gateway: writes the ~10 MB mixed benchmark corpus (deterministic) to argv[2].
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// Documents are drawn with a fixed-seed PRNG from the golden-test corpus
// (spec/fixtures/tokenizer/corpus.jsonl: prose in ten scripts, code, JSON, URLs, emoji, numbers,
// whitespace) minus its invalid-UTF-8 and long-repeat cases, joined by blank lines, with fresh
// random numbers and words mixed in so that not every piece repeats.
'use strict';
const fs = require('fs');
const path = require('path');

const out = process.argv[2];
const target = Number(process.argv[3] || 10 * 1000 * 1000);
const src = path.join(__dirname, '../../spec/fixtures/tokenizer/corpus.jsonl');
const texts = fs.readFileSync(src, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((c) => !/^(invalid|repeat|long_word|num_7|num_8)/.test(c.name))
    .map((c) => Buffer.from(c.hex, 'hex').toString('utf8'))
    .filter((t) => t.length > 0);

let seed = 42;
const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 4294967296;
};
const letters = 'etaoinshrdlucmfwypvbgkjqxz';
const word = () => {
    let w = '';
    for (let n = 2 + Math.floor(rnd() * 9); n > 0; n--) w += letters[Math.floor(rnd() * rnd() * 26)];
    return w;
};

const parts = [];
let size = 0;
while (size < target) {
    let doc = texts[Math.floor(rnd() * texts.length)];
    if (rnd() < 0.5) doc += ' ' + word() + ' ' + Math.floor(rnd() * 100000) + ' ' + word() + '.';
    parts.push(doc);
    size += Buffer.byteLength(doc) + 2;
}
fs.writeFileSync(out, parts.join('\n\n'));
process.stderr.write(`corpus: ${out}, ${fs.statSync(out).size} bytes, ${parts.length} documents\n`);
