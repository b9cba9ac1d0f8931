// pieces-gateway: named scenarios of the mock upstream, selected by the request's model.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// The model string picks the scenario (the CLI has no other per-call channel); anything not
// listed gets the default three chunks. A model may carry a suffix after '#' that is ignored
// (lets tests use distinct models for the same scenario), e.g. "chunks-5-10#a".
//   echo / gpt-4o / ...  "Hello", ", ", "world" then 204
//   chunks-N-D           N chunks "cK " D ms apart, then 204
//   status-C[-msg]       grpc-status C before any message (trailers-only)
//   status-after-C       one chunk, then grpc-status C
//   code-C               one frame with response_code C and no text, then OK
//   rst[-H]              one chunk, then RST_STREAM H (default 2, INTERNAL_ERROR)
//   no-end               two chunks, no 204, status OK
//   goaway-D             one chunk, GOAWAY on the connection, D ms, one chunk, 204
//   hang                 never answers
//   slow-D               waits D ms, then the default reply
//   big-N                N bytes of text in 16 KiB frames, then 204
//   empty                one 200 frame with empty text, then 204
'use strict';

const DEFAULT = [{ text: 'Hello' }, { text: ', ' }, { text: 'world' }, { code: 204 }];

function scriptForModel(model) {
    const m = String(model || '').split('#')[0];
    let r;
    if ((r = /^chunks-(\d+)-(\d+)$/.exec(m))) {
        const steps = [];
        for (let i = 0; i < Number(r[1]); i++) steps.push({ text: `c${i} `, delay: Number(r[2]) });
        steps.push({ code: 204 });
        return steps;
    }
    if ((r = /^status-after-(\d+)$/.exec(m))) return [{ text: 'partial' }, { delay: 20 }, { error: { code: Number(r[1]), details: 'failed after a chunk' } }];
    if ((r = /^status-(\d+)(?:-(.*))?$/.exec(m))) return [{ error: { code: Number(r[1]), details: r[2] || `mock status ${r[1]}` } }];
    if ((r = /^code-(\d+)$/.exec(m))) return [{ code: Number(r[1]) }];
    if ((r = /^rst(?:-(\d+))?$/.exec(m))) return [{ text: 'partial' }, { delay: 20 }, { rst: Number(r[1] || 2) }];
    if (m === 'no-end') return [{ text: 'a' }, { text: 'b' }];
    if ((r = /^goaway-(\d+)$/.exec(m))) return [{ text: 'before ' }, { goaway: true }, { delay: Number(r[1]) }, { text: 'after' }, { code: 204 }];
    if (m === 'hang') return [{ hang: true }];
    if ((r = /^slow-(\d+)$/.exec(m))) return [{ delay: Number(r[1]) }, ...DEFAULT];
    if ((r = /^big-(\d+)$/.exec(m))) return [{ big: { total: Number(r[1]), chunk: 16384 } }, { code: 204 }];
    if (m === 'empty') return [{ text: '' }, { code: 204 }];
    return DEFAULT;
}

module.exports = { scriptForModel, DEFAULT };
