#!/usr/bin/env node
// pieces-gateway: a fixed number of requests against the gateway (for instruction counts,
// where a duration-based load generator would not give the same work to every run).
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// node bench/lib/drive.js --port P --n N [--conc C] [--mode models|stream|chat] [--key K]
//      [--model M]
//   models  GET /v1/models (Authorization: Bearer K when given), each a 200
//   stream  POST /v1/chat/completions {"stream":true}, each a 200 ending in "data: [DONE]"
//   chat    POST /v1/chat/completions {"stream":false}, each a 200 with a finish_reason
// Keep-alive connections, C requests in flight (default 8). Exit status 1 on any failure.
'use strict';
const http = require('node:http');

const a = {};
for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].slice(2)] = process.argv[i + 1];
const port = Number(a.port);
const total = Number(a.n || 1000);
const conc = Number(a.conc || 8);
const mode = a.mode || 'models';
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const body = JSON.stringify({ model: a.model || 'gpt-4o-mini', stream: mode === 'stream',
    messages: [{ role: 'user', content: 'hi' }] });

function one() {
    return new Promise((resolve, reject) => {
        const headers = a.key ? { authorization: `Bearer ${a.key}` } : {};
        const opts = { port, host: '127.0.0.1', agent, headers, path: '/v1/models' };
        if (mode === 'stream' || mode === 'chat') {
            Object.assign(opts, { method: 'POST', path: '/v1/chat/completions' });
            Object.assign(headers, { 'content-type': 'application/json',
                'content-length': Buffer.byteLength(body) });
        }
        const req = http.request(opts, (res) => {
            let text = '';
            res.setEncoding('latin1');
            res.on('data', (d) => { text += d; });
            res.on('end', () => {
                if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
                if (mode === 'stream' && !text.endsWith('data: [DONE]\n\n')) {
                    return reject(new Error('stream without [DONE]'));
                }
                if (mode === 'chat' && !text.includes('"finish_reason"')) {
                    return reject(new Error('answer without finish_reason'));
                }
                resolve();
            });
        });
        req.on('error', reject);
        req.end(mode === 'models' ? undefined : body);
    });
}

async function main() {
    let next = 0;
    const workers = [];
    for (let w = 0; w < conc; w++) {
        workers.push((async () => {
            while (next < total) {
                next++;
                await one();
            }
        })());
    }
    await Promise.all(workers);
    agent.destroy();
}

main().catch((e) => { console.error(`drive: ${e.message}`); process.exit(1); });
