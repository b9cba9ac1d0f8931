#!/usr/bin/env node
// pieces-gateway: open-loop fixed-rate load for bench/openai_backend.sh (added latency).
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// node bench/openai/rate.js --port P --rate R --duration S [--conns N] [--model M]
//
// Request i is due at t0 + i/R (a 1 ms scheduler tick sends every request that is due) on a
// keep-alive connection of an http.Agent with N sockets; its latency is the time from its due
// time to the end of the answer, so a slow server cannot hide its queueing (no coordinated
// omission). The same script runs against the mock upstream and against the gateway in front
// of it: the difference of the two distributions is what the gateway adds. Non-stream POST
// /v1/chat/completions; every answer must be a 200 chat.completion. Prints one JSON line:
// {"sent","good","failed","rate","p50","p90","p99","p999","max"} (ms).
'use strict';
const http = require('node:http');

const a = {};
for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].slice(2)] = process.argv[i + 1];
const PORT = Number(a.port);
const RATE = Number(a.rate || 2000);
const DURATION = Number(a.duration || 5);
const CONNS = Number(a.conns || 64);
const MODEL = a.model || 'm';
const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
const now = () => Number(process.hrtime.bigint()) / 1e6;

const lat = [];
let sent = 0;
let good = 0;
let failed = 0;
let inflight = 0;

function one(due) {
    sent++;
    inflight++;
    const req = http.request({ host: '127.0.0.1', port: PORT, path: '/v1/chat/completions',
        method: 'POST', agent, headers: { 'content-type': 'application/json',
            'content-length': Buffer.byteLength(body) } }, (res) => {
        let n = 0;
        let text = '';
        res.on('data', (d) => { n += d.length; if (text.length < 64) text += d; });
        res.on('end', () => {
            inflight--;
            if (res.statusCode === 200 && text.includes('chat.completion')) {
                good++;
                lat.push(now() - due);
            } else failed++;
        });
    });
    req.on('error', () => { inflight--; failed++; });
    req.end(body);
}

const total = Math.round(RATE * DURATION);
const t0 = now() + 50;
let next = 0;
const tick = setInterval(() => {
    const t = now();
    while (next < total && t0 + (next * 1000) / RATE <= t) one(t0 + (next++ * 1000) / RATE);
    if (next >= total) {
        clearInterval(tick);
        const wait = setInterval(() => {
            if (inflight > 0 && now() - t < 10000) return;
            clearInterval(wait);
            lat.sort((x, y) => x - y);
            const p = (q) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)] : null);
            const r3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
            process.stdout.write(JSON.stringify({ sent, good, failed, rate: RATE,
                p50: r3(p(0.5)), p90: r3(p(0.9)), p99: r3(p(0.99)), p999: r3(p(0.999)),
                max: r3(lat.length ? lat[lat.length - 1] : null) }) + '\n');
            agent.destroy();
        }, 20);
    }
}, 1);
