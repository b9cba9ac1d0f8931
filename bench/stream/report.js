#!/usr/bin/env node
// pieces-gateway: the tables and target verdicts of bench/stream.sh.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// node bench/stream/report.js RESULTS.jsonl --fresh-rss KB --idle-rss KB --idle-anon KB
//      --tput-model M --paced-model M --tput-scenario S --paced-scenario S --runs N
// RESULTS.jsonl: the lines of bench/stream/load.js, several runs per (mode, model, C).
// Per (mode, model, C): medians over the runs, except failures (summed) and the RSS peaks
// (maximum). Exit status 1 when any stream failed, else 0 (a missed target is not a failure
// of the benchmark; it is printed as MISSED).
'use strict';
const fs = require('node:fs');

const argv = process.argv.slice(2);
const file = argv.shift();
const o = {};
for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
    const a = xs.filter((x) => x !== null && x !== undefined).sort((x, y) => x - y);
    if (a.length === 0) return null;
    return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

function agg(mode, model, conc) {
    const rs = rows.filter((r) => r.mode === mode && r.model === model && r.conc === conc);
    if (rs.length === 0) return null;
    const m = (k) => median(rs.map((r) => r[k]));
    const reasons = {};
    for (const r of rs) for (const [k, v] of Object.entries(r.fail_reasons)) reasons[k] = (reasons[k] || 0) + v;
    return {
        runs: rs.length, streams: rs.reduce((s, r) => s + r.streams, 0),
        failures: rs.reduce((s, r) => s + r.failures, 0), reasons,
        sps: m('streams_per_s'), p50: m('ttfb_p50_ms'), p99: m('ttfb_p99_ms'),
        cpu: m('cpu_us_per_stream'), cpuNs: m('cpu_us_per_stream_schedstat'), cpuPct: m('cpu_use_pct'), wait: m('run_queue_wait_pct'),
        rss: Math.max(...rs.map((r) => r.rss_peak_kb || 0)),
        anon: Math.max(...rs.map((r) => r.anon_peak_kb || 0)),
        // streams open when the highest RSS sample of the run first reached its peak
        openAtPeak: rs.reduce((b, r) => ((r.rss_peak_kb || 0) > b[0] ? [r.rss_peak_kb, r.open_at_peak] : b), [-1, -1])[1],
    };
}

const concs = [...new Set(rows.map((r) => r.conc))].sort((a, b) => a - b);
const idleRss = Number(o['idle-rss']);
const idleAnon = Number(o['idle-anon']);
const f = (x, d = 2, w = 7) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d)).padStart(w);
const mb = (kb) => kb / 1024;
let totalFailures = 0;
const allReasons = {};

function table(title, model) {
    console.log(`\n${title}`);
    console.log('       C  streams/s | TTFB ms: gateway    mock direct: grpc-js    raw h2   added vs grpc-js  vs raw h2      | gw CPU-us/stream  gw CPU  gw wait | RSS peak MB (anon)  open  per-stream KB | streams  fail');
    console.log('                    |         p50     p99     p50     p99     p50     p99     p50     p99     p50     p99 | stat  (schedstat) use %   %       |                     @peak  (peak-idle)/C |');
    const two = (a, k1, k2) => (a ? f(a[k1], 2, 8) + f(a[k2], 2, 8) : '     n/a     n/a');
    const diff = (g, d) => (d ? f(g.p50 - d.p50, 2, 8) + f(g.p99 - d.p99, 2, 8) : '     n/a     n/a');
    for (const c of concs) {
        const g = agg('gw', model, c);
        const d = agg('grpc', model, c);
        const h = agg('h2', model, c);
        if (!g) continue;
        let streams = 0, fails = 0;
        for (const [a, who] of [[g, 'gateway'], [d, 'mock direct grpc-js'], [h, 'mock direct raw h2']]) {
            if (!a) continue;
            totalFailures += a.failures;
            streams += a.streams;
            fails += a.failures;
            for (const [k, v] of Object.entries(a.reasons)) allReasons[`${who} C=${c} ${model}: ${k}`] = v;
        }
        const perStream = (g.rss - idleRss) / c;
        console.log(`  ${String(c).padStart(6)} ${f(g.sps, 0, 9)}  | ${two(g, 'p50', 'p99')}${two(d, 'p50', 'p99')}${two(h, 'p50', 'p99')}` +
            `${diff(g, d)}${diff(g, h)} | ${f(g.cpu, 1, 6)} (${f(g.cpuNs, 1, 7)}) ${f(g.cpuPct, 0, 5)}  ${f(g.wait, 0, 6)}  |` +
            ` ${f(mb(g.rss), 1, 8)} (${f(mb(g.anon), 1, 5)}) ${(g.openAtPeak < 0 ? '-' : String(g.openAtPeak)).padStart(6)} ${f(perStream, 2, 9)}      |` +
            ` ${String(streams).padStart(7)} ${String(fails).padStart(5)}`);
    }
}

const tput = o['tput-model'];
const paced = o['paced-model'];
console.log(`gateway RSS: ${f(mb(Number(o['fresh-rss'])), 1, 0)} MB just started, ` +
    `${f(mb(idleRss), 1, 0)} MB (anon ${f(mb(idleAnon), 1, 0)} MB) idle after the warm-up (the "idle" of per-stream memory)`);
table(`throughput: model ${tput} -> mock scenario ${o['tput-scenario']} (20 chunks back to back)`, tput);
table(`paced: model ${paced} -> mock scenario ${o['paced-scenario']} (5 ms before each of the 20 chunks)`, paced);
console.log('\n  open @peak: streams open when the RSS first reached the peak ("-": the RSS did not grow during the run);');
console.log('  medians of the runs; RSS peaks are the maximum of VmRSS sampled every 50 ms; "added" = gateway - mock direct;');
console.log('  gw CPU-us/stream: utime+stime of /proc/<pid>/stat (10 ms ticks: coarse when few streams ran) and the same from');
console.log('  /proc/<pid>/task/*/schedstat (ns). mock direct: grpc-js = @grpc/grpc-js PredictWithStream; raw h2 = node:http2 with');
console.log('  hand-made gRPC frames (lighter, closer in cost to the raw HTTP/1.1 client of the gateway runs). Both share CPU 1');
console.log('  with the mock, so a negative "added" means that client costs more than the gateway hop, not a faster upstream.');
console.log('  gw wait % = time the gateway was runnable but CPU 0 was busy with something else (high = disturbed run).');

// ---- targets -------------------------------------------------------------------------------
const hi = concs[concs.length - 1];
const verdicts = [];
function target(name, value, limit, unit, cmp = '<=') {
    if (value === null || value === undefined || Number.isNaN(value)) {
        verdicts.push([name, 'n/a', `${cmp} ${limit} ${unit}`, '', 'not measured']);
        return;
    }
    const ok = cmp === '<' ? value < limit : value <= limit;
    verdicts.push([name, `${value.toFixed(2)} ${unit}`, `${cmp} ${limit} ${unit}`,
        limit ? `${(value / limit).toFixed(2)}x` : '', ok ? 'met' : 'MISSED']);
}
const g50t = agg('gw', tput, 50), d50t = agg('grpc', tput, 50), h50t = agg('h2', tput, 50);
const g50p = agg('gw', paced, 50), d50p = agg('grpc', paced, 50), h50p = agg('h2', paced, 50);
const g500p = agg('gw', paced, 500);
const ghip = agg('gw', paced, hi);
target('gateway CPU per stream, C=50, back to back', g50t && g50t.cpu, 150, 'us');
target('gateway CPU per stream, C=50, paced', g50p && g50p.cpu, 150, 'us');
target('TTFB added at p99 vs grpc-js, C=50, paced', g50p && d50p && g50p.p99 - d50p.p99, 1, 'ms', '<');
target('TTFB added at p99 vs raw h2, C=50, paced', g50p && h50p && g50p.p99 - h50p.p99, 1, 'ms', '<');
target('TTFB added at p99 vs grpc-js, C=50, back to back', g50t && d50t && g50t.p99 - d50t.p99, 1, 'ms', '<');
target('TTFB added at p99 vs raw h2, C=50, back to back', g50t && h50t && g50t.p99 - h50t.p99, 1, 'ms', '<');
target('RSS with 500 open streams (paced)', g500p && mb(g500p.rss), 20, 'MB');
target(`memory per open stream at C=${hi} (paced; target at 10k)`, ghip && (ghip.rss - idleRss) / hi, 10, 'KB');
console.log('\ntargets (docs TARGETS.md)                                  measured      target       ratio  verdict');
for (const v of verdicts) console.log(`  ${v[0].padEnd(56)} ${v[1].padStart(11)} ${v[2].padStart(11)} ${v[3].padStart(8)}  ${v[4]}`);
if (ghip) console.log(`  RSS at the highest concurrency (C=${hi}, paced): ${f(mb(ghip.rss), 1, 0)} MB (anon ${f(mb(ghip.anon), 1, 0)} MB), ${ghip.openAtPeak < 0 ? 'no growth during the run' : `${ghip.openAtPeak} streams open at the peak`}`);

const res = (a, k) => (a && a[k] !== null ? +a[k].toFixed(1) : 'na');
console.log(`RESULT stream cpu_us_c50=${res(g50t, 'cpu')} cpu_us_c50_paced=${res(g50p, 'cpu')}` +
    ` ttfb_added_p99_ms_c50_paced=${g50p && d50p ? (g50p.p99 - d50p.p99).toFixed(3) : 'na'}` +
    ` ttfb_added_p99_ms_c50_paced_rawh2=${g50p && h50p ? (g50p.p99 - h50p.p99).toFixed(3) : 'na'}` +
    ` rss_kb_c500=${res(g500p, 'rss')} rss_kb_c${hi}=${res(ghip, 'rss')} rss_idle_kb=${idleRss}` +
    ` failures=${totalFailures}`);

if (totalFailures > 0) {
    console.log('\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    console.log(`!!! ${totalFailures} STREAM(S) FAILED: the numbers above are NOT valid`);
    for (const [k, v] of Object.entries(allReasons)) console.log(`!!!   ${v} x ${k}`);
    console.log('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    process.exit(1);
}
console.log('all streams good: 200, 20 content chunks in order, "data: [DONE]" (mock direct: 20 + 204, status OK)');
