#!/usr/bin/env node
// pieces-gateway: benchmarks npm tiktoken (WASM) and gpt-tokenizer (pure JS) on the corpus and
// prints them next to the C engine's results (the bench_tok output file), with ratios.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// Usage: node bench.js CORPUS C_RESULTS. One thread, best of 3 runs each; special-token strings
// are counted as ordinary text everywhere (tiktoken encode_ordinary semantics).
'use strict';
const fs = require('fs');

const [corpusPath, cPath] = process.argv.slice(2);
const text = fs.readFileSync(corpusPath, 'utf8');
const mb = fs.statSync(corpusPath).size / 1e6;
const now = () => Number(process.hrtime.bigint()) / 1e9;
const rssMiB = () => process.memoryUsage().rss / 1048576;

function best(fn) {
    let t = Infinity, n = 0;
    for (let i = 0; i < 3; i++) {
        const t0 = now();
        n = fn();
        t = Math.min(t, now() - t0);
    }
    return { n, t };
}

const c = {};
for (const line of fs.readFileSync(cPath, 'utf8').split('\n')) {
    const m = line.match(/^c-engine\s+(\S+)\s+(\d+) tokens\s+([\d.]+) s/);
    if (m) c[m[1]] = { n: Number(m[2]), t: Number(m[3]) };
}

const row = (who, enc, r) => console.log(`${who.padEnd(14)} ${enc.padEnd(12)} ${String(r.n).padStart(10)} tokens ` +
    `${r.t.toFixed(3).padStart(8)} s ${(mb / r.t).toFixed(2).padStart(8)} MB/s ${Math.round(r.n / r.t).toString().padStart(12)} tokens/s`);

let rss0 = rssMiB(), t0 = now();
const { get_encoding } = require('tiktoken');
const tk = { cl100k_base: get_encoding('cl100k_base'), o200k_base: get_encoding('o200k_base') };
console.log(`tiktoken       load cl100k+o200k: ${((now() - t0) * 1e3).toFixed(1)} ms, RSS +${(rssMiB() - rss0).toFixed(1)} MiB`);
rss0 = rssMiB();
t0 = now();
const gpt = {
    cl100k_base: require('gpt-tokenizer/cjs/encoding/cl100k_base'),
    o200k_base: require('gpt-tokenizer/cjs/encoding/o200k_base'),
};
gpt.cl100k_base.countTokens('warm up', { disallowedSpecial: new Set() });
gpt.o200k_base.countTokens('warm up', { disallowedSpecial: new Set() });
console.log(`gpt-tokenizer  load cl100k+o200k: ${((now() - t0) * 1e3).toFixed(1)} ms, RSS +${(rssMiB() - rss0).toFixed(1)} MiB`);
console.log(`corpus: ${mb.toFixed(2)} MB`);

let ok = true;
for (const enc of ['cl100k_base', 'o200k_base']) {
    const a = best(() => tk[enc].encode_ordinary(text).length);
    const b = best(() => gpt[enc].countTokens(text, { disallowedSpecial: new Set() }));
    const r = c[enc];
    if (r) row('c-engine', enc, r);
    row('tiktoken', enc, a);
    row('gpt-tokenizer', enc, b);
    if (r) {
        console.log(`  ratio c-engine/tiktoken ${(a.t / r.t).toFixed(2)}x, c-engine/gpt-tokenizer ${(b.t / r.t).toFixed(2)}x` +
            `; counts ${r.n === a.n ? 'equal' : `DIFFER (c ${r.n} vs tiktoken ${a.n})`}` +
            `${b.n === a.n ? '' : ` (gpt-tokenizer ${b.n})`}`);
        ok = ok && r.n === a.n;
    }
}
process.exitCode = ok ? 0 : 1;
