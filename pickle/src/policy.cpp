#include "pickle/policy.hpp"

#include <algorithm>
#include <optional>
#include <span>
#include <array>
#include <string>
#include <vector>

#include "compat.hpp"
#include "pickle/opcodes.hpp"

namespace pickle {
namespace {

// Modules whose every attribute is dangerous to reach from a pickle; a blocked module also blocks
// its submodules ("os" blocks "os.path"). The union of picklescan's `*` entries, fickling's
// UNSAFE_MODULES, PyTorch's _blocklisted_modules, and the modules of the denylist bypasses reported
// against fickling (_posixsubprocess, site, atexit, cProfile, pty, marshal, types).
constexpr std::string_view blocked_modules[] = {
    "_ctypes", "_io", "_osx_support", "_pickle", "_posixsubprocess", "_pyio", "_thread",
    "_winapi", "aiohttp", "asyncio", "atexit", "bdb", "cPickle", "cProfile", "cloudpickle",
    "code", "codeop", "commands", "compileall", "ctypes", "dill", "distutils", "ensurepip", "ftplib",
    "http.client", "http.server", "httplib", "idlelib", "imaplib", "importlib", "joblib", "lib2to3", "marshal",
    "msvcrt", "multiprocessing", "nt", "numpy.f2py", "numpy.testing", "os", "pdb", "pickle",
    "pip", "pkgutil", "popen2", "posix", "profile", "pty", "py_compile", "pydoc", "requests",
    "runpy", "sched", "shelve", "shutil", "signal", "site", "smtplib", "socket", "socketserver",
    "ssl", "subprocess", "sys", "telnetlib", "threading", "timeit", "torch.hub", "torch.utils.bottleneck", "trace", "types",
    "urllib.request", "urllib2", "venv", "webbrowser"};

// Attributes of builtins that run code, read or write files, or reach arbitrary attributes.
constexpr std::string_view blocked_builtins[] = {
    "__build_class__", "__import__", "apply", "breakpoint", "compile", "delattr", "eval", "exec",
    "execfile", "exit", "file", "getattr", "globals", "help", "input", "locals", "memoryview",
    "open", "quit", "raw_input", "reload", "setattr", "vars"};

// Blocked modules that other modules commonly import, so that an attribute path reaches them
// (posixpath.os is the os module).
constexpr std::string_view reexported_modules[] = {
    "__builtins__", "builtins", "ctypes", "importlib", "marshal", "nt", "os", "pickle", "posix",
    "pty", "runpy", "shutil", "socket", "subprocess", "sys"};

struct NamedGlobal {
  std::string_view module;
  std::string_view name;
};

// Single dangerous globals outside the blocked modules (picklescan's specific names, fickling's
// UNSAFE_IMPORTS). A name here also blocks its attributes ("functools.partial.func").
constexpr NamedGlobal blocked_globals[] = {
    {"_codecs", "open"},
    {"_operator", "attrgetter"},
    {"_operator", "getitem"},
    {"_operator", "itemgetter"},
    {"_operator", "methodcaller"},
    {"codecs", "open"},
    {"doctest", "debug_script"},
    {"functools", "partial"},
    {"functools", "reduce"},
    {"io", "FileIO"},
    {"io", "open"},
    {"io", "open_code"},
    {"numpy", "load"},
    {"operator", "attrgetter"},
    {"operator", "getitem"},
    {"operator", "itemgetter"},
    {"operator", "methodcaller"},
    {"torch", "load"},
    {"torch._dynamo.guards", "GuardBuilder"},
    {"torch._inductor.codecache", "compile_file"},
    {"torch.fx.experimental.symbolic_shapes", "ShapeEnv"},
    {"torch.jit.unsupported_tensor_ops", "execWrapper"},
    {"torch.serialization", "load"},
    {"torch.storage", "_load_from_bytes"},
    {"torch.utils._config_module", "ConfigModule"},
    {"torch.utils.collect_env", "run"},
    {"torch.utils.data.datapipes.utils.decoder", "basichandlers"},
    {"yaml", "load"},
    {"yaml", "unsafe_load"},
    {"zipimport", "zipimporter"},
};

// Names that run code, spawn processes, open files or deserialize nested data, whatever module
// they come from: a global with one of these names (or one of these in its attribute path) is
// rated dangerous even in a module no list names, which is how denylists keep being bypassed.
constexpr std::string_view dangerous_names[] = {
    "__builtins__", "__globals__", "__import__", "__subclasses__", "call", "check_call",
    "check_output", "compile", "eval", "exec", "execfile", "execl", "execle", "execlp", "execv",
    "execve", "execvp", "execvpe", "fork_exec", "getattr", "import_module", "load", "load_module",
    "loads", "open", "popen", "Popen", "run", "run_code", "run_module", "run_path", "runcode",
    "runctx", "runsource", "setattr", "spawn", "spawnl", "spawnv", "spawnve", "startfile",
    "system", "unsafe_load", "execWrapper"};

// The deny_unknown allowlist: builtin data and the constructors CPython and PyTorch use to pickle
// it. Sorted by (module, name).
constexpr NamedGlobal data_globals[] = {
    {"_codecs", "encode"},
    {"array", "_array_reconstructor"},
    {"array", "array"},
    {"builtins", "ArithmeticError"},
    {"builtins", "AssertionError"},
    {"builtins", "AttributeError"},
    {"builtins", "BaseException"},
    {"builtins", "BufferError"},
    {"builtins", "BytesWarning"},
    {"builtins", "DeprecationWarning"},
    {"builtins", "EOFError"},
    {"builtins", "Ellipsis"},
    {"builtins", "EnvironmentError"},
    {"builtins", "Exception"},
    {"builtins", "FloatingPointError"},
    {"builtins", "FutureWarning"},
    {"builtins", "GeneratorExit"},
    {"builtins", "IOError"},
    {"builtins", "ImportError"},
    {"builtins", "ImportWarning"},
    {"builtins", "IndentationError"},
    {"builtins", "IndexError"},
    {"builtins", "KeyError"},
    {"builtins", "KeyboardInterrupt"},
    {"builtins", "LookupError"},
    {"builtins", "MemoryError"},
    {"builtins", "NameError"},
    {"builtins", "NotImplemented"},
    {"builtins", "NotImplementedError"},
    {"builtins", "OSError"},
    {"builtins", "OverflowError"},
    {"builtins", "PendingDeprecationWarning"},
    {"builtins", "ReferenceError"},
    {"builtins", "RuntimeError"},
    {"builtins", "RuntimeWarning"},
    {"builtins", "StopIteration"},
    {"builtins", "SyntaxError"},
    {"builtins", "SyntaxWarning"},
    {"builtins", "SystemError"},
    {"builtins", "TabError"},
    {"builtins", "TypeError"},
    {"builtins", "UnboundLocalError"},
    {"builtins", "UnicodeDecodeError"},
    {"builtins", "UnicodeEncodeError"},
    {"builtins", "UnicodeError"},
    {"builtins", "UnicodeTranslateError"},
    {"builtins", "UnicodeWarning"},
    {"builtins", "UserWarning"},
    {"builtins", "ValueError"},
    {"builtins", "Warning"},
    {"builtins", "ZeroDivisionError"},
    {"builtins", "bool"},
    {"builtins", "bytearray"},
    {"builtins", "bytes"},
    {"builtins", "complex"},
    {"builtins", "dict"},
    {"builtins", "float"},
    {"builtins", "frozenset"},
    {"builtins", "int"},
    {"builtins", "list"},
    {"builtins", "object"},
    {"builtins", "range"},
    {"builtins", "set"},
    {"builtins", "slice"},
    {"builtins", "str"},
    {"builtins", "tuple"},
    {"collections", "ChainMap"},
    {"collections", "Counter"},
    {"collections", "OrderedDict"},
    {"collections", "UserDict"},
    {"collections", "UserList"},
    {"collections", "UserString"},
    {"collections", "defaultdict"},
    {"collections", "deque"},
    {"copyreg", "__newobj__"},
    {"copyreg", "__newobj_ex__"},
    {"copyreg", "_reconstructor"},
    {"datetime", "date"},
    {"datetime", "datetime"},
    {"datetime", "time"},
    {"datetime", "timedelta"},
    {"datetime", "timezone"},
    {"datetime", "tzinfo"},
    {"decimal", "Decimal"},
    {"fractions", "Fraction"},
    {"numpy", "dtype"},
    {"numpy", "ndarray"},
    {"numpy._core.multiarray", "_reconstruct"},
    {"numpy._core.multiarray", "scalar"},
    {"numpy.core.multiarray", "_reconstruct"},
    {"numpy.core.multiarray", "scalar"},
    {"pathlib", "PurePath"},
    {"pathlib", "PurePosixPath"},
    {"pathlib", "PureWindowsPath"},
    {"torch", "Size"},
    {"torch", "Tensor"},
    {"torch", "device"},
    {"torch._tensor", "_rebuild_from_type_v2"},
    {"torch._utils", "_rebuild_parameter"},
    {"torch._utils", "_rebuild_parameter_with_state"},
    {"torch._utils", "_rebuild_qtensor"},
    {"torch._utils", "_rebuild_sparse_tensor"},
    {"torch._utils", "_rebuild_tensor"},
    {"torch._utils", "_rebuild_tensor_v2"},
    {"torch.nn.parameter", "Parameter"},
    {"torch.serialization", "_get_layout"},
    {"uuid", "SafeUUID"},
    {"uuid", "UUID"},
    {"zoneinfo", "ZoneInfo"},
    {"zoneinfo", "_unpickle"},
};

bool is_dunder(std::string_view part) {
  return part.size() > 4 && part.starts_with("__") && part.ends_with("__");
}

std::vector<std::string_view> split_dots(std::string_view text) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = text.find('.', start);
    parts.push_back(text.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

// The blocked module `module` is in or under, if any.
std::optional<std::string_view> blocked_module_of(std::string_view module) {
  for (std::string_view blocked : blocked_modules) {
    if (module == blocked ||
        (module.size() > blocked.size() && module.starts_with(blocked) &&
         module[blocked.size()] == '.')) {
      return blocked;
    }
  }
  return std::nullopt;
}

// Py2's urllib held urlopen and urlretrieve; Py3's urllib package itself holds only submodules, of
// which urllib.request is blocked above and urllib.parse is data.
bool is_py2_urllib(std::string_view module) { return module == "urllib"; }

bool module_is_builtins(std::string_view module) {
  return module == "builtins" || module == "__builtin__" || module == "__builtins__" ||
         module == "exceptions";
}

bool contains(std::span<const std::string_view> list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Every (module, name) the pickle could mean: as written, and as Python 2 names map on loading.
std::vector<std::pair<std::string_view, std::string_view>> spellings(std::string_view module,
                                                                     std::string_view name) {
  std::vector<std::pair<std::string_view, std::string_view>> result{{module, name}};
  detail::QualifiedName mapped = detail::py2_to_py3({module, name});
  if (mapped.module != module || mapped.name != name) result.emplace_back(mapped.module, mapped.name);
  return result;
}

std::optional<std::string> blocklist_reason(std::string_view module, std::string_view name) {
  if (auto blocked = blocked_module_of(module)) {
    return "blocked module " + std::string(*blocked);
  }
  if (is_py2_urllib(module)) return "blocked module urllib";
  const std::vector<std::string_view> path = split_dots(name);
  if (module_is_builtins(module) && contains(blocked_builtins, path.front())) {
    return "blocked builtin " + std::string(path.front());
  }
  for (const NamedGlobal& global : blocked_globals) {
    if (global.module == module && global.name == path.front()) {
      return "blocked global " + std::string(module) + "." + std::string(path.front());
    }
  }
  // An attribute path through a module another module imported: posixpath.os, pathlib.os.system.
  for (std::string_view part : path) {
    if (contains(reexported_modules, part)) {
      return "reaches module " + std::string(part) + " through an attribute";
    }
  }
  return std::nullopt;
}

PolicyDecision decide(PolicyVerdict verdict, std::string reason) {
  return PolicyDecision{verdict, std::move(reason)};
}

}  // namespace

std::string_view risk_name(Risk risk) noexcept {
  switch (risk) {
    case Risk::safe: return "safe";
    case Risk::suspicious: return "suspicious";
    case Risk::dangerous: return "dangerous";
  }
  return "dangerous";
}

std::string_view verdict_name(PolicyVerdict verdict) noexcept {
  switch (verdict) {
    case PolicyVerdict::allow: return "allow";
    case PolicyVerdict::deny: return "deny";
    case PolicyVerdict::inert: return "inert";
  }
  return "deny";
}

std::string_view call_kind_name(CallKind kind) noexcept {
  switch (kind) {
    case CallKind::reduce: return "REDUCE";
    case CallKind::newobj: return "NEWOBJ";
    case CallKind::newobj_ex: return "NEWOBJ_EX";
    case CallKind::inst: return "INST";
    case CallKind::obj: return "OBJ";
  }
  return "REDUCE";
}

bool is_blocklisted(std::string_view module, std::string_view name) {
  for (auto [m, n] : spellings(module, name)) {
    if (blocklist_reason(m, n)) return true;
  }
  return false;
}

bool is_builtin_data_global(std::string_view module, std::string_view name) {
  for (auto [m, n] : spellings(module, name)) {
    for (const NamedGlobal& global : data_globals) {
      if (global.module == m && global.name == n) return true;
    }
  }
  return false;
}

RiskAssessment assess_global(std::string_view module, std::string_view name) {
  for (auto [m, n] : spellings(module, name)) {
    if (auto reason = blocklist_reason(m, n)) return {Risk::dangerous, std::move(*reason)};
  }
  for (std::string_view part : split_dots(module)) {
    if (contains(dangerous_names, part)) {
      return {Risk::dangerous, "module path contains " + std::string(part)};
    }
  }
  const std::vector<std::string_view> path = split_dots(name);
  for (std::string_view part : path) {
    if (contains(dangerous_names, part)) {
      return {Risk::dangerous, "name " + std::string(part) + " runs code or opens files"};
    }
  }
  if (path.size() > 1) {
    for (std::string_view part : path) {
      if (is_dunder(part)) {
        return {Risk::dangerous, "attribute path through " + std::string(part)};
      }
    }
  }
  if (is_builtin_data_global(module, name)) return {Risk::safe, "builtin data constructor"};
  return {Risk::suspicious, "not a known data constructor"};
}

// --- LoadPolicy defaults -----------------------------------------------------------------------

namespace {

// The global a callable stands for: itself, or the global an EXT code was resolved to.
std::optional<std::pair<std::string_view, std::string_view>> callable_global(const Value& callable) {
  if (callable.kind() == Kind::global) return std::pair{callable.module(), callable.qualname()};
  if (callable.kind() == Kind::object && callable.object_form() == ObjectForm::ext) {
    Value target = callable.callable();
    if (target.kind() == Kind::global) return std::pair{target.module(), target.qualname()};
  }
  return std::nullopt;
}

std::string describe_callable(const Value& callable) {
  if (callable.kind() == Kind::object) {
    switch (callable.object_form()) {
      case ObjectForm::persid:
      case ObjectForm::binpersid:
        return "a persistent id";
      case ObjectForm::ext:
        return "an extension code";
      default:
        return "the result of another call";
    }
  }
  return "a value of type " + std::string(callable.type_name());
}

}  // namespace

PolicyDecision LoadPolicy::check_call(const Value& callable, CallKind kind, std::size_t offset) const {
  if (auto global = callable_global(callable)) return check_global(global->first, global->second, offset);
  return decide(PolicyVerdict::deny, std::string(call_kind_name(kind)) + " calls " +
                                         describe_callable(callable) + ", not a global");
}

PolicyDecision LoadPolicy::check_persistent_id(const Value&, std::size_t) const {
  return decide(PolicyVerdict::allow, {});
}

PolicyDecision LoadPolicy::check_extension(std::int32_t, std::size_t) const {
  return decide(PolicyVerdict::allow, {});
}

// --- SafeLoadPolicy ------------------------------------------------------------------------------

SafeLoadPolicy::SafeLoadPolicy(PolicyPreset preset)
    : preset_(preset),
      persistent_ids_(preset == PolicyPreset::inert ? PolicyVerdict::inert : PolicyVerdict::allow),
      extensions_(preset == PolicyPreset::inert ? PolicyVerdict::inert : PolicyVerdict::allow) {}

SafeLoadPolicy& SafeLoadPolicy::allow_global(std::string_view module, std::string_view name) {
  allowed_globals_.emplace(std::string(module), std::string(name));
  return *this;
}

SafeLoadPolicy& SafeLoadPolicy::allow_module(std::string_view module) {
  allowed_modules_.emplace(module);
  return *this;
}

SafeLoadPolicy& SafeLoadPolicy::deny_global(std::string_view module, std::string_view name) {
  denied_globals_.emplace(std::string(module), std::string(name));
  return *this;
}

SafeLoadPolicy& SafeLoadPolicy::set_rule(GlobalRule rule) {
  rule_ = std::move(rule);
  return *this;
}

SafeLoadPolicy& SafeLoadPolicy::set_persistent_ids(PolicyVerdict verdict) {
  persistent_ids_ = verdict;
  return *this;
}

SafeLoadPolicy& SafeLoadPolicy::set_extensions(PolicyVerdict verdict) {
  extensions_ = verdict;
  return *this;
}

PolicyDecision SafeLoadPolicy::check_global(std::string_view module, std::string_view name,
                                            std::size_t) const {
  // An allow for anything on the hard blocklist is never granted.
  auto guarded_allow = [&](std::string why) {
    for (auto [m, n] : spellings(module, name)) {
      if (auto reason = blocklist_reason(m, n)) return decide(PolicyVerdict::deny, std::move(*reason));
    }
    return decide(PolicyVerdict::allow, std::move(why));
  };
  auto guarded = [&](PolicyVerdict verdict, std::string why) {
    return verdict == PolicyVerdict::allow ? guarded_allow(std::move(why))
                                           : decide(verdict, std::move(why));
  };

  for (auto [m, n] : spellings(module, name)) {
    if (denied_globals_.contains(std::pair<std::string, std::string>(m, n))) {
      return decide(PolicyVerdict::deny, "denied by the caller");
    }
  }
  if (rule_) {
    if (std::optional<PolicyVerdict> verdict = rule_(module, name)) {
      return guarded(*verdict, "decided by the caller's rule");
    }
  }
  for (auto [m, n] : spellings(module, name)) {
    if (allowed_globals_.contains(std::pair<std::string, std::string>(m, n))) {
      return guarded_allow("allowed by the caller");
    }
    for (const std::string& allowed : allowed_modules_) {
      if (m == allowed || (m.starts_with(allowed) && m.size() > allowed.size() &&
                           m[allowed.size()] == '.')) {
        return guarded_allow("module allowed by the caller");
      }
    }
  }

  switch (preset_) {
    case PolicyPreset::inert:
      return decide(PolicyVerdict::inert, "kept inert");
    case PolicyPreset::deny_unknown: {
      RiskAssessment assessment = assess_global(module, name);
      if (assessment.risk == Risk::safe) return guarded_allow(std::move(assessment.reason));
      if (assessment.risk == Risk::dangerous) return decide(PolicyVerdict::deny, std::move(assessment.reason));
      return decide(PolicyVerdict::deny, "not on the builtin-data allowlist");
    }
    case PolicyPreset::deny_dangerous: {
      RiskAssessment assessment = assess_global(module, name);
      if (assessment.risk == Risk::dangerous) return decide(PolicyVerdict::deny, std::move(assessment.reason));
      return decide(PolicyVerdict::allow, std::move(assessment.reason));
    }
  }
  return decide(PolicyVerdict::deny, "unknown preset");
}

PolicyDecision SafeLoadPolicy::check_call(const Value& callable, CallKind kind,
                                          std::size_t offset) const {
  if (auto global = callable_global(callable)) return check_global(global->first, global->second, offset);
  if (preset_ == PolicyPreset::inert) return decide(PolicyVerdict::inert, "kept inert");
  return decide(PolicyVerdict::deny, std::string(call_kind_name(kind)) + " calls " +
                                         describe_callable(callable) + ", not a global");
}

PolicyDecision SafeLoadPolicy::check_persistent_id(const Value&, std::size_t) const {
  return decide(persistent_ids_, persistent_ids_ == PolicyVerdict::deny
                                     ? "persistent ids are not allowed by the policy"
                                     : "");
}

PolicyDecision SafeLoadPolicy::check_extension(std::int32_t, std::size_t) const {
  return decide(extensions_,
                extensions_ == PolicyVerdict::deny ? "extension codes are not allowed by the policy" : "");
}

// --- enforcement -------------------------------------------------------------------------------

namespace {

std::string at(std::size_t offset) { return " at offset " + std::to_string(offset); }

std::string because(const std::string& reason) {
  return reason.empty() ? std::string() : " (" + reason + ")";
}

std::string opcode_name(std::uint8_t opcode) {
  const OpcodeInfo* info = find_opcode(opcode);
  return info ? std::string(info->name) : "opcode";
}

}  // namespace

PolicyVerdict enforce_global(const LoadPolicy& policy, std::string_view module,
                             std::string_view name, std::size_t offset, std::uint8_t opcode) {
  PolicyDecision decision = policy.check_global(module, name, offset);
  if (decision.verdict != PolicyVerdict::deny) return decision.verdict;
  throw PolicyError("Unsupported global: " + opcode_name(opcode) + " " + std::string(module) + "." +
                        std::string(name) + at(offset) + " was not allowed by the policy" +
                        because(decision.reason),
                    std::string(module), std::string(name), offset, opcode);
}

PolicyVerdict enforce_call(const LoadPolicy& policy, const Value& callable, CallKind kind,
                           std::size_t offset, std::uint8_t opcode) {
  PolicyDecision decision = policy.check_call(callable, kind, offset);
  if (decision.verdict != PolicyVerdict::deny) return decision.verdict;
  std::string module, name;
  if (auto global = callable_global(callable)) {
    module = global->first;
    name = global->second;
  } else {
    name = describe_callable(callable);
  }
  const std::string target = module.empty() ? name : module + "." + name;
  throw PolicyError("Unsupported call: " + opcode_name(opcode) + " of " + target + at(offset) +
                        " was not allowed by the policy" + because(decision.reason),
                    module, name, offset, opcode);
}

PolicyVerdict enforce_persistent_id(const LoadPolicy& policy, const Value& pid, std::size_t offset,
                                    std::uint8_t opcode) {
  PolicyDecision decision = policy.check_persistent_id(pid, offset);
  if (decision.verdict != PolicyVerdict::deny) return decision.verdict;
  throw PolicyError("Unsupported persistent id: " + opcode_name(opcode) + at(offset) +
                        " was not allowed by the policy" + because(decision.reason),
                    "", "persistent id", offset, opcode);
}

PolicyVerdict enforce_extension(const LoadPolicy& policy, std::int32_t code, std::size_t offset,
                                std::uint8_t opcode) {
  PolicyDecision decision = policy.check_extension(code, offset);
  if (decision.verdict != PolicyVerdict::deny) return decision.verdict;
  throw PolicyError("Unsupported extension code " + std::to_string(code) + ": " +
                        opcode_name(opcode) + at(offset) + " was not allowed by the policy" +
                        because(decision.reason),
                    "", "extension code " + std::to_string(code), offset, opcode);
}

}  // namespace pickle
