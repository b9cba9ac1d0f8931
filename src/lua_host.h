/*
 * pieces-gateway: the Lua side of a worker: one LuaJIT VM with the host library and policies.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * A gw_vm_t belongs to one worker thread and is only used from it. It is reference counted:
 * the worker holds one reference for the current VM and every request running on it holds
 * one, so a reload can swap VMs between requests while old requests finish on the old VM.
 * Every call into Lua is protected; a failing policy never takes the worker down.
 */
#ifndef GW_LUA_HOST_H
#define GW_LUA_HOST_H

#include <stddef.h>

#include "config.h"
#include "http.h"

enum {
    GW_PHASE_REWRITE = 1,
    GW_PHASE_ACCESS = 2,
    GW_PHASE_CONTENT = 4,
    GW_PHASE_ROUTE = 8,
    GW_PHASE_LOG = 16,
};

typedef struct gw_vm_s gw_vm_t;

typedef struct {
    const char *config_path;
    int worker_id;
    int quiet;          /* 0 print all; 1 no config warnings; 2 only errors while loading */
} gw_vm_opts_t;

/* Build a VM: host library, gateway.lua, policies (validated by their new()). On failure
 * *err (caller frees) says what failed, with file:line where it applies. */
int gw_vm_new(const gw_vm_opts_t *opts, gw_vm_t **out, char **err);
void gw_vm_ref(gw_vm_t *vm);
void gw_vm_unref(gw_vm_t *vm);
unsigned gw_vm_phases(const gw_vm_t *vm);
/* The /models body built by the catalog policy (borrowed; valid while the VM lives). */
const char *gw_vm_models_json(const gw_vm_t *vm, size_t *len);
/* The admin policy's key (borrowed; NULL without an admin policy): GET /metrics accepts it. */
const char *gw_vm_admin_key(const gw_vm_t *vm);
/* The circuit breakers' state as a JSON object (from the route policy), malloc'ed (caller
 * frees); NULL when no policy keeps breakers. */
char *gw_vm_breakers_json(gw_vm_t *vm);
/* Policy names, comma-separated (borrowed). */
const char *gw_vm_policy_names(const gw_vm_t *vm);

/*
 * The phase entry points. Each returns GW_OK when the phases ran to their end (the caller goes
 * on at once: the common case costs nothing more), or GW_VM_SUSPENDED when a policy's host call
 * waits for I/O: then the request's coroutine is parked, and cont(req, ud) runs once the phases
 * finished (after gw_vm_wake). A request aborted while suspended (req->on_abort, set meanwhile)
 * drops its coroutine and never continues. The VM stays referenced while a phase is suspended,
 * so a reload cannot close it under the request.
 */
#define GW_VM_SUSPENDED 1
typedef void (*gw_vm_cont_fn)(gw_req_t *req, void *ud);

/* Run rewrite/access/content. The answer, if any, is recorded in req->answered. A Lua error
 * records a 500 answer. */
int gw_vm_handle(gw_vm_t *vm, gw_req_t *req, gw_vm_cont_fn cont, void *ud);
/* Run the route phase (chat and tokenize requests): the chat policy either records the
 * upstream request (gw_ffi_chat_*) or answers (validation errors, tokenize). */
int gw_vm_route(gw_vm_t *vm, gw_req_t *req, gw_vm_cont_fn cont, void *ud);
/* Run the log phase (errors are logged only). */
int gw_vm_log(gw_vm_t *vm, gw_req_t *req, gw_vm_cont_fn cont, void *ud);

/* For a host call that waits (ffi_store.c): req's phase will yield until gw_vm_wake(req); if
 * the request is aborted first, cancel(op) is called (op must then never wake req). */
void gw_vm_wait_on(gw_req_t *req, void *op, void (*cancel)(void *op));
/* The I/O req waited for completed (or failed): resume its phase now, on its own VM. */
void gw_vm_wake(gw_req_t *req);

/* Evaluate gateway.lua (with the .env/env helpers) into cfg. quiet: no warnings printed. */
int gw_config_load(const char *path, int quiet, gw_config_t *cfg, char **err);

#endif
