// pieces-gateway end-to-end helpers: start the built binary on a free port, talk raw HTTP.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = process.env.GW_ROOT || path.resolve(__dirname, '../../..');
const BIN = path.resolve(process.env.GW_BIN || path.join(ROOT, 'build/pieces-gateway'));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function tmpDir(prefix = 'gw-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Base environment: everything relative to the repo, state in a temp dir, one worker.
function baseEnv(dir, port, extra = {}) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || '/tmp',
    PORT: String(port),
    WORKERS: '1',
    POLICIES_DIR: path.join(ROOT, 'policies'),
    ASSETS_DIR: path.join(ROOT, 'assets'),
    BLACKLIST_FILE: path.join(dir, 'blacklist.txt'),
    RATE_LIMIT_ENABLED: 'false',
    ADMIN_KEY: 'admin-test-key',
    ASAN_OPTIONS: process.env.ASAN_OPTIONS,
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS,
    ...extra,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

class Gateway {
  constructor(opts = {}) {
    this.opts = opts;
    this.stdout = '';
    this.stderr = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.dir = this.opts.dir || tmpDir();
    this.port = this.opts.port || (await freePort());
    const env = baseEnv(this.dir, this.port, this.opts.env);
    const config = this.opts.config || path.join(ROOT, 'gateway.lua');
    const bin = this.opts.bin || BIN;
    this.proc = spawn(bin, ['-c', config, ...(this.opts.args || [])], {
      cwd: this.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout.on('data', (d) => { this.stdout += d; });
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
    });
    // generous: an ASan build loading its tokenizers on a loaded machine takes seconds
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) break;
      try {
        // any HTTP answer means it listens (a banned client gets 403, a limited one 429)
        const r = await fetch(`${this.url}/ping`);
        await r.arrayBuffer();
        if (r.status > 0) return this;
      } catch (e) { /* not listening yet */ }
      await sleep(25);
    }
    // a gateway left running would keep the test process alive until ctest's timeout
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    throw new Error(`gateway did not start:\n${this.stdout}\n${this.stderr}`);
  }

  async stop(signal = 'SIGTERM') {
    if (!this.proc) return undefined;
    let res;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      res = await this.exited; // it exited on its own (a test signalled it): still check below
    } else {
      this.proc.kill(signal);
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
      res = await this.exited;
      clearTimeout(timer);
    }
    // a sanitizer report (ASan builds) is a failure of whatever test ran this gateway
    const report = this.sanitizerReport();
    if (report) throw new Error(`sanitizer report from the gateway:\n${report}`);
    return res;
  }

  // The tail of stderr when it holds an ASan/LSan/UBSan report, else null.
  sanitizerReport() {
    const m = /(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:)/.test(this.stderr);
    return m ? this.stderr.slice(-4000) : null;
  }

  get log() {
    return this.stdout + this.stderr;
  }
}

async function startGateway(opts) {
  return new Gateway(opts).start();
}

// Raw HTTP over one socket: send `data` (string/Buffer or array of them with pauses), collect
// everything until the peer closes or `idleMs` passes without data.
function raw(port, data, { idleMs = 1500, pauseMs = 0 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = Buffer.alloc(0);
    let timer;
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: out.toString('latin1'), closedByPeer: sock.closedByPeer === true });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    };
    sock.on('data', (d) => { out = Buffer.concat([out, d]); arm(); });
    sock.on('end', () => { sock.closedByPeer = true; finish(); });
    sock.on('error', finish);
    sock.on('connect', async () => {
      const parts = Array.isArray(data) ? data : [data];
      for (const p of parts) {
        sock.write(p);
        if (pauseMs) await sleep(pauseMs);
      }
      arm();
    });
  });
}

// A streamed chat request from a client that will go away in the middle of the answer, in one of
// the ways clients do (GO_AWAY): 'fetch' (fetch + AbortController, as SDKs do), 'fin' (a raw
// socket closed) or 'rst' (a raw socket reset, SO_LINGER 0). Resolves once the head and the first
// complete SSE event arrived: {status, text (what arrived), leave()}; leave() goes away at once.
// The raw kinds cost nothing on the client between leave() and the packet, so they time the
// gateway alone; fetch adds undici's own abort work (tens of ms on a loaded machine, more for the
// first abort of a process).
const GO_AWAY = ['fetch', 'fin', 'rst'];
async function openStream(gw, body, how) {
  const json = JSON.stringify(body);
  if (how === 'fetch') {
    const ac = new AbortController();
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' }, signal: ac.signal, body: json });
    const reader = r.body.getReader();
    let text = '';
    while (!/data: [^\n]*\n\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    return { status: r.status, text, leave: () => ac.abort() };
  }
  const sock = net.connect(gw.port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('close', () => reject(new Error('openStream: connection closed before connect')));
  });
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`
    + `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
  let text = '';
  await new Promise((resolve) => {
    const done = () => { sock.off('data', onData); resolve(); };
    const onData = (d) => {
      text += d.toString('utf8');
      if (/\r\n\r\n[\s\S]*data: [^\n]*\n\n/.test(text)) done();
    };
    sock.on('data', onData);
    sock.once('close', done);
  });
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return { status: m ? Number(m[1]) : 0, text,
    leave: () => (how === 'rst' ? sock.resetAndDestroy() : sock.destroy()) };
}

// Split a raw HTTP/1.1 byte stream into responses (Content-Length or chunked bodies).
function parseResponses(text) {
  const out = [];
  let rest = text;
  while (rest.length) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = rest.slice(0, headEnd);
    const lines = head.split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    rest = rest.slice(headEnd + 4);
    let body = '';
    if (status === 100) { out.push({ status, headers, body }); continue; }
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = rest.slice(0, n);
      rest = rest.slice(n);
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const le = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, le), 16);
        rest = rest.slice(le + 2);
        if (!size) { rest = rest.slice(2); break; }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    }
    out.push({ status, headers, body });
  }
  return out;
}

// Options for startGateway: the models policy plus one test policy `name` whose access phase is
// `accessLines` (Lua, `r` in scope; line 1 of the body is line 4 of the file), in a temp dir.
function policyGateway(name, accessLines) {
  const dir = tmpDir();
  const pol = path.join(dir, 'policies');
  fs.mkdirSync(pol);
  fs.copyFileSync(path.join(ROOT, 'policies/models.lua'), path.join(pol, 'models.lua'));
  fs.writeFileSync(path.join(pol, `${name}.lua`), [
    `local _M = { name = "${name}" }`,
    'function _M.new() return setmetatable({}, { __index = _M }) end',
    'function _M:access(r)',
    ...accessLines.map((l) => `    ${l}`),
    'end',
    'return _M', ''].join('\n'));
  const config = path.join(dir, 'gw.lua');
  fs.writeFileSync(config, 'local env = ...\nreturn { listen = { port = env.int("PORT", 1) }, ' +
    'workers = 1, policies_dir = env.str("POLICIES_DIR", "x"), ' +
    'assets_dir = env.str("ASSETS_DIR", "x"), ' +
    `policies = { { name = "models" }, { name = "${name}" } } }\n`);
  return { dir, config, env: { POLICIES_DIR: pol } };
}

function runBin(args, opts = {}) {
  return spawnSync(opts.bin || BIN, args, {
    cwd: opts.cwd || ROOT,
    env: opts.env || baseEnv(os.tmpdir(), 8787),
    encoding: 'utf8',
    timeout: 20000,
  });
}

module.exports = { ROOT, BIN, freePort, tmpDir, sleep, baseEnv, Gateway, startGateway, raw,
  GO_AWAY, openStream, parseResponses, runBin, policyGateway };
