// pieces-gateway: self-test of the mock upstream module (spec/e2e/mock/mock.js).
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// Drives the mock with a stock grpc-js client and with raw node:http2, so the e2e and C
// integration tests can trust what it does: scripts, recording, cancellation, trailers-only
// errors, RST_STREAM, GOAWAY and TLS. Run: node --test spec/e2e/mock/
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http2 = require('node:http2');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { startMock } = require('./mock');
const { makeCerts } = require('./certs');

const PROTO = path.resolve(__dirname, '../../../proto');
const opts = { keepCase: true, longs: Number, defaults: true };
const gptPkg = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO, 'gpt.proto'), opts));
const vxPkg = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO, 'vertex.proto'), opts));
const Gpt = gptPkg.runtime.aot.machine_learning.parents.gpt.GPTInferenceService;
const Vertex = vxPkg.runtime.aot.machine_learning.parents.vertex.VertexInferenceService;

let mock;
let gpt;
let vertex;
before(async () => {
    mock = await startMock({});
    const md = { 'grpc.primary_user_agent': 'dart-grpc/2.0.0' };
    gpt = new Gpt(mock.address, grpc.credentials.createInsecure(), md);
    vertex = new Vertex(mock.address, grpc.credentials.createInsecure(), md);
});
after(async () => {
    gpt.close();
    vertex.close();
    await mock.close();
});

function collect(stream) {
    return new Promise((resolve) => {
        const frames = [];
        stream.on('data', (f) => frames.push(f));
        stream.on('error', (err) => resolve({ frames, err }));
        stream.on('end', () => resolve({ frames, err: null }));
    });
}

const gptText = (f) => f.body && f.body.message_warpper && f.body.message_warpper.message.message;

test('default scenario streams three chunks and a 204, and records the request', async () => {
    const { frames, err } = await collect(gpt.PredictWithStream({ models: 'gpt-4o', messages: [{ role: 1, message: 'user:hi;\r\n' }] }));
    assert.equal(err, null);
    assert.deepEqual(frames.map((f) => f.response_code), [200, 200, 200, 204]);
    assert.equal(frames.slice(0, 3).map(gptText).join(''), 'Hello, world');
    const rec = mock.requests.at(-1);
    assert.equal(rec.model, 'gpt-4o');
    assert.equal(rec.method, 'PredictWithStream');
    assert.equal(rec.request.messages[0].message, 'user:hi;\r\n');
    assert.equal(rec.headers.te, 'trailers');
    assert.match(rec.headers['user-agent'], /^dart-grpc\/2\.0\.0/);
});

test('unary Predict joins the script text; vertex path works', async () => {
    const r = await new Promise((res, rej) => vertex.Predict({ models: 'chunks-3-0', args: { messages: { unknown: 1, message: 'x' } } }, (e, v) => (e ? rej(e) : res(v))));
    assert.equal(r.response_code, 200);
    assert.equal(r.args.args.args.message, 'c0 c1 c2 ');
});

test('handler functions and array scripts per service', async () => {
    mock.on('gpt', [{ text: 'a', code: 439 }, { code: 204 }]);
    const { frames } = await collect(gpt.PredictWithStream({ models: 'x' }));
    assert.deepEqual(frames.map((f) => f.response_code), [439, 204]);
    mock.on('gpt', async (call, ctx) => { ctx.send(200, 'fn'); ctx.error(8, 'quota'); });
    const r2 = await collect(gpt.PredictWithStream({ models: 'x' }));
    assert.equal(r2.frames.length, 1);
    assert.equal(r2.err.code, 8);
    assert.equal(r2.err.details, 'quota');
    mock.reset();
});

function rawCall(address, pathName, model) {
    // A minimal hand-made gRPC request: 5-byte prefix + protobuf (field 1 = models).
    const pb = Buffer.concat([Buffer.from([0x0a, model.length]), Buffer.from(model)]);
    const prefix = Buffer.from([0, 0, 0, 0, pb.length]);
    return new Promise((resolve) => {
        const s = http2.connect(`http://${address}`);
        const req = s.request({ ':method': 'POST', ':path': pathName, 'content-type': 'application/grpc', te: 'trailers' });
        const out = { headers: null, trailers: null, rst: null, data: 0 };
        req.on('response', (h) => { out.headers = h; });
        req.on('trailers', (t) => { out.trailers = t; });
        req.on('data', (d) => { out.data += d.length; });
        req.on('close', () => { out.rst = req.rstCode; s.close(); resolve(out); });
        req.on('error', () => {});
        req.end(Buffer.concat([prefix, pb]));
    });
}

test('errors before any message are trailers-only (grpc-status in the HEADERS)', async () => {
    const out = await rawCall(mock.address, '/runtime.aot.machine_learning.parents.gpt.GPTInferenceService/PredictWithStream', 'status-13-boom');
    assert.equal(out.headers['grpc-status'], '13');
    assert.equal(out.trailers, null);
    assert.equal(out.data, 0);
});

test('rst scenario resets the stream with INTERNAL_ERROR', async () => {
    const out = await rawCall(mock.address, '/runtime.aot.machine_learning.parents.gpt.GPTInferenceService/PredictWithStream', 'rst');
    assert.equal(out.rst, http2.constants.NGHTTP2_INTERNAL_ERROR);
});

test('cancellations are recorded', async () => {
    const call = gpt.PredictWithStream({ models: 'chunks-50-10#cancel-me' });
    call.on('error', () => {});
    await new Promise((r) => call.once('data', r));
    call.cancel();
    await mock.waitFor(() => mock.cancellations.some((c) => c.model === 'chunks-50-10#cancel-me'), 2000);
});

test('goaway scenario sends GOAWAY and still finishes the call', async () => {
    let goaway = false;
    const out = await new Promise((resolve) => {
        const s = http2.connect(`http://${mock.address}`);
        s.on('goaway', () => { goaway = true; });
        const pb = Buffer.from([0x0a, 10, ...Buffer.from('goaway-100')]);
        const req = s.request({ ':method': 'POST', ':path': '/runtime.aot.machine_learning.parents.gpt.GPTInferenceService/PredictWithStream', 'content-type': 'application/grpc', te: 'trailers' });
        let trailers = null;
        req.on('trailers', (t) => { trailers = t; });
        req.on('close', () => { s.close(); resolve(trailers); });
        req.on('data', () => {});
        req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, pb.length]), pb]));
    });
    assert.equal(goaway, true);
    assert.equal(out['grpc-status'], '0');
});

test('TLS with a CA made at test time', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-mock-test-'));
    try {
        const c = makeCerts(dir);
        const tlsMock = await startMock({ tls: { cert: c.cert, key: c.key } });
        const client = new Gpt(`localhost:${tlsMock.port}`, grpc.credentials.createSsl(fs.readFileSync(c.ca)));
        const { frames, err } = await collect(client.PredictWithStream({ models: 'echo' }));
        assert.equal(err, null);
        assert.equal(frames.length, 4);
        const bad = new Gpt(`localhost:${tlsMock.port}`, grpc.credentials.createSsl(fs.readFileSync(c.otherCa)));
        const r2 = await collect(bad.PredictWithStream({ models: 'echo' }));
        assert.equal(r2.err.code, grpc.status.UNAVAILABLE);
        client.close();
        bad.close();
        await tlsMock.close();
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
