/*
 * pieces-gateway: the main thread: start-up, workers, signals, reload, file watching.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_master_main (the whole program behind main()), gw_request_reload,
 * gw_process_worker_exited.
 * Uses: env, log, lua_host, worker, process. Never: serves a request itself.
 *
 * Reload: a change under the policies directory or of gateway.lua (debounced), SIGHUP, or
 * POST /admin/reload. The main thread first builds a throw-away VM to validate the new
 * config and policies (its warnings are the ones printed); only if that works are the workers
 * told to build their own and swap. A failure keeps the old policies everywhere.
 */
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "env.h"
#include "gw_ffi.h"
#include "gw.h"
#include "log.h"
#include "lua_host.h"
#include "master.h"
#include "metrics.h"
#include "metrics_hooks.h"
#include "process.h"
#include "store.h"
#include "worker.h"


static struct {
    gw_config_t cfg;
    uv_loop_t *loop;
    uv_async_t async;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t tick_sec, tick_min, grace, debounce;
    uv_fs_event_t watch_dir, watch_cfg;
    gw_worker_t **workers;
    int n_workers;
    atomic_int reload_wanted;
    atomic_int exited;
    int stopping;
} M;

void gw_request_reload(const char *why)
{
    gw_info("reload requested (%s)", why);
    atomic_store(&M.reload_wanted, 1);
    uv_async_send(&M.async);
}

void gw_process_worker_exited(int id)
{
    GW_UNUSED(id);
    atomic_fetch_add(&M.exited, 1);
    uv_async_send(&M.async);
}

/* ---------- start-up helpers ---------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: pieces-gateway [-c gateway.lua] [-t] [--version]\n"
               "  -c FILE     configuration file (default: gateway.lua)\n"
               "  -t          test the configuration and policies, then exit (0 ok, 1 bad)\n"
               "  --version   print version and build time\n");
}

/* ADMIN_KEY: generated once per process (all workers must agree) from the CSPRNG. */
static char *ensure_admin_key(void)
{
    if (gw_env_raw("ADMIN_KEY"))
        return NULL;
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*";
    const size_t k = sizeof(alphabet) - 1;
    unsigned char rnd[256];
    char key[65];
    if (gw_ffi_random_bytes(rnd, sizeof(rnd)) != 0)
        return NULL;
    size_t len = 32 + rnd[0] % 33, n = 0;
    for (size_t i = 1; i < sizeof(rnd) && n < len; i++)
        if (rnd[i] < 256 - 256 % k) /* rejection sampling: uniform characters */
            key[n++] = alphabet[rnd[i] % k];
    key[n] = '\0';
    setenv("ADMIN_KEY", key, 1);
    return gw_strdup(key);
}

static int validate(const char *path, int quiet, char **names, char **err)
{
    gw_vm_opts_t opts = {path, -1, quiet};
    gw_vm_t *vm = NULL;
    if (gw_vm_new(&opts, &vm, err) != 0)
        return GW_ERROR;
    if (names)
        *names = gw_strdup(gw_vm_policy_names(vm));
    gw_vm_unref(vm);
    return GW_OK;
}

/* ---------- reload ---------- */

static void do_reload(void)
{
    char *err = NULL, *names = NULL;
    /* The validation VM evaluates gateway.lua itself (printing its warnings once) */
    if (validate(M.cfg.config_path, 0, &names, &err) == 0) {
        for (int i = 0; i < M.n_workers; i++)
            gw_worker_reload(M.workers[i]);
        gw_status_set_policies(names, M.n_workers);
        gw_reload_record(-1, 1, NULL);
        gw_metrics_reload(1);
        gw_info("policies reloaded: %s", names);
        free(names);
        return;
    }
    gw_error("reload failed, keeping the current policies: %s", err);
    gw_reload_record(-1, 0, err);
    gw_metrics_reload(0);
    free(err);
}

static void on_debounce(uv_timer_t *t)
{
    GW_UNUSED(t);
    gw_request_reload("file changed");
}

static char *cfg_dir, *cfg_base;

static void on_fs_event(uv_fs_event_t *h, const char *file, int events, int status)
{
    GW_UNUSED(events);
    GW_UNUSED(status);
    /* The config file's directory is watched (editors replace files by renaming), so only
     * events naming gateway.lua count there; under policies/ only *.lua files count. */
    if (h == &M.watch_cfg) {
        if (!file || strcmp(file, cfg_base) != 0)
            return;
    } else {
        /* *.lua, or a Kubernetes ConfigMap swap (its "..data" link) */
        size_t n = file ? strlen(file) : 0;
        if (n < 4 || (strcmp(file + n - 4, ".lua") != 0 && strncmp(file, "..data", 6) != 0))
            return;
    }
    uv_timer_start(&M.debounce, on_debounce, 200, 0);
}

static void start_watch(void)
{
    uv_timer_init(M.loop, &M.debounce);
    uv_fs_event_init(M.loop, &M.watch_dir);
    uv_fs_event_init(M.loop, &M.watch_cfg);
    char *a = gw_strdup(M.cfg.config_path), *b = gw_strdup(M.cfg.config_path);
    cfg_dir = gw_strdup(dirname(a));
    cfg_base = gw_strdup(basename(b));
    free(a);
    free(b);
    if (uv_fs_event_start(&M.watch_dir, on_fs_event, M.cfg.policies_dir, 0) != 0)
        gw_warn("cannot watch %s for changes", M.cfg.policies_dir);
    if (uv_fs_event_start(&M.watch_cfg, on_fs_event, cfg_dir, 0) != 0)
        gw_warn("cannot watch %s for changes", cfg_dir);
}

/* ---------- shutdown ---------- */

static void close_all(void)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&M.async,     (uv_handle_t *)&M.sig_term,
                         (uv_handle_t *)&M.sig_int,   (uv_handle_t *)&M.sig_hup,
                         (uv_handle_t *)&M.tick_sec,  (uv_handle_t *)&M.tick_min,
                         (uv_handle_t *)&M.grace,     (uv_handle_t *)&M.debounce,
                         (uv_handle_t *)&M.watch_dir, (uv_handle_t *)&M.watch_cfg};
    for (size_t i = 0; i < GW_ARRAY_SIZE(hs); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
    gw_mirror_stop();
}

/* Each worker closes its connections when the grace period is over (aborting what is still in
 * flight) and exits with everything freed. This backstop only fires for a worker that cannot
 * get back to its loop (a policy stuck in a loop): the process exits without waiting for it. */
#define GW_SHUTDOWN_BACKSTOP_MS 3000

static void on_backstop(uv_timer_t *t)
{
    GW_UNUSED(t);
    gw_warn("%d worker(s) still busy %d ms after the shutdown grace period: exiting anyway",
            M.n_workers - atomic_load(&M.exited), GW_SHUTDOWN_BACKSTOP_MS);
    uv_stop(M.loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    GW_UNUSED(s);
    if (signum == SIGHUP) {
        gw_request_reload("SIGHUP");
        return;
    }
    if (M.stopping)
        return;
    M.stopping = 1;
    gw_info("received %s, shutting down (grace %.0fs)", signum == SIGTERM ? "SIGTERM" : "SIGINT",
            M.cfg.shutdown_grace);
    for (int i = 0; i < M.n_workers; i++)
        gw_worker_stop(M.workers[i]);
    uv_timer_start(&M.grace, on_backstop,
                   (uint64_t)(M.cfg.shutdown_grace * 1000) + GW_SHUTDOWN_BACKSTOP_MS, 0);
}

static void on_async(uv_async_t *a)
{
    GW_UNUSED(a);
    if (atomic_load(&M.exited) >= M.n_workers) {
        close_all();
        return;
    }
    if (atomic_exchange(&M.reload_wanted, 0) && !M.stopping)
        do_reload();
}

static void on_tick_sec(uv_timer_t *t)
{
    GW_UNUSED(t);
    gw_metrics_tick_second();
    gw_process_tick();
}

static void on_tick_min(uv_timer_t *t)
{
    GW_UNUSED(t);
    gw_metrics_tick_minute();
}

static void init_loop(void)
{
    M.loop = uv_default_loop();
    uv_async_init(M.loop, &M.async, on_async);
    uv_signal_init(M.loop, &M.sig_term);
    uv_signal_init(M.loop, &M.sig_int);
    uv_signal_init(M.loop, &M.sig_hup);
    uv_signal_start(&M.sig_term, on_signal, SIGTERM);
    uv_signal_start(&M.sig_int, on_signal, SIGINT);
    uv_signal_start(&M.sig_hup, on_signal, SIGHUP);
    uv_timer_init(M.loop, &M.tick_sec);
    uv_timer_init(M.loop, &M.tick_min);
    uv_timer_init(M.loop, &M.grace);
    uv_timer_start(&M.tick_sec, on_tick_sec, 1000, 1000);
    uv_timer_start(&M.tick_min, on_tick_min, 60000, 60000);
    start_watch();
    gw_mirror_start(M.loop, &M.cfg); /* Redis store: the replicated maps (bans) */
}

/* Workers load their VMs in parallel; any failure stops the ones that started. */
static int start_workers(void)
{
    M.workers = gw_calloc((size_t)M.n_workers, sizeof(gw_worker_t *));
    int spawned = 0, failed = 0;
    char *err = NULL;
    for (; spawned < M.n_workers; spawned++)
        if (gw_worker_spawn(spawned, &M.cfg, &M.workers[spawned], &err) != 0)
            break;
    if (spawned < M.n_workers) {
        gw_error("worker %d failed to start: %s", spawned, err);
        free(err);
        failed = 1;
    }
    for (int i = 0; i < spawned; i++) {
        if (gw_worker_wait_ready(M.workers[i], &err) != 0) {
            gw_error("worker %d failed to start: %s", i, err);
            free(err);
            M.workers[i] = NULL;
            failed = 1;
        }
    }
    if (!failed)
        return GW_OK;
    for (int i = 0; i < spawned; i++)
        if (M.workers[i])
            gw_worker_stop(M.workers[i]);
    for (int i = 0; i < spawned; i++)
        if (M.workers[i])
            gw_worker_join(M.workers[i]);
    M.n_workers = 0;
    return GW_ERROR;
}

static void log_banner(void)
{
    const gw_config_t *c = &M.cfg;
    gw_info("Server starting on port %d (%d worker%s)", c->port, M.n_workers,
            M.n_workers == 1 ? "" : "s");
    gw_info("API endpoint available at %s", c->api_prefix[0] ? c->api_prefix : "/");
    gw_info("The service is reachable locally at:");
    gw_info("- http://localhost:%d/", c->port);
    gw_info("- http://127.0.0.1:%d/", c->port);
}

/* ---------- main ---------- */

int gw_master_main(int argc, char **argv)
{
    const char *config = "gateway.lua";
    int test_only = 0;
    static const struct option longopts[] = {
        {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:thv", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 't': test_only = 1; break;
        case 'v':
        case 'V':
            printf("pieces-gateway %s (built %s)\n", gw_version, gw_build_time);
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    char *err = NULL;
    int dotenv = gw_env_load_dotenv(".env", &err);
    if (dotenv == GW_ERROR) {
        gw_warn("%s", err);
        free(err);
        err = NULL;
    }
    char *generated_key = ensure_admin_key();
    if (!test_only)
        gw_info("Starting pieces-gateway Version: %s, BuildTime: %s", gw_version, gw_build_time);
    if (gw_config_load(config, 0, &M.cfg, &err) != 0) {
        fprintf(stderr, "pieces-gateway: configuration error: %s\n", err);
        free(err);
        free(generated_key);
        return 1;
    }
    gw_metrics_init(M.cfg.metrics.enabled && !test_only);
    gw_log_set_debug(M.cfg.debug);
    gw_log_set_access_stdout(M.cfg.access_log);
    char *names = NULL;
    if (gw_process_init(&M.cfg, &err) != 0) {
        fprintf(stderr, "pieces-gateway: %s\n", err);
        free(err);
        return 1;
    }
    if (test_only) {
        int rc = validate(config, 1, NULL, &err);
        if (rc != 0)
            fprintf(stderr, "pieces-gateway: configuration test failed: %s\n", err);
        else
            printf("pieces-gateway: configuration file %s test is successful\n", config);
        free(err);
        free(generated_key);
        gw_process_shutdown();
        gw_config_dispose(&M.cfg);
        return rc == 0 ? 0 : 1;
    }
    if (gw_log_open_file(M.cfg.log_file, &err) != 0) {
        fprintf(stderr, "pieces-gateway: Failed to initialize logger: %s\n", err);
        return 1;
    }
    if (dotenv == GW_ENOENT)
        gw_debug("no .env file in the working directory");
    if (M.cfg.upstream.insecure)
        gw_warn("UPSTREAM_INSECURE=true: upstream TLS certificates are NOT verified (tests only)");
    for (size_t i = 0; i < M.cfg.n_backends; i++)
        if (M.cfg.backends[i].insecure && !M.cfg.upstream.insecure)
            gw_warn("backend %s: TLS certificates are NOT verified (insecure = true)",
                    M.cfg.backends[i].name);
    if (generated_key) {
        gw_warn("Generated random ADMIN_KEY: %s", generated_key);
        free(generated_key);
    }
    gw_persist_start(); /* policies may persist files while they load (the blacklist) */
    if (validate(config, 1, &names, &err) != 0) {
        gw_error("configuration error: %s", err);
        free(err);
        gw_persist_stop();
        return 1;
    }
    M.n_workers = M.cfg.workers > 0 ? M.cfg.workers : (int)uv_available_parallelism();
    gw_status_set_policies(names, M.n_workers);
    free(names);
    init_loop();
    if (start_workers() != 0) {
        close_all();
        uv_run(M.loop, UV_RUN_DEFAULT);
        gw_persist_stop();
        return 1;
    }
    log_banner();
    uv_run(M.loop, UV_RUN_DEFAULT);
    int all_exited = atomic_load(&M.exited) >= M.n_workers;
    if (all_exited) {
        for (int i = 0; i < M.n_workers; i++)
            gw_worker_join(M.workers[i]);
        free(M.workers);
    }
    gw_persist_stop();
    gw_info("bye");
    if (!all_exited)
        _exit(0); /* the backstop fired: do not wait for a stuck worker */
    gw_process_shutdown();
    gw_metrics_shutdown();
    gw_config_dispose(&M.cfg);
    free(cfg_dir);
    free(cfg_base);
    gw_log_close();
    return 0;
}
