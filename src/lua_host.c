/*
 * pieces-gateway: LuaJIT VMs for workers, and gateway.lua evaluation.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_vm_*, gw_config_load. Uses: LuaJIT C API, lua-cjson, the embedded host library
 * (lua_modules.h). This file and nothing else in src/ includes the Lua headers.
 * Never: calls Lua unprotected, lets a Lua error escape into C, or resumes a request that was
 * aborted (its wait state goes with on_abort; the I/O is cancelled first).
 *
 * Suspension: a host call that waits registers its I/O (gw_vm_wait_on) and yields; the entry
 * point returns true, run() parks the request (req->wait: VM reference, continuation) and the
 * caller returns. gw_vm_wake calls the host's resume(req, id); when the phases are done the
 * continuation runs, as it would have at once. The common case (nothing waited) costs one
 * boolean read after the call.
 */
#include "lua_host.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"
#include "lua_json.h"
#include "lua_modules.h"
#include "store.h"
#include "metrics.h"
#include "metrics_hooks.h"

int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

struct gw_vm_s {
    lua_State *L;
    int refs;
    unsigned phases;
    int ref_handle;
    int ref_log;
    int ref_route;
    int ref_resume;
    int ref_abort;
    int ref_breakers;
    char *models_json;
    size_t models_len;
    char *policy_names;
    char *admin_key;
};

/* ---------- state creation ---------- */

static int load_embedded(lua_State *L)
{
    const gw_lua_module_t *m = lua_touserdata(L, lua_upvalueindex(1));
    if (luaL_loadbuffer(L, (const char *)m->code, m->len, m->name) != 0)
        return lua_error(L);
    lua_pushstring(L, m->name);
    lua_call(L, 1, 1);
    return 1;
}

static void register_modules(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pushcfunction(L, luaopen_cjson_safe);
    lua_setfield(L, -2, "cjson.safe");
    lua_pushcfunction(L, gw_luaopen_json);
    lua_setfield(L, -2, "gw.json_c");
#ifdef GW_LUA_FROM_DISK
    lua_pop(L, 1);
    lua_pushstring(L, GW_SOURCE_DIR "/lua/?.lua;" GW_SOURCE_DIR "/lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
#else
    for (const gw_lua_module_t *m = gw_lua_modules; m->name; m++) {
        lua_pushlightuserdata(L, (void *)m);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 2);
#endif
}

static int msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (gw_log_debug_enabled())
        luaL_traceback(L, L, msg, 1);
    else
        lua_pushstring(L, msg);
    return 1;
}

/* pcall with the message handler; on error returns the message (copied) in *err. */
static int pcall(lua_State *L, int nargs, int nres, char **err)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msgh);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (rc != 0) {
        const char *m = lua_tostring(L, -1);
        if (err)
            *err = gw_strdup(m ? m : "unknown Lua error");
        lua_pop(L, 1);
        return GW_ERROR;
    }
    return GW_OK;
}

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    luaL_openlibs(L);
    register_modules(L);
    return L;
}

/* require(name) and leave the module on the stack. */
static int require(lua_State *L, const char *name, char **err)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    return pcall(L, 1, 1, err);
}

/* ---------- worker VMs ---------- */

static char *dup_field(lua_State *L, int idx, const char *key, size_t *len)
{
    lua_getfield(L, idx, key);
    size_t l = 0;
    const char *s = lua_tolstring(L, -1, &l);
    char *r = s ? gw_strndup(s, l) : NULL;
    if (len)
        *len = s ? l : 0;
    lua_pop(L, 1);
    return r;
}

static int take_ref(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

int gw_vm_new(const gw_vm_opts_t *opts, gw_vm_t **out, char **err)
{
    lua_State *L = new_state();
    if (!L) {
        *err = gw_strdup("cannot create a Lua state");
        return GW_ENOMEM;
    }
    if (require(L, "gw.host", err) != 0)
        goto fail;
    int host = lua_gettop(L);
    lua_getfield(L, host, "init");
    lua_createtable(L, 0, 4);
    lua_pushstring(L, opts->config_path);
    lua_setfield(L, -2, "config_path");
    lua_pushinteger(L, opts->worker_id);
    lua_setfield(L, -2, "worker_id");
    lua_pushinteger(L, opts->quiet);
    lua_setfield(L, -2, "quiet");
    lua_pushboolean(L, gw_metrics_enabled());
    lua_setfield(L, -2, "metrics");
    if (pcall(L, 1, 1, err) != 0)
        goto fail;
    if (!lua_istable(L, -1)) {
        *err = gw_strdup("gw.host.init did not return a table");
        goto fail;
    }
    gw_vm_t *vm = gw_calloc(1, sizeof(*vm));
    vm->L = L;
    vm->refs = 1;
    int info = lua_gettop(L);
    lua_getfield(L, info, "phases");
    vm->phases = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 1);
    vm->models_json = dup_field(L, info, "models_json", &vm->models_len);
    vm->policy_names = dup_field(L, info, "policy_names", NULL);
    vm->admin_key = dup_field(L, info, "admin_key", NULL);
    vm->ref_handle = take_ref(L, host, "handle");
    vm->ref_log = take_ref(L, host, "log");
    vm->ref_route = take_ref(L, host, "route");
    vm->ref_resume = take_ref(L, host, "resume");
    vm->ref_abort = take_ref(L, host, "abort");
    vm->ref_breakers = take_ref(L, host, "breakers_json");
    lua_settop(L, 0);
    lua_pushcfunction(L, msgh); /* stays at index 1: the message handler of every call_req */
    *out = vm;
    return GW_OK;
fail:
    lua_close(L);
    return GW_ERROR;
}

void gw_vm_ref(gw_vm_t *vm) { vm->refs++; }

void gw_vm_unref(gw_vm_t *vm)
{
    if (--vm->refs > 0)
        return;
    lua_close(vm->L);
    free(vm->models_json);
    free(vm->policy_names);
    free(vm->admin_key);
    free(vm);
}

unsigned gw_vm_phases(const gw_vm_t *vm) { return vm->phases; }

const char *gw_vm_models_json(const gw_vm_t *vm, size_t *len)
{
    *len = vm->models_len;
    return vm->models_json;
}

const char *gw_vm_admin_key(const gw_vm_t *vm) { return vm->admin_key; }

char *gw_vm_breakers_json(gw_vm_t *vm)
{
    lua_State *L = vm->L;
    char *err = NULL, *out = NULL;
    if (vm->ref_breakers == LUA_NOREF)
        return NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_breakers);
    if (pcall(L, 0, 1, &err) != 0) {
        gw_error("host error in breakers_json: %s", err);
        free(err);
        return NULL;
    }
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (s)
        out = gw_strndup(s, n);
    lua_pop(L, 1);
    return out;
}

const char *gw_vm_policy_names(const gw_vm_t *vm)
{
    return vm->policy_names ? vm->policy_names : "";
}

static void internal_error(gw_req_t *req)
{
    req->answered = 1;
    req->answer_status = 500;
    free(req->answer_ctype);
    req->answer_ctype = gw_strdup("application/json");
    gw_buf_reset(&req->answer_body);
    gw_openai_error_json(&req->answer_body, "Internal server error", 21, "error", 5,
                         "internal_error", 14);
}

/* Call one host entry point for req; returns what it returned (true: the phase is suspended).
 * A host error is logged and, before the response, becomes a 500 answer. */
static int call_req(gw_vm_t *vm, int ref, gw_req_t *req, const char *phase, int answer_500)
{
    lua_State *L = vm->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    /* As a number: LuaJIT compiles ffi.cast(number -> void *), not light userdata. */
    lua_pushnumber(L, (lua_Number)(uintptr_t)req);
    lua_pushnumber(L, (lua_Number)req->id);
    if (lua_pcall(L, 2, 1, 1) != 0) { /* msgh is at index 1 (gw_vm_new), not made per call */
        const char *m = lua_tostring(L, -1);
        gw_error("host error in %s phase (%s %s): %s", phase, req->method_name, req->path,
                 m ? m : "unknown Lua error");
        lua_pop(L, 1);
        gw_metrics_policy_error("host", phase);
        if (answer_500)
            internal_error(req);
        return 0;
    }
    int suspended = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return suspended;
}

/* A suspended phase (req->wait). */
typedef struct {
    gw_vm_t *vm;
    const char *phase;
    int answer_500;
    gw_vm_cont_fn cont;
    void *ud;
    void *op;                    /* the I/O it waits for; NULL while it runs */
    void (*cancel)(void *op);
} vm_wait_t;

void gw_vm_wait_on(gw_req_t *req, void *op, void (*cancel)(void *op))
{
    vm_wait_t *w = req->wait;
    if (!w) {
        w = gw_calloc(1, sizeof(*w));
        req->wait = w;
    }
    w->op = op;
    w->cancel = cancel;
}

/* End req's wait state: a pending op is cancelled; with lua_abort the host also drops the
 * request's parked coroutine. The VM reference taken by run() stays with the caller. */
static void unpark(gw_req_t *req, gw_vm_t *vm, int lua_abort)
{
    vm_wait_t *w = req->wait;
    req->wait = NULL;
    if (w && w->op && w->cancel)
        w->cancel(w->op);
    free(w);
    if (lua_abort && vm->ref_abort != LUA_NOREF)
        call_req(vm, vm->ref_abort, req, "abort", 0);
}

/* The client went away while the phase waited: no resume into a freed request. */
static void on_wait_abort(gw_req_t *req)
{
    vm_wait_t *w = req->wait;
    req->on_abort = NULL;
    if (!w)
        return;
    gw_vm_t *vm = w->vm;
    unpark(req, vm, 1);
    gw_vm_unref(vm);
}

/* A Lua call returned "suspended" without I/O pending (a host bug): the phase is over. */
static void not_parked(gw_vm_t *vm, gw_req_t *req, const char *phase, int answer_500)
{
    gw_error("host error in %s phase (%s %s): suspended without pending I/O", phase,
             req->method_name, req->path);
    unpark(req, vm, 1);
    if (answer_500)
        internal_error(req);
}

static int run(gw_vm_t *vm, int ref, gw_req_t *req, const char *phase, int answer_500,
               gw_vm_cont_fn cont, void *ud)
{
    if (ref == LUA_NOREF)
        return GW_OK;
    int suspended = call_req(vm, ref, req, phase, answer_500);
    vm_wait_t *w = req->wait;
    if (!suspended && !w) /* the common case: nothing waited */
        return GW_OK;
    if (!suspended) { /* I/O was sent but the phase ended (an error): nobody waits for it */
        unpark(req, vm, 0);
        return GW_OK;
    }
    if (!w || !w->op) {
        not_parked(vm, req, phase, answer_500);
        return GW_OK;
    }
    gw_vm_ref(vm);
    w->vm = vm;
    w->phase = phase;
    w->answer_500 = answer_500;
    w->cont = cont;
    w->ud = ud;
    req->on_abort = on_wait_abort;
    return GW_VM_SUSPENDED;
}

void gw_vm_wake(gw_req_t *req)
{
    vm_wait_t *w = req->wait;
    if (!w)
        return;
    req->on_abort = NULL;
    w->op = NULL;
    w->cancel = NULL;
    gw_vm_t *vm = w->vm;
    int suspended = call_req(vm, vm->ref_resume, req, w->phase, w->answer_500);
    w = req->wait; /* the same struct: gw_vm_wait_on reuses it */
    if (suspended && w && w->op) {
        req->on_abort = on_wait_abort;
        return;
    }
    gw_vm_cont_fn cont = w->cont;
    void *ud = w->ud;
    if (suspended)
        not_parked(vm, req, w->phase, w->answer_500);
    else
        unpark(req, vm, 0);
    cont(req, ud);
    gw_vm_unref(vm);
}

int gw_vm_handle(gw_vm_t *vm, gw_req_t *req, gw_vm_cont_fn cont, void *ud)
{
    return run(vm, vm->ref_handle, req, "handle", 1, cont, ud);
}

int gw_vm_route(gw_vm_t *vm, gw_req_t *req, gw_vm_cont_fn cont, void *ud)
{
    return run(vm, vm->ref_route, req, "route", 1, cont, ud);
}

int gw_vm_log(gw_vm_t *vm, gw_req_t *req, gw_vm_cont_fn cont, void *ud)
{
    return run(vm, vm->ref_log, req, "log", 0, cont, ud);
}

/* ---------- gateway.lua ---------- */

static double num_field(lua_State *L, int idx, const char *key, double def)
{
    lua_getfield(L, idx, key);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

static int bool_field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The list of IPs/CIDRs at t[key] (t at idx) into out; an error message starts with what. */
static int read_cidrs(lua_State *L, int idx, const char *key, const char *what,
                      gw_cidr_list_t *out, char **err)
{
    lua_getfield(L, idx, key);
    size_t n = lua_objlen(L, -1);
    const char **items = gw_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        items[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* strings stay alive: the table holds them */
    }
    int rc = gw_cidr_list_parse(items, n, out, err);
    free(items);
    lua_pop(L, 1);
    if (rc != 0) {
        char *m = gw_sprintf("%s: %s", what, *err);
        free(*err);
        *err = m;
    }
    return rc;
}

static void read_store(lua_State *L, int cfg, gw_config_t *c)
{
    lua_getfield(L, cfg, "shared_store");
    int st = lua_gettop(L);
    char *kind = dup_field(L, st, "kind", NULL);
    c->store.redis = kind && strcmp(kind, "redis") == 0;
    free(kind);
    c->store.host = dup_field(L, st, "host", NULL);
    c->store.port = (int)num_field(L, st, "port", 6379);
    c->store.user = dup_field(L, st, "user", NULL);
    c->store.password = dup_field(L, st, "password", NULL);
    c->store.db = (int)num_field(L, st, "db", 0);
    c->store.timeout_ms = (int)num_field(L, st, "timeout_ms", 50);
    char *mode = dup_field(L, st, "on_error", NULL);
    c->store.on_error = gw_store_mode(mode);
    free(mode);
    lua_pop(L, 1);
}

static int read_lists(lua_State *L, int cfg, gw_config_t *c, char **err)
{
    if (read_cidrs(L, cfg, "trusted_proxies", "trusted_proxies", &c->trusted_proxies, err) != 0)
        return GW_ERROR;
    lua_getfield(L, cfg, "metrics");
    c->metrics.enabled = bool_field(L, -1, "enabled");
    int rc = read_cidrs(L, lua_gettop(L), "allow", "metrics.allow", &c->metrics.allow, err);
    lua_pop(L, 1);
    return rc;
}

static void read_config(lua_State *L, int cfg, gw_config_t *c)
{
    c->listen_host = dup_field(L, cfg, "listen_host", NULL);
    c->port = (int)num_field(L, cfg, "port", 8787);
    c->workers = (int)num_field(L, cfg, "workers", 1);
    c->api_prefix = dup_field(L, cfg, "api_prefix", NULL);
    c->policies_dir = dup_field(L, cfg, "policies_dir", NULL);
    c->assets_dir = dup_field(L, cfg, "assets_dir", NULL);
    c->log_file = dup_field(L, cfg, "log_file", NULL);
    c->debug = bool_field(L, cfg, "debug");
    c->access_log = bool_field(L, cfg, "access_log");
    char *fmt = dup_field(L, cfg, "access_log_format", NULL);
    c->access_log_json = fmt && strcmp(fmt, "json") == 0;
    free(fmt);
    lua_getfield(L, cfg, "limits");
    int lim = lua_gettop(L);
    c->max_connections = (size_t)num_field(L, lim, "max_connections", 10000);
    c->max_header_size = (size_t)num_field(L, lim, "max_header_size", 16384);
    c->max_body_size = (size_t)num_field(L, lim, "max_body_size", 8 << 20);
    c->header_timeout = num_field(L, lim, "header_timeout", 10);
    c->keepalive_timeout = num_field(L, lim, "keepalive_timeout", 75);
    c->shutdown_grace = num_field(L, lim, "shutdown_grace", 30);
    c->request_timeout = num_field(L, lim, "request_timeout", 30);
    c->stream_timeout = num_field(L, lim, "stream_timeout", 300);
    c->shared_dict_size = (size_t)num_field(L, lim, "shared_dict_size", 64 << 20);
    lua_pop(L, 1);
    read_store(L, cfg, c);
    lua_getfield(L, cfg, "upstream");
    int up = lua_gettop(L);
    c->upstream.gpt = dup_field(L, up, "gpt", NULL);
    c->upstream.vertex = dup_field(L, up, "vertex", NULL);
    c->upstream.ca_file = dup_field(L, up, "ca_file", NULL);
    c->upstream.insecure = bool_field(L, up, "insecure");
    c->upstream.min_pool_size = (int)num_field(L, up, "min_pool_size", 5);
    c->upstream.max_pool_size = (int)num_field(L, up, "max_pool_size", 20);
    c->upstream.scale_interval = num_field(L, up, "scale_interval", 30);
    c->upstream.max_retries = (int)num_field(L, up, "max_retries", 3);
    c->upstream.timeout = num_field(L, up, "timeout", 30);
    c->upstream.connect_timeout = num_field(L, up, "connect_timeout", 5);
    lua_pop(L, 1);
}

/* backends.list[i].headers: an array of { name, value } (validated by lua/gw/config.lua). */
static void read_headers(lua_State *L, int idx, gw_backend_conf_t *b)
{
    lua_getfield(L, idx, "header_list");
    size_t n = lua_istable(L, -1) ? lua_objlen(L, -1) : 0;
    b->header_names = gw_calloc(n + 1, sizeof(char *));
    b->header_values = gw_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        int h = lua_gettop(L);
        b->header_names[i] = dup_field(L, h, "name", NULL);
        b->header_values[i] = dup_field(L, h, "value", NULL);
        lua_pop(L, 1);
    }
    b->n_headers = n;
    lua_pop(L, 1);
}

static void read_backends(lua_State *L, int cfg, gw_config_t *c)
{
    lua_getfield(L, cfg, "backend_list");
    size_t n = lua_istable(L, -1) ? lua_objlen(L, -1) : 0;
    c->backends = gw_calloc(n + 1, sizeof(*c->backends));
    for (size_t i = 0; i < n; i++) {
        gw_backend_conf_t *b = &c->backends[i];
        lua_rawgeti(L, -1, (int)i + 1);
        int e = lua_gettop(L);
        b->name = dup_field(L, e, "name", NULL);
        char *type = dup_field(L, e, "type", NULL);
        b->type = type && strcmp(type, "openai") == 0 ? GW_BACKEND_OPENAI : GW_BACKEND_PIECES;
        free(type);
        b->base_url = dup_field(L, e, "base_url", NULL);
        b->api_key = dup_field(L, e, "api_key", NULL);
        b->ca_file = dup_field(L, e, "ca_file", NULL);
        b->insecure = bool_field(L, e, "insecure");
        b->max_idle = (int)num_field(L, e, "max_idle", 0);
        read_headers(L, e, b);
        lua_pop(L, 1);
    }
    c->n_backends = n;
    lua_pop(L, 1);
}

int gw_config_load(const char *path, int quiet, gw_config_t *c, char **err)
{
    memset(c, 0, sizeof(*c));
    lua_State *L = new_state();
    if (!L) {
        *err = gw_strdup("cannot create a Lua state");
        return GW_ENOMEM;
    }
    int rc = GW_ERROR;
    if (require(L, "gw.config", err) != 0)
        goto done;
    lua_getfield(L, -1, "load");
    lua_pushstring(L, path);
    lua_pushboolean(L, quiet);
    if (pcall(L, 2, 1, err) != 0)
        goto done;
    int cfg = lua_gettop(L);
    read_config(L, cfg, c);
    read_backends(L, cfg, c);
    if (read_lists(L, cfg, c, err) != 0)
        goto done;
    c->config_path = gw_strdup(path);
    rc = GW_OK;
done:
    lua_close(L);
    if (rc != 0)
        gw_config_dispose(c);
    return rc;
}
