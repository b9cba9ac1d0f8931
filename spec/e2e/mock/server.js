#!/usr/bin/env node
// pieces-gateway: standalone mock Pieces upstream for C integration tests and benchmarks.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// node spec/e2e/mock/server.js --port N [--tls-port M --tls-dir D] [--limited-port L
//      --max-streams K] [--blackhole-port B] [--raw-port R] [--events FILE] [--host H]
//
//   --port          grpc-js h2c server (scenarios by model, see scripts.js)
//   --tls-port      the same services over TLS; certificates are made in --tls-dir
//                   (ca.pem, server.pem, other-ca.pem) unless they exist already
//   --limited-port  h2c server advertising SETTINGS_MAX_CONCURRENT_STREAMS = --max-streams
//   --blackhole-port TCP server that sends one empty HTTP/2 SETTINGS frame, then reads and
//                   never answers anything (no SETTINGS ACK, no PING ACK): a hung peer
//   --raw-port      plain Node http2 server answering every request with HTTP 503, or
//                   with RST_STREAM REFUSED_STREAM when the path contains "Refuse"
//   --events        append every recorded event (request/cancel/progress/goaway) as JSON
// Port 0 picks a free port. When all servers listen it prints one line:
//   READY port=N tls=M limited=L blackhole=B raw=R
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const http2 = require('node:http2');
const path = require('node:path');
const { startMock } = require('./mock');
const { makeCerts } = require('./certs');

function parseArgs(argv) {
    const a = {};
    for (let i = 2; i < argv.length; i++) {
        const k = argv[i];
        if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
        a[k.slice(2)] = argv[++i];
    }
    return a;
}

function listen(server, port, host) {
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number(port), host, () => resolve(server.address().port));
    });
}

function blackhole(host, port) {
    const sockets = new Set();
    const srv = net.createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
        s.on('data', () => {});             // swallow the preface, SETTINGS, PINGs
        s.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // empty SETTINGS
    });
    return listen(srv, port, host);
}

function raw503(host, port) {
    const srv = http2.createServer();
    srv.on('stream', (stream, headers) => {
        stream.on('error', () => {});
        if (String(headers[':path']).includes('Refuse')) { // as if never processed
            stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
            return;
        }
        stream.respond({ ':status': 503, 'content-type': 'text/plain' });
        stream.end('service unavailable\n');
    });
    srv.on('sessionError', () => {});
    return listen(srv, port, host);
}

async function main() {
    const a = parseArgs(process.argv);
    const host = a.host || '127.0.0.1';
    const eventsFile = a.events || null;
    const out = [];
    const mocks = [];
    if (a.port !== undefined) {
        const m = await startMock({ host, port: Number(a.port), eventsFile });
        mocks.push(m);
        out.push(`port=${m.port}`);
    }
    if (a['tls-port'] !== undefined) {
        const dir = a['tls-dir'] || fs.mkdtempSync('/tmp/gw-mock-tls-');
        if (!fs.existsSync(path.join(dir, 'server.pem'))) makeCerts(dir);
        const m = await startMock({
            host, port: Number(a['tls-port']), eventsFile,
            tls: { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') },
        });
        mocks.push(m);
        out.push(`tls=${m.port}`);
    }
    if (a['limited-port'] !== undefined) {
        const m = await startMock({ host, port: Number(a['limited-port']), eventsFile,
            maxStreams: Number(a['max-streams'] || 2) });
        mocks.push(m);
        out.push(`limited=${m.port}`);
    }
    if (a['blackhole-port'] !== undefined) out.push(`blackhole=${await blackhole(host, a['blackhole-port'])}`);
    if (a['raw-port'] !== undefined) out.push(`raw=${await raw503(host, a['raw-port'])}`);
    process.stdout.write(`READY ${out.join(' ')}\n`);
    const stop = () => Promise.all(mocks.map((m) => m.close())).then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

main().catch((e) => {
    process.stderr.write(`mock: ${e.stack || e}\n`);
    process.exit(1);
});
