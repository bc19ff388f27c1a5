/*
 * Flotilla plugin ABI, version 1.
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

/** Name of the one symbol a plugin library exports. */
#define FLT_ENTRY_SYMBOL "flotilla_plugin_entry"

/** Interface ids, passed to flt_plugin_descriptor.get_interface. */
#define FLT_INTERFACE_DRIVER "flotilla.driver/1"
#define FLT_INTERFACE_RUNTIME "flotilla.runtime/1"
#define FLT_INTERFACE_ADDON "flotilla.addon/1"

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
   * Runs a runtime operation on a node of the cluster (addons only; drivers and runtimes get
   * FLT_NOT_SUPPORTED). `request` is a JSON object {"op": ..., "node": NAME, ...}: start,
   * stop, inspect, signal, put_file, remove_file or list; see docs/sdk-reference.md. The result document is passed to `sink`
   * before the function returns; on failure the message is passed to `sink` as a JSON
   * object {"error": TEXT}. The engine records every workload an addon starts, so `down`
   * can remove it even if the addon cannot.
   */
  flt_status (*runtime)(struct flt_call* call, const char* request, size_t len, flt_json_sink sink,
                        void* user);

  /** Passes the plugin instance's saved state (JSON, `{}` at first) to `sink`. */
  void (*state_get)(struct flt_call* call, flt_json_sink sink, void* user);

  /** Replaces the plugin instance's saved state. Written to disk with the step's result. */
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
  flt_operation validate; /* {config, nodes[]} -> {errors: [{message, key}]} */
  flt_operation create;   /* {cluster, config, node} -> {address, runtime, runtime_config, data} */
  flt_operation inspect;  /* {cluster, config, node, record} -> {state} */
  flt_operation destroy;  /* {cluster, config, node, record} -> {} (FLT_NOT_FOUND is success) */
} flt_driver_v1;

/** "flotilla.runtime/1": runs workloads on a node and places files there. */
typedef struct flt_runtime_v1 {
  uint32_t struct_size;
  flt_operation validate; /* {node, workload} -> {errors: [...]} */
  flt_operation start;    /* {node, workload} -> {record, changed} */
  flt_operation inspect;  /* {node, record} -> {state: running|exited|missing, ...} */
  flt_operation stop;     /* {node, record, timeout_s, purge?} -> {} */
  flt_operation signal;   /* {node, record, signal} -> {} */
  flt_operation put_file; /* {node, path, content, mode} or {node, path, remove: true} -> {path, changed} */
} flt_runtime_v1;

/** "flotilla.addon/1": deploys cluster components through the host's runtime operations. */
typedef struct flt_addon_v1 {
  uint32_t struct_size;
  flt_operation validate; /* {addon, cluster view} -> {errors: [...]}; NULL: nothing to check */
  flt_operation apply;    /* {addon, cluster view} -> {endpoints, outputs, messages} */
  flt_operation destroy;  /* {addon, cluster view} -> {} */
} flt_addon_v1;

/** What flotilla_plugin_entry returns. Lives as long as the library stays loaded. */
typedef struct flt_plugin_descriptor {
  uint32_t abi_version; /* FLT_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(flt_plugin_descriptor) as the plugin was built */
  const char* name;     /* "local", "haproxy": unique per kind, [a-z0-9-]+ */
  const char* kind;     /* "driver", "runtime" or "addon" */
  const char* version;  /* semantic version of the plugin */
  const char* description;
  /**
   * JSON: {"schema": {KEY: {"type", "default", "required", "description", "enum"}},
   * "provides": [...], "requires": [...], "optional": [...],
   * "placement": {"roles": [...], "mode": "all"|"first"}, "max_parallel": N}.
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
