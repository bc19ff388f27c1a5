#include "plugin_host.hpp"

#include "planner.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <spdlog/spdlog.h>

#include <flotilla/support/fd.hpp>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>

namespace flotilla {
namespace {

std::vector<std::string> string_list(const json& manifest, const char* key) {
  std::vector<std::string> out;
  if (auto it = manifest.find(key); it != manifest.end() && it->is_array())
    for (const auto& v : *it)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::mutex& secrets_mutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::string>& secrets() {
  static std::vector<std::string> values;
  return values;
}

// The engine's side of flt_call: the public part first, so a flt_call* is a HostCall*.
struct HostCall {
  flt_call call;
  const Plugin* plugin;
  const CallHooks* hooks;
  std::string result;
  bool has_result = false;
  std::string error;
};

HostCall* self(flt_call* call) { return reinterpret_cast<HostCall*>(call); }

std::string prefix(const HostCall* c) {
  std::string p = c->plugin->kind + ":" + c->plugin->name;
  if (!c->hooks->instance.empty()) p += ":" + c->hooks->instance;
  return p;
}

void host_log(flt_call* call, flt_log_level level, const char* msg, size_t len) {
  const HostCall* c = self(call);
  const std::string text = redact(std::string(msg, len));
  const auto lvl = level <= FLT_LOG_TRACE   ? spdlog::level::trace
                   : level == FLT_LOG_DEBUG ? spdlog::level::debug
                   : level == FLT_LOG_INFO  ? spdlog::level::info
                   : level == FLT_LOG_WARN  ? spdlog::level::warn
                                            : spdlog::level::err;
  spdlog::log(lvl, "{}: {}", prefix(c), text);
}

void host_progress(flt_call* call, const char* msg, size_t len) {
  const HostCall* c = self(call);
  if (c->hooks->progress) c->hooks->progress(redact(std::string(msg, len)));
}

int host_is_cancelled(flt_call* call) {
  const HostCall* c = self(call);
  return c->hooks->cancelled && c->hooks->cancelled() ? 1 : 0;
}

void host_set_result(flt_call* call, const char* json_text, size_t len) {
  HostCall* c = self(call);
  c->result.assign(json_text, len);
  c->has_result = true;
}

void host_set_error(flt_call* call, const char* msg, size_t len) { self(call)->error.assign(msg, len); }

flt_status host_runtime(flt_call* call, const char* request, size_t len, flt_json_sink sink, void* user) {
  const HostCall* c = self(call);
  auto reply = [&](const json& doc) {
    const std::string text = doc.dump(-1, ' ', false, json::error_handler_t::replace);
    sink(user, text.data(), text.size());
  };
  if (!c->hooks->runtime) {
    reply(json{{"error", "runtime operations are available to addons only"}});
    return FLT_NOT_SUPPORTED;
  }
  json req = json::parse(std::string_view(request, len), nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    reply(json{{"error", "runtime request is not a JSON object"}});
    return FLT_INVALID;
  }
  json out = json::object();
  flt_status st = FLT_ERROR;
  try {
    st = c->hooks->runtime(req, out);
  } catch (const std::exception& e) {
    out = json{{"error", std::string("engine error in runtime operation: ") + e.what()}};
    st = FLT_ERROR;
  }
  reply(out);
  return st;
}

void host_state_get(flt_call* call, flt_json_sink sink, void* user) {
  const HostCall* c = self(call);
  const json state = c->hooks->state_get ? c->hooks->state_get() : json::object();
  const std::string text = state.dump();
  sink(user, text.data(), text.size());
}

flt_status host_state_set(flt_call* call, const char* text, size_t len) {
  const HostCall* c = self(call);
  if (!c->hooks->state_set) return FLT_NOT_SUPPORTED;
  json doc = json::parse(std::string_view(text, len), nullptr, false);
  if (doc.is_discarded()) return FLT_INVALID;
  return c->hooks->state_set(doc);
}

const flt_host_api kHostApi = {
    FLT_ABI_VERSION, sizeof(flt_host_api), &host_log,       &host_progress,  &host_is_cancelled, &host_set_result,
    &host_set_error, &host_runtime,        &host_state_get, &host_state_set,
};

const char* status_name(flt_status s) {
  switch (s) {
    case FLT_OK: return "ok";
    case FLT_ERROR: return "error";
    case FLT_RETRYABLE: return "retryable error";
    case FLT_NOT_FOUND: return "not found";
    case FLT_CANCELLED: return "cancelled";
    case FLT_NOT_SUPPORTED: return "not supported";
    case FLT_INVALID: return "invalid";
  }
  return "unknown status";
}

bool is_plugin_file(const std::filesystem::path& p) { return p.extension() == ".so"; }

// ---------------------------------------------------------------------------------------
// Checks before dlopen: the loader maps a library's segments as its headers describe them, so
// a truncated file faults (SIGBUS) inside dlopen, and a FIFO blocks it. Only a regular, whole
// ELF object of this build's class and machine is handed to the loader.

#if defined(__LP64__)
constexpr unsigned char kElfClass = ELFCLASS64;
#else
constexpr unsigned char kElfClass = ELFCLASS32;
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char kElfData = ELFDATA2LSB;
#else
constexpr unsigned char kElfData = ELFDATA2MSB;
#endif

// The e_machine of the running program (read once from /proc/self/exe), or EM_NONE when it
// cannot be read, in which case the loader's own check is the only one.
Elf64_Half own_machine() {
  static const Elf64_Half machine = [] {
    ElfW(Ehdr) h{};
    support::UniqueFd fd(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    if (!fd || ::pread(fd.get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return Elf64_Half{EM_NONE};
    return Elf64_Half{h.e_machine};
  }();
  return machine;
}

std::string file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device, not a regular file";
  return "is not a regular file";
}

// End of a table of `count` entries of `size` bytes at `offset`, saturating instead of wrapping.
std::uint64_t table_end(std::uint64_t offset, std::uint64_t count, std::uint64_t size) {
  const std::uint64_t bytes = count * size;  // both at most 65535
  return offset > UINT64_MAX - bytes ? UINT64_MAX : offset + bytes;
}

// Checks the ELF header and that every byte the headers point at lies within `size`; "" or why not.
std::string check_elf(int fd, std::uint64_t size) {
  ElfW(Ehdr) h{};
  if (size < EI_NIDENT || ::pread(fd, &h, std::min<std::uint64_t>(size, sizeof h), 0) < EI_NIDENT)
    return size == 0 ? "empty file" : "not an ELF file (" + std::to_string(size) + " bytes)";
  if (std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0) return "not an ELF file (no ELF magic)";
  if (h.e_ident[EI_CLASS] != kElfClass)
    return std::string("an ELF file of class ") + (h.e_ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit") + ", not this build's";
  if (h.e_ident[EI_DATA] != kElfData) return "an ELF file of the other byte order";
  if (size < sizeof h) return "truncated ELF (" + std::to_string(size) + " of at least " + std::to_string(sizeof h) + " bytes)";
  if (own_machine() != EM_NONE && h.e_machine != own_machine())
    return "an ELF file for machine " + std::to_string(h.e_machine) + ", not this build's (" + std::to_string(own_machine()) + ")";
  if (h.e_type != ET_DYN) return "an ELF file that is not a shared library (e_type " + std::to_string(h.e_type) + ")";
  if (h.e_phnum == 0 || h.e_phentsize != sizeof(ElfW(Phdr))) return "an ELF file without valid program headers";
  std::uint64_t needed = table_end(h.e_phoff, h.e_phnum, h.e_phentsize);
  if (h.e_shoff != 0) needed = std::max(needed, table_end(h.e_shoff, h.e_shnum, h.e_shentsize));
  if (needed <= size) {
    std::vector<ElfW(Phdr)> ph(h.e_phnum);
    const auto bytes = static_cast<ssize_t>(ph.size() * sizeof(ElfW(Phdr)));
    if (::pread(fd, ph.data(), static_cast<size_t>(bytes), static_cast<off_t>(h.e_phoff)) != bytes)
      return "unreadable program headers";
    for (const auto& seg : ph)
      if (seg.p_type == PT_LOAD) needed = std::max(needed, table_end(seg.p_offset, 1, seg.p_filesz));
  }
  if (needed > size) {
    const std::string want = needed == UINT64_MAX ? "more than " + std::to_string(size) : std::to_string(needed);
    return "truncated ELF (" + std::to_string(size) + " of " + want + " bytes)";
  }
  return "";
}

}  // namespace

std::string check_plugin_file(const std::filesystem::path& file) {
  // The type is checked before the open, so no device is ever opened; O_NONBLOCK keeps a FIFO
  // swapped in between from blocking the open, and fstat checks the type again.
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    const int err = errno;
    return err == ELOOP ? "symlink loop" : std::string("cannot read: ") + std::strerror(err);
  }
  if (!S_ISREG(st.st_mode)) return file_type_name(st.st_mode);
  support::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) return std::string("cannot open: ") + std::strerror(errno);
  if (::fstat(fd.get(), &st) != 0) return std::string("cannot read: ") + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return file_type_name(st.st_mode);
  return check_elf(fd.get(), static_cast<std::uint64_t>(st.st_size));
}

namespace {

std::string skipped(const std::filesystem::path& file, const std::string& why) {
  return "skipped plugin " + file.string() + ": " + why + "; replace it with a complete build of the plugin or remove it from the plugin path";
}

// The one list of which entries of each table are required (plugin.h says the same, entry by
// entry; docs/sdk-reference.md lists them): a table lacking one is refused at load time, so
// the engine never calls a NULL required entry. Optional entries may be NULL.
const char* missing_required(const flt_driver_v1& t) {
  if (!t.create) return "create";
  if (!t.destroy) return "destroy";
  return nullptr;
}
const char* missing_required(const flt_runtime_v1& t) {
  if (!t.start) return "start";
  if (!t.inspect) return "inspect";
  if (!t.stop) return "stop";
  return nullptr;
}
const char* missing_required(const flt_addon_v1& t) {
  if (!t.apply) return "apply";
  if (!t.destroy) return "destroy";
  return nullptr;
}
const char* missing_required(const flt_query_v1& t) { return t.answer ? nullptr : "answer"; }

// Fetches and checks the table `id` of a plugin: "" when it is usable, else what is wrong.
template <class Table>
std::string bind_table(const flt_plugin_descriptor& d, const char* id, const Table*& out) {
  out = static_cast<const Table*>(d.get_interface(id));
  if (out == nullptr) return std::string("has no ") + id + " interface";
  if (out->struct_size < sizeof(Table))
    return std::string("has a ") + id + " table of " + std::to_string(out->struct_size) + " bytes, expected at least " +
           std::to_string(sizeof(Table));
  if (const char* entry = missing_required(*out))
    return std::string("has no `") + entry + "` in its " + id + " table, and that entry is required (see docs/sdk-reference.md)";
  return "";
}

// Binds the interface table of the plugin's kind and, for addons, the optional query table.
// Returns "" or what is wrong, with what to do.
std::string bind_interfaces(Plugin& p, const flt_plugin_descriptor& d) {
  std::string bad;
  if (p.kind == "driver") bad = bind_table(d, FLT_INTERFACE_DRIVER, p.driver);
  else if (p.kind == "runtime") bad = bind_table(d, FLT_INTERFACE_RUNTIME, p.runtime);
  else if (p.kind == "addon") bad = bind_table(d, FLT_INTERFACE_ADDON, p.addon);
  else return "has unknown kind \"" + p.kind + "\"; expected driver, runtime or addon";
  if (!bad.empty()) return "says it is a " + p.kind + " but " + bad + "; rebuild it against this engine's SDK";
  const bool declares = !string_list(p.manifest, "answers").empty();
  if (p.kind == "addon" && d.get_interface(FLT_INTERFACE_QUERY) != nullptr) {
    if (bad = bind_table(d, FLT_INTERFACE_QUERY, p.query); !bad.empty()) return bad + "; fix the plugin";
    if (!declares) return "has a " FLT_INTERFACE_QUERY " interface but its manifest lists no \"answers\"; list the questions it answers";
  } else if (declares) {
    return "lists \"answers\" in its manifest but has no " FLT_INTERFACE_QUERY " interface; implement it or drop \"answers\"";
  }
  return "";
}

}  // namespace

std::string Plugin::label() const { return kind + " " + name + " (" + file.string() + ")"; }
std::vector<std::string> Plugin::provides() const { return string_list(manifest, "provides"); }
std::vector<std::string> Plugin::requires_() const { return string_list(manifest, "requires"); }
std::vector<std::string> Plugin::optional() const { return string_list(manifest, "optional"); }
std::vector<std::string> Plugin::answers() const { return query ? string_list(manifest, "answers") : std::vector<std::string>{}; }
bool Plugin::answers(const std::string& question) const {
  const auto list = answers();
  return std::find(list.begin(), list.end(), question) != list.end();
}
int Plugin::max_parallel() const {
  auto it = manifest.find("max_parallel");
  return it != manifest.end() && it->is_number_integer() ? it->get<int>() : 0;
}

Result<Plugin> load_plugin(const std::filesystem::path& file) {
  namespace dll = boost::dll;
  Plugin p;
  p.file = file;
  if (auto why = check_plugin_file(file); !why.empty()) return fail(skipped(file, why));
  boost::system::error_code ec;
  auto lib = std::make_shared<dll::shared_library>();
  lib->load(file.string(), dll::load_mode::rtld_local | dll::load_mode::rtld_now, ec);
  if (ec) {
    // Boost.DLL reports a generic error code; dlerror() still holds the loader's reason.
    const char* why = ::dlerror();
    return fail("cannot load plugin " + file.string() + ": " + (why ? std::string(why) : ec.message()) + "; rebuild it against this SDK or remove it from the plugin path");
  }
  if (!lib->has(FLT_ENTRY_SYMBOL))
    return fail("plugin " + file.string() + " has no entry symbol `" FLT_ENTRY_SYMBOL "`; build it with flotilla_add_plugin() and FLOTILLA_PLUGIN(...)");
  auto entry = lib->get<const flt_plugin_descriptor*()>(FLT_ENTRY_SYMBOL);
  const flt_plugin_descriptor* d = nullptr;
  try {
    d = entry();
  } catch (...) {
    return fail("plugin " + file.string() + ": its entry function threw an exception; fix the plugin");
  }
  if (d == nullptr) return fail("plugin " + file.string() + ": its entry function returned no descriptor");
  if (d->abi_version != FLT_ABI_VERSION)
    return fail("plugin " + file.string() + " was built for plugin ABI version " + std::to_string(d->abi_version) +
                ", but this engine serves ABI version " + std::to_string(FLT_ABI_VERSION) +
                "; rebuild the plugin against this engine's SDK");
  if (d->struct_size < sizeof(flt_plugin_descriptor))
    return fail("plugin " + file.string() + ": descriptor is " + std::to_string(d->struct_size) + " bytes, expected at least " +
                std::to_string(sizeof(flt_plugin_descriptor)) + "; rebuild the plugin against this engine's SDK");
  if (!d->name || !d->kind || !d->get_interface)
    return fail("plugin " + file.string() + ": descriptor lacks a name, kind or get_interface");
  p.descriptor = d;
  p.name = d->name;
  p.kind = d->kind;
  p.version = d->version ? d->version : "";
  p.description = d->description ? d->description : "";
  if (d->manifest && *d->manifest) {
    p.manifest = json::parse(d->manifest, nullptr, false);
    if (p.manifest.is_discarded() || !p.manifest.is_object())
      return fail("plugin " + file.string() + " (" + p.kind + " " + p.name + "): its manifest is not a JSON object; fix the plugin");
  }
  if (std::vector<AddonStage> stages; p.kind == "addon")
    if (auto bad = parse_addon_stages(p.manifest, stages); !bad.empty())
      return fail("plugin " + file.string() + " (" + p.kind + " " + p.name + "): " + bad + "; fix the plugin");
  if (auto bad = bind_interfaces(p, *d); !bad.empty())
    return fail("plugin " + file.string() + " (" + p.kind + " " + p.name + ") " + bad);
  p.library = std::move(lib);
  return p;
}

namespace {

// Runs one operation through `invoke` with a fresh call and turns its outcome into a
// CallResult: exceptions, unknown statuses and results that are not JSON objects become
// FLT_ERROR with a message saying so.
template <class Invoke>
CallResult run_call(const Plugin& plugin, const json& request, const CallHooks& hooks, Invoke&& invoke) {
  CallResult out;
  HostCall c{{&kHostApi}, &plugin, &hooks, {}, false, {}};
  const std::string text = request.dump(-1, ' ', false, json::error_handler_t::replace);
  try {
    out.status = invoke(&c.call, text);
  } catch (const std::exception& e) {
    out.status = FLT_ERROR;
    out.error = std::string("the plugin threw an exception across its C boundary: ") + e.what();
    return out;
  } catch (...) {
    out.status = FLT_ERROR;
    out.error = "the plugin threw an exception across its C boundary";
    return out;
  }
  if (out.status < FLT_OK || out.status > FLT_INVALID) {
    out.error = "returned unknown status " + std::to_string(static_cast<int>(out.status)) + (c.error.empty() ? "" : ": " + c.error);
    out.status = FLT_ERROR;
    return out;
  }
  if (out.status != FLT_OK) {
    out.error = c.error.empty() ? std::string(status_name(out.status)) : c.error;
    return out;
  }
  if (c.has_result) {
    out.result = json::parse(c.result, nullptr, false);
    if (out.result.is_discarded() || !out.result.is_object()) {
      out.status = FLT_ERROR;
      out.error = "returned a result that is not a JSON object: " + c.result.substr(0, 200);
      out.result = json::object();
    }
  }
  return out;
}

// Where a query's emitted parts go. An exception from the caller's handler must not unwind
// through the plugin's C frames: it is kept, the call is cancelled, and it is reported after.
struct QuerySink {
  const std::function<void(std::string_view)>* on_part;
  std::string failure;
};

void query_emit(void* user, const char* text, size_t len) {
  auto* sink = static_cast<QuerySink*>(user);
  if (!sink->failure.empty()) return;
  try {
    (*sink->on_part)(std::string_view(text, len));
  } catch (const std::exception& e) {
    sink->failure = e.what();
  } catch (...) {
    sink->failure = "unknown error";
  }
}

}  // namespace

CallResult call_plugin(const Plugin& plugin, flt_operation op, const char* op_name, const json& request,
                       const CallHooks& hooks) {
  if (op == nullptr) {
    CallResult out;
    out.status = FLT_NOT_SUPPORTED;
    out.error = std::string("operation ") + op_name + " is not implemented";
    return out;
  }
  return run_call(plugin, request, hooks,
                  [&](flt_call* call, const std::string& text) { return op(call, text.data(), text.size()); });
}

CallResult call_query(const Plugin& plugin, const json& request, const CallHooks& hooks,
                      const std::function<void(std::string_view part)>& on_part) {
  if (plugin.query == nullptr) {
    CallResult out;
    out.status = FLT_NOT_SUPPORTED;
    out.error = "it answers no questions (it has no " FLT_INTERFACE_QUERY " interface)";
    return out;
  }
  QuerySink sink{&on_part, {}};
  CallHooks guarded = hooks;
  guarded.cancelled = [&] { return !sink.failure.empty() || (hooks.cancelled && hooks.cancelled()); };
  guarded.runtime = nullptr;  // a query only reads
  guarded.state_set = nullptr;
  CallResult out = run_call(plugin, request, guarded, [&](flt_call* call, const std::string& text) {
    return plugin.query->answer(call, text.data(), text.size(), &query_emit, &sink);
  });
  if (!sink.failure.empty()) {
    out.status = FLT_ERROR;
    out.error = "the engine could not take a part of the answer: " + sink.failure;
  }
  return out;
}

Error call_error(const Plugin& plugin, const char* op_name, const CallResult& r) {
  Error e{redact(plugin.kind + " " + plugin.name + ": " + op_name + " failed: " + r.error)};
  e.retryable = r.status == FLT_RETRYABLE;
  return e;
}

std::vector<std::filesystem::path> PluginHost::search_path(const std::string& explicit_path) {
  std::vector<std::filesystem::path> out;
  auto add_list = [&](const std::string& list) {
    std::stringstream ss(list);
    std::string part;
    while (std::getline(ss, part, ':'))
      if (!part.empty()) out.emplace_back(part);
  };
  add_list(explicit_path);
  if (const char* env = std::getenv("FLOTILLA_PLUGIN_PATH")) add_list(env);
  boost::system::error_code ec;
  auto exe = boost::dll::program_location(ec);
  if (!ec) out.push_back(std::filesystem::path(exe.parent_path().string()) / ".." / "lib" / "flotilla" / "plugins");
  for (auto& p : out) {
    std::error_code fec;
    auto canon = std::filesystem::weakly_canonical(p, fec);
    if (!fec) p = canon;
  }
  return out;
}

namespace {

// The *.so entries of one directory of the search path, sorted. A directory that exists but
// cannot be read, or an entry that cannot be examined, is a problem; neither stops the walk.
std::vector<std::filesystem::path> plugin_candidates(const std::filesystem::path& dir, std::vector<Error>& problems) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  const bool is_dir = fs::is_directory(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
    problems.push_back(Error{"cannot read plugin directory " + dir.string() + ": " + ec.message() + "; fix it or remove it from the plugin path"});
  if (!is_dir) return files;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    problems.push_back(Error{"cannot read plugin directory " + dir.string() + ": " + ec.message() + "; fix its permissions or remove it from the plugin path"});
    return files;
  }
  // Only names are read here: whether an entry is a usable file is check_plugin_file's
  // question, asked without throwing (a symlink loop makes is_regular_file throw).
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    if (is_plugin_file(it->path())) files.push_back(it->path());
  }
  if (ec)
    problems.push_back(Error{"stopped reading plugin directory " + dir.string() + ": " + ec.message() + "; fix its permissions"});
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

PluginHost PluginHost::discover(const std::vector<std::filesystem::path>& path) {
  PluginHost host;
  host.path_ = path;
  std::set<std::string> seen_files;
  for (const auto& dir : path) {
    for (const auto& f : plugin_candidates(dir, host.problems_)) {
      std::error_code ec;
      auto canon = std::filesystem::canonical(f, ec);
      if (!seen_files.insert(ec ? f.string() : canon.string()).second) continue;
      auto loaded = load_plugin(f);
      if (!loaded) {
        host.problems_.push_back(loaded.error());
        continue;
      }
      if (host.find(loaded->kind, loaded->name)) continue;  // earlier directories win
      host.plugins_.push_back(std::move(*loaded));
    }
  }
  return host;
}

const Plugin* PluginHost::find(const std::string& kind, const std::string& name) const {
  for (const auto& p : plugins_)
    if (p.kind == kind && p.name == name) return &p;
  return nullptr;
}

const Error* PluginHost::problem_for(const std::string& kind, const std::string& name) const {
  std::string stem = kind + "_" + name;
  std::replace(stem.begin(), stem.end(), '-', '_');
  for (const auto& e : problems_)
    if (e.message.find(stem) != std::string::npos) return &e;
  return nullptr;
}

Result<const Plugin*> PluginHost::get(const std::string& kind, const std::string& name) const {
  if (const Plugin* p = find(kind, name)) return p;
  std::string known;
  for (const auto& p : plugins_)
    if (p.kind == kind) known += (known.empty() ? "" : ", ") + p.name;
  std::string where;
  for (const auto& d : path_) where += (where.empty() ? "" : ":") + d.string();
  std::string msg = "no " + kind + " plugin named \"" + name + "\"";
  if (const Error* e = problem_for(kind, name)) msg += " (" + e->message + ")";
  msg += "; known " + kind + "s: " + (known.empty() ? "none" : known) + "; plugins are searched in " + where +
         " (set --plugin-path or FLOTILLA_PLUGIN_PATH to add a directory)";
  return fail(msg);
}

void add_secret(const std::string& value) {
  if (value.size() < 4) return;  // too short to redact without mangling ordinary text
  std::lock_guard lock(secrets_mutex());
  if (std::find(secrets().begin(), secrets().end(), value) == secrets().end()) secrets().push_back(value);
}

std::string redact(std::string text) {
  std::lock_guard lock(secrets_mutex());
  for (const auto& s : secrets()) {
    for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos)) {
      text.replace(pos, s.size(), "[redacted]");
      pos += 10;
    }
  }
  return text;
}

}  // namespace flotilla
