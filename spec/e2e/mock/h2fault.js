// pieces-gateway: a fault-injecting Pieces upstream on Node's node:http2 (frame-level control).
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// The grpc-js mock (mock.js) always ends a call the way a gRPC server does. This one writes the
// HTTP/2 frames itself, so a test can cut a stream anywhere: after some gRPC messages (5-byte
// framed protobuf, encoded from the real proto/*.proto files), inside a message, with an
// RST_STREAM, with a GOAWAY and a closed connection, or by dropping the TCP connection.
//
//   const up = await startFault();            // h2c on 127.0.0.1, free port
//   up.script = [{ msg: { text: 'a' } }, { rst: 2 }];   // used by every call until changed
//   up.address                                 // "http://127.0.0.1:PORT"
//   up.calls                                   // [{ path, service, method, request }]
//   await up.play(steps)                       // up.quiet(), then up.script = steps
//   await up.close();
//
// Steps, run in order per call (the response HEADERS go out before the first step):
//   { msg: { text, code = 200, time, id } }  one reply message (GPT or Vertex by the path)
//   { half: { text, code } }     the first half of such a message's bytes, nothing more
//   { delay: ms }                sleep
//   { end: { status = 0, message } }   trailers with grpc-status (the normal gRPC end)
//   { rst: code }                RST_STREAM with that HTTP/2 code (2 = INTERNAL_ERROR)
//   { goaway: code }             GOAWAY (last stream id = this one), then close the TCP connection
//   { tcp: 'eof' | 'reset' }     close the TCP connection: FIN, or a TCP RST
//   { hang: true }               stop here, keep everything open
// A script that runs out of steps ends with grpc-status 0.
//
// startHttp1() and startGarbage() give upstreams that do not speak HTTP/2 at all.
'use strict';
const http = require('node:http');
const http2 = require('node:http2');
const net = require('node:net');
const path = require('node:path');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.resolve(__dirname, '../../../proto');
const LOADER_OPTS = { keepCase: true, longs: Number, enums: String, defaults: true };
const PKG = 'runtime.aot.machine_learning.parents';
const C = http2.constants;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The serializers grpc-js would use, from the real protos: { gpt: {Predict, PredictWithStream}, ... }
function loadCodecs() {
    const out = {};
    for (const svc of ['gpt', 'vertex']) {
        const def = protoLoader.loadSync(path.join(PROTO_DIR, `${svc}.proto`), LOADER_OPTS);
        const name = svc === 'gpt' ? 'GPTInferenceService' : 'VertexInferenceService';
        out[svc] = def[`${PKG}.${svc}.${name}`];
    }
    return out;
}
const CODECS = loadCodecs();

function replyObject(service, { text, code = 200, time, id = 'chatcmpl-fault' }) {
    if (service === 'gpt') {
        const r = { response_code: code };
        if (text !== undefined) {
            r.body = { id, object: 'chat.completion', time: time ?? 0,
                message_warpper: { arg1: 1, message: { role: 1, message: text } } };
        }
        return r;
    }
    const r = { response_code: code };
    if (text !== undefined) r.args = { args: { args: { unknown: 3, message: text } } };
    return r;
}

// One length-prefixed gRPC message.
function grpcFrame(payload) {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(payload.length, 1);
    return Buffer.concat([head, payload]);
}

function encodeReply(service, method, m) {
    return grpcFrame(CODECS[service][method].responseSerialize(replyObject(service, m)));
}

function parsePath(p) {
    const r = /\.(gpt|vertex)\.\w+\/(\w+)$/.exec(String(p));
    return r ? { service: r[1], method: r[2] } : { service: null, method: null };
}

function writeAsync(stream, buf) {
    return new Promise((resolve) => stream.write(buf, () => resolve()));
}

class FaultUpstream {
    constructor() {
        this.script = [];
        this.calls = [];
        this.sockets = new Set();
        this.dropping = [];
    }

    // Waits until every connection a step closed is gone, and a little more, so that the
    // gateway saw it before the next request (else that request may land on the dying one).
    async quiet() {
        await Promise.all(this.dropping);
        this.dropping = [];
        await sleep(50);
    }

    async play(steps) {
        await this.quiet();
        this.script = steps;
    }

    drop(session, how) {
        const sock = session[kRawSocket];
        this.dropping.push(new Promise((resolve) => {
            if (sock.destroyed) resolve();
            else sock.once('close', resolve);
        }));
        if (how === 'reset') sock.resetAndDestroy();
        else sock.end();
    }

    async run(session, stream, headers, body) {
        const { service, method } = parsePath(headers[':path']);
        const call = { path: headers[':path'], service, method, request: null };
        if (service && body.length >= 5) {
            call.request = CODECS[service][method].requestDeserialize(body.subarray(5));
        }
        this.calls.push(call);
        if (!service) {
            stream.respond({ ':status': 404 }, { endStream: true });
            return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' },
            { waitForTrailers: true });
        let trailers = { 'grpc-status': '0' };
        stream.once('wantTrailers', () => stream.sendTrailers(trailers));
        for (const s of this.script) {
            if (stream.destroyed) return;
            if (s.delay) await sleep(s.delay);
            if (s.hang) return;
            if (s.msg) await writeAsync(stream, encodeReply(service, method, s.msg));
            if (s.half) {
                const b = encodeReply(service, method, s.half);
                await writeAsync(stream, b.subarray(0, Math.ceil(b.length / 2)));
            }
            if (s.end) {
                trailers = { 'grpc-status': String(s.end.status ?? 0) };
                if (s.end.message) trailers['grpc-message'] = encodeURIComponent(s.end.message);
                stream.end();
                return;
            }
            if (s.rst !== undefined) {
                stream.close(s.rst);
                return;
            }
            if (s.goaway !== undefined) {
                session.goaway(s.goaway, stream.id);
                await sleep(30); // let the GOAWAY reach the wire before the FIN
                this.drop(session, 'eof');
                return;
            }
            if (s.tcp) {
                await sleep(10);
                this.drop(session, s.tcp);
                return;
            }
        }
        stream.end();
    }
}

const kRawSocket = Symbol('rawSocket');

async function listen(server) {
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    return server.address().port;
}

function trackSockets(server, set) {
    server.on('connection', (sock) => {
        set.add(sock);
        sock.on('close', () => set.delete(sock));
        sock.on('error', () => {});
    });
}

function closer(server, sockets) {
    return () => new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
    });
}

async function startFault() {
    const up = new FaultUpstream();
    const server = http2.createServer();
    trackSockets(server, up.sockets);
    // The raw TCP socket under each session: http2 hides it behind a proxy that refuses end().
    let lastSock = null;
    server.prependListener('connection', (sock) => { lastSock = sock; });
    server.on('session', (session) => {
        session[kRawSocket] = lastSock;
        session.on('error', () => {});
    });
    server.on('stream', (stream, headers) => {
        stream.on('error', () => {});
        const parts = [];
        stream.on('data', (d) => parts.push(d));
        stream.on('end', () => {
            up.run(stream.session, stream, headers, Buffer.concat(parts)).catch(() => {});
        });
    });
    const port = await listen(server);
    up.port = port;
    up.address = `http://127.0.0.1:${port}`;
    up.close = closer(server, up.sockets);
    return up;
}

// An HTTP/1.1 server: answers whatever it can parse with a plain 200, like a web server would.
async function startHttp1() {
    const sockets = new Set();
    const server = http.createServer((req, res) => res.end('hello from HTTP/1.1\n'));
    trackSockets(server, sockets);
    const port = await listen(server);
    return { port, address: `http://127.0.0.1:${port}`, close: closer(server, sockets),
        connections: () => server.connectionsCount ?? 0, server };
}

// A TCP server that answers every connection with bytes that are no protocol at all, then
// keeps the connection open (the gateway must not wait for the connect timeout).
async function startGarbage() {
    const sockets = new Set();
    let accepted = 0;
    const server = net.createServer((sock) => {
        accepted++;
        sock.on('data', () => {});
        sock.write(Buffer.from('\x17\x03\x03garbage, not HTTP/2 at all \xff\xfe\x00\x01\r\n', 'latin1'));
    });
    trackSockets(server, sockets);
    const port = await listen(server);
    return { port, address: `http://127.0.0.1:${port}`, close: closer(server, sockets),
        accepted: () => accepted };
}

module.exports = { startFault, startHttp1, startGarbage, encodeReply, grpcFrame,
    http2Constants: C };
