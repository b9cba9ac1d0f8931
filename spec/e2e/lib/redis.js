// pieces-gateway end-to-end helpers: a real redis-server (Debian's) on a free loopback port, no
// persistence, stopped by PID; and a minimal RESP client for the tests' own commands.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const { spawn } = require('node:child_process');
const net = require('node:net');
const { freePort, sleep } = require('./gateway');

const REDIS_BIN = process.env.REDIS_SERVER || 'redis-server';

// One RESP value from buf at pos: [value, next pos], or null when incomplete.
function parse(buf, pos) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return null;
  const kind = String.fromCharCode(buf[pos]);
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  if (kind === '+') return [line, next];
  if (kind === '-') return [new Error(line), next];
  if (kind === ':') return [Number(line), next];
  if (kind === '$') {
    const n = Number(line);
    if (n < 0) return [null, next];
    if (buf.length < next + n + 2) return null;
    return [buf.toString('utf8', next, next + n), next + n + 2];
  }
  if (kind === '*') {
    const n = Number(line);
    if (n < 0) return [null, next];
    const out = [];
    let p = next;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, p);
      if (!r) return null;
      out.push(r[0]);
      p = r[1];
    }
    return [out, p];
  }
  throw new Error(`bad RESP type ${kind}`);
}

function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const s = String(a);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return parts.join('');
}

// Send commands (arrays) on one fresh connection; resolves with their replies (an Error for
// -ERR), in order.
function pipeline(port, cmds) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const out = [];
      let pos = 0;
      while (out.length < cmds.length) {
        const r = parse(buf, pos);
        if (!r) return;
        out.push(r[0]);
        pos = r[1];
      }
      sock.destroy();
      resolve(out);
    });
    sock.write(cmds.map(encode).join(''));
  });
}

// One command on a fresh connection; resolves with the reply.
async function command(port, ...args) {
  return (await pipeline(port, [args]))[0];
}

class Redis {
  constructor(port) {
    this.port = port;
    this.log = '';
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start(extra = []) {
    this.port = this.port || (await freePort());
    this.proc = spawn(REDIS_BIN, ['--port', String(this.port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      try {
        const r = await command(this.port, 'PING'); // with --requirepass: NOAUTH, also up
        if (r === 'PONG' || (r instanceof Error && /NOAUTH/.test(r.message))) return this;
      } catch (e) { /* not up yet */ }
      await sleep(20);
    }
    throw new Error(`redis-server did not start:\n${this.log}`);
  }

  cmd(...args) {
    return command(this.port, ...args);
  }

  // SIGKILL by PID (a crash), or SIGTERM; resolves when it exited.
  async stop(signal = 'SIGTERM') {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    await this.exited;
  }
}

async function startRedis(opts = {}) {
  return new Redis(opts.port).start(opts.args);
}

module.exports = { startRedis, command, pipeline, Redis };
