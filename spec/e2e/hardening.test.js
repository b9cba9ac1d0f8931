// pieces-gateway end-to-end: hostile clients (issue 8): connections reset right after a request,
// header names with whitespace, the peer address of a client that resets at once.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { BIN, startGateway, raw, parseResponses, sleep, policyGateway } = require('./lib/gateway');

// The release binary always; the ASan+UBSan one too when the build made it (GW_BIN_ASAN).
const BINARIES = [['release', BIN]];
if (process.env.GW_BIN_ASAN) BINARIES.push(['asan', path.resolve(process.env.GW_BIN_ASAN)]);

const ASAN_ENV = {
  ASAN_OPTIONS: 'detect_leaks=1:quarantine_size_mb=4:halt_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};

// What the clients send before resetting: every write path of the server answers one of them
// (a synchronous answer, an error answer to a malformed request, pipelined answers, an
// interim 100, a chunked request body, a 413 with lingering close, a larger body).
const VARIANTS = [
  'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n',
  'BREW / HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
  'GET / HTTP/1.1\r\nX A: b\r\n\r\n',
  'GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n' +
    'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nBREW / HTTP/1.1\r\n\r\n',
  'POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n',
  'POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' +
    'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n',
  'OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n',
];

// One connection: send, then reset (SO_LINGER 0) right after the bytes left, or a moment
// later (so that some resets land while the answer is being written).
function sendAndReset(port, data, delayed) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    sock.on('close', resolve);
    sock.on('connect', () => {
      sock.write(data, () => {
        if (delayed) setImmediate(() => sock.resetAndDestroy());
        else sock.resetAndDestroy();
      });
    });
  });
}

async function resetStorm(port, total, parallel) {
  let next = 0;
  const lane = async () => {
    while (next < total) {
      const i = next++;
      await sendAndReset(port, VARIANTS[i % VARIANTS.length], (i >> 4) % 2 === 1);
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
}

test('header names with whitespace and folded header lines are 400 (RFC 9112 5.1, 5.2)',
  async (t) => {
    const gw = await startGateway();
    t.after(() => gw.stop());
    const cases = [
      'GET /ping HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n',
      'GET /ping HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n',
      'GET /ping HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n',
      'GET /ping HTTP/1.1\r\n X-A: b\r\nHost: x\r\n\r\n',
      'GET /ping HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n',
      'GET /ping HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n',
      'GET /ping HTTP/1.1\r\nHost: x\r\nX-A:\r\n\tc\r\n\r\n',
      'POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc',
    ];
    for (const c of cases) {
      const { text, closedByPeer } = await raw(gw.port, c);
      const [res] = parseResponses(text);
      assert.ok(res, `an answer to ${JSON.stringify(c)}`);
      assert.equal(res.status, 400, JSON.stringify(c));
      const err = JSON.parse(res.body).error;
      assert.equal(err.code, 'invalid_request');
      assert.equal(err.type, 'error');
      assert.match(err.message, /^Bad request: /);
      assert.ok(closedByPeer, 'closed after the 400');
    }
    const ok = await raw(gw.port, 'GET /ping HTTP/1.1\r\nHost: x\r\nX-A:  b c \r\n' +
      'Connection: close\r\n\r\n');
    assert.equal(parseResponses(ok.text)[0].body, 'pong', 'whitespace inside a value is fine');
  });

test('the access log has the peer address of a client that reset before it was accepted',
  async (t) => {
    // A policy keeps the only worker busy for a moment, so that the clients below connect,
    // send and reset while their connections wait in the listen queue.
    const gw = await startGateway(policyGateway('busy', [
      'if r.req.path == "/busy" then',
      '    local t = os.clock()',
      '    while os.clock() - t < 0.6 do end',
      'end']));
    t.after(() => gw.stop());
    const busy = fetch(`${gw.url}/busy`);
    await sleep(150);
    const resets = [];
    for (let i = 0; i < 10; i++) {
      resets.push(sendAndReset(gw.port, `GET /ping?reset=${i} HTTP/1.1\r\nHost: x\r\n\r\n`));
    }
    await Promise.all(resets);
    assert.equal((await busy).status, 404);
    const deadline = Date.now() + 5000;
    while (!/reset=/.test(gw.stdout) && Date.now() < deadline) await sleep(50);
    await sleep(200);
    const lines = gw.stdout.split('\n').filter((l) => /GET \/ping\?reset=/.test(l));
    assert.ok(lines.length > 0, `requests read after the reset are logged:\n${gw.stdout}`);
    for (const l of lines) assert.match(l, / IP=127\.0\.0\.1 /);
  });

for (const [kind, bin] of BINARIES) {
  test(`${kind}: 3,000 connections that send a request and reset do not harm the gateway`,
    { timeout: 240000 }, async () => {
      const gw = await startGateway({ bin, env: kind === 'asan' ? ASAN_ENV : {} });
      try {
        await resetStorm(gw.port, 3000, 40);
        assert.equal(gw.proc.exitCode, null, `the gateway died:\n${gw.stderr.slice(-3000)}`);
        const r = await fetch(`${gw.url}/ping`);
        assert.equal(r.status, 200);
        assert.equal(await r.text(), 'pong');
        // a pipelined exchange on a fresh connection is answered whole and in order
        const { text } = await raw(gw.port, 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n' +
          'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        assert.deepEqual(parseResponses(text).map((x) => x.status), [200, 200]);
      } finally {
        const res = await gw.stop(); // throws on a sanitizer report
        assert.deepEqual(res, { code: 0, signal: null }, gw.stderr.slice(-3000));
      }
    });
}
