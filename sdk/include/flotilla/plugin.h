/*
 * Flotilla plugin ABI, version 1 (SDK 1.2).
 *
 * The whole boundary between the engine and a plugin is this header. It is C so that a
 * plugin built with another compiler, standard library or set of flags still loads.
 *
 * A plugin is a shared library that exports exactly one symbol, FLT_ENTRY_SYMBOL, a function
 * returning a pointer to a const flt_plugin_descriptor. The engine reads abi_version and
 * struct_size first and refuses a plugin whose ABI version it does not serve.
 *
 * Everything else is reached through the descriptor: get_interface("flotilla.driver/1")
 * returns the driver function table, and so on. Released structs never change; a new
 * revision of an interface comes as a new id ("flotilla.driver/2").
 *
 * Data crosses the boundary as UTF-8 JSON documents with explicit lengths. Memory is never
 * freed on the other side of the boundary: results and errors are handed to the host through
 * callbacks, which copy them before returning.
 *
 * Operations. Each table below marks every entry "required" or "optional". The engine refuses
 * to load a plugin whose table lacks a required entry (the message names the file and the
 * entry) and says what it does instead of calling a NULL optional one. The request and
 * result documents of every operation are listed in docs/sdk-reference.md; the comments here
 * give their top-level keys.
 *
 * History: SDK 1.0 had the driver, runtime and addon interfaces. SDK 1.1 adds
 * "flotilla.query/1" (FLT_INTERFACE_QUERY), through which an addon answers questions about
 * the data it owns; nothing of 1.0 changed, and plugins built against 1.0 load unchanged.
 * SDK 1.2 adds documents, not functions: an addon manifest's "stages" and the runtime
 * operation "batch"; plugins built against 1.0 or 1.1 load unchanged.
 */
#ifndef FLOTILLA_PLUGIN_H
#define FLOTILLA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. */
#define FLT_ABI_VERSION 1u

/** The SDK release this header belongs to. Plugins may test it; the engine never does. */
#define FLT_SDK_VERSION_MAJOR 1
#define FLT_SDK_VERSION_MINOR 2

/** Name of the one symbol a plugin library exports. */
#define FLT_ENTRY_SYMBOL "flotilla_plugin_entry"

/** Interface ids, passed to flt_plugin_descriptor.get_interface. */
#define FLT_INTERFACE_DRIVER "flotilla.driver/1"
#define FLT_INTERFACE_RUNTIME "flotilla.runtime/1"
#define FLT_INTERFACE_ADDON "flotilla.addon/1"
/** Since SDK 1.1: an addon's answers to questions about its data (flt_query_v1). */
#define FLT_INTERFACE_QUERY "flotilla.query/1"

/** Result of every call across the boundary. */
typedef enum flt_status {
  FLT_OK = 0,
  FLT_ERROR = 1,         /* failed; the engine reports the message and skips dependents */
  FLT_RETRYABLE = 2,     /* failed for a reason that may pass; the engine retries with backoff */
  FLT_NOT_FOUND = 3,     /* the thing asked about does not exist (inspect, destroy) */
  FLT_CANCELLED = 4,     /* stopped because flt_host_api.is_cancelled returned non-zero */
  FLT_NOT_SUPPORTED = 5, /* this plugin cannot do that here (e.g. an image on the process runtime) */
  FLT_INVALID = 6        /* the request or configuration is wrong; the message says what to change */
} flt_status;

typedef enum flt_log_level {
  FLT_LOG_TRACE = 0,
  FLT_LOG_DEBUG = 1,
  FLT_LOG_INFO = 2,
  FLT_LOG_WARN = 3,
  FLT_LOG_ERROR = 4
} flt_log_level;

struct flt_call;

/**
 * Receives a JSON document from the host. `json` is valid only during the callback;
 * copy what you keep. `user` is the pointer given alongside the callback.
 */
typedef void (*flt_json_sink)(void* user, const char* json, size_t len);

/**
 * What the engine offers to a plugin during a call. Owned by the engine; valid for the
 * duration of the call it was passed with. Every function takes that call and may be
 * used from the thread the call runs on (and only from it).
 */
typedef struct flt_host_api {
  uint32_t abi_version; /* FLT_ABI_VERSION of the engine */
  uint32_t struct_size; /* sizeof(flt_host_api) as the engine was built */

  /** Logs one line. The engine prefixes it with kind:plugin:instance and redacts secrets. */
  void (*log)(struct flt_call* call, flt_log_level level, const char* msg, size_t len);

  /** Reports what the call is doing now, for the progress display. `msg` is copied. */
  void (*progress)(struct flt_call* call, const char* msg, size_t len);

  /** Non-zero once the user asked to abort; long calls check it and return FLT_CANCELLED. */
  int (*is_cancelled)(struct flt_call* call);

  /** Sets the call's result document (JSON). The last call wins. Copied by the host. */
  void (*set_result)(struct flt_call* call, const char* json, size_t len);

  /** Sets the call's error message (UTF-8 text). Copied by the host. */
  void (*set_error)(struct flt_call* call, const char* msg, size_t len);

  /**
   * Runs a runtime operation on a node of the cluster (addon apply and destroy only; other
   * calls get FLT_NOT_SUPPORTED). `request` is a JSON object, one of
   *   {"op": "start", "node": NAME, "workload": {name, command, image, env, ports}} -> {record, changed}
   *   {"op": "stop", "node": NAME, "name": NAME} -> {}
   *   {"op": "inspect", "node": NAME, "name": NAME} -> {state, ...}
   *   {"op": "signal", "node": NAME, "name": NAME, "signal": "HUP"} -> {}
   *   {"op": "put_file", "node": NAME, "path": REL, "content": TEXT, "mode": 420} -> {path, changed}
   *   {"op": "remove_file", "node": NAME, "path": REL} -> {path, changed}
   *   {"op": "list"} -> {components: [{key, node, name, record}]}
   * (docs/sdk-reference.md, "Runtime operations for addons"). The result document is passed
   * to `sink` before the function returns; on failure the message is passed to `sink` as a
   * JSON object {"error": TEXT}. The engine records every workload an addon starts, so `down`
   * can remove it even if the addon cannot.
   */
  flt_status (*runtime)(struct flt_call* call, const char* request, size_t len, flt_json_sink sink,
                        void* user);

  /** Passes the addon instance's saved state (JSON, `{}` at first) to `sink`; `{}` outside addon calls. */
  void (*state_get)(struct flt_call* call, flt_json_sink sink, void* user);

  /**
   * Replaces the addon instance's saved state (addon apply and destroy only; other calls get
   * FLT_NOT_SUPPORTED). Returns FLT_OK once it is written to disk, FLT_INVALID for a document
   * that is not JSON, FLT_ERROR when it could not be saved.
   */
  flt_status (*state_set)(struct flt_call* call, const char* json, size_t len);
} flt_host_api;

/** The per-call context. Created and owned by the engine; opaque past `host`. */
typedef struct flt_call {
  const flt_host_api* host;
} flt_call;

/**
 * Every operation of every interface has this shape: a JSON request in, a status out, and a
 * result document or an error message through call->host. Operations may be called
 * concurrently from several engine threads, each with its own call.
 */
typedef flt_status (*flt_operation)(flt_call* call, const char* request, size_t len);

/** "flotilla.driver/1": creates, inspects and destroys machines. */
typedef struct flt_driver_v1 {
  uint32_t struct_size;
  /* optional; NULL: nothing to check. {cluster, config, nodes: [node]} -> {errors: [{message, key}]} */
  flt_operation validate;
  /* required. {cluster, config, node} -> {address, runtime, runtime_config, data} */
  flt_operation create;
  /* optional; NULL: the engine takes the recorded state as the live one.
     {cluster, config, node, record} -> {state: running|stopped|missing} */
  flt_operation inspect;
  /* required. {cluster, config, node, record} -> {} (FLT_NOT_FOUND counts as success) */
  flt_operation destroy;
} flt_driver_v1;

/** "flotilla.runtime/1": runs workloads on a node and places files there. */
typedef struct flt_runtime_v1 {
  uint32_t struct_size;
  /* optional; NULL: nothing to check. {node, workload} -> {errors: [{message, key}]} */
  flt_operation validate;
  /* required. {node, workload} -> {record, changed}. The `record` given to inspect, stop and
     signal is one start returned, or {name} alone: then the workload is found by its name. */
  flt_operation start;
  /* required. {node, record} -> {state: running|exited|missing, exit_code?} */
  flt_operation inspect;
  /* required. {node, record, timeout_s, purge?} -> {} */
  flt_operation stop;
  /* optional; NULL: signals are FLT_NOT_SUPPORTED. {node, record, signal} -> {} */
  flt_operation signal;
  /* optional; NULL: files are FLT_NOT_SUPPORTED.
     {node, path, content, mode} or {node, path, remove: true} -> {path, changed} */
  flt_operation put_file;
} flt_runtime_v1;

/**
 * "flotilla.addon/1": deploys cluster components through the host's runtime operations.
 * Every operation gets the same request: {addon, cluster, nodes, services, addons, components}.
 */
typedef struct flt_addon_v1 {
  uint32_t struct_size;
  flt_operation validate; /* optional; NULL: nothing to check. -> {errors: [{message, key}]} */
  flt_operation apply;    /* required. -> {endpoints, outputs, messages} */
  flt_operation destroy;  /* required. -> {} (FLT_NOT_FOUND counts as success) */
} flt_addon_v1;

/**
 * "flotilla.query/1" (SDK 1.1): an addon answers a question about the data it owns, so the
 * engine never reads a plugin's private files. The addon's manifest lists the questions it
 * answers under "answers" (e.g. ["logs"]); the engine asks the addon of the cluster whose
 * plugin answers the question.
 */
typedef struct flt_query_v1 {
  uint32_t struct_size;
  /**
   * required. `request` is the addon request (addon, cluster, nodes, services, addons,
   * components) plus {"question": NAME, "args": {...}}. A long or open-ended answer (logs
   * being followed) is given in parts: each part is a JSON object passed to `emit` with
   * `emit_user`, in order, and copied before `emit` returns. The final result goes through
   * call->host->set_result as for any operation. A question kept open (a follow) ends when
   * call->host->is_cancelled returns non-zero, and then returns FLT_OK. An unknown question
   * is FLT_NOT_SUPPORTED. Runs on the engine's thread; `emit` may be called only from it and
   * only until the call returns. The host's runtime and state_set are not available here.
   */
  flt_status (*answer)(flt_call* call, const char* request, size_t len, flt_json_sink emit, void* emit_user);
} flt_query_v1;

/** What flotilla_plugin_entry returns. Lives as long as the library stays loaded. */
typedef struct flt_plugin_descriptor {
  uint32_t abi_version; /* FLT_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(flt_plugin_descriptor) as the plugin was built */
  const char* name;     /* "local", "haproxy": unique per kind, [a-z0-9-]+ */
  const char* kind;     /* "driver", "runtime" or "addon" */
  const char* version;  /* semantic version of the plugin */
  const char* description;
  /**
   * JSON: {"schema": {KEY: {"type", "default", "required", "description", "enum", ...}},
   * "provides": [...], "requires": [...], "optional": [...],
   * "placement": {"roles": [...], "mode": "all"|"first"}, "max_parallel": N,
   * "answers": [...] (SDK 1.1, addons with flotilla.query/1)}; see docs/sdk-reference.md.
   */
  const char* manifest;
  /** Returns the function table for `interface_id`, or NULL if not implemented. */
  const void* (*get_interface)(const char* interface_id);
} flt_plugin_descriptor;

/** The type of the exported entry function. */
typedef const flt_plugin_descriptor* (*flt_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* FLOTILLA_PLUGIN_H */
