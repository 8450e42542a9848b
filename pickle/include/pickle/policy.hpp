// Safe-load policy: what the reader may keep of the globals, calls, persistent ids and extension
// codes a pickle refers to.
//
// The reader never imports or runs anything. A policy decides, for every reference before the
// reader keeps it, one of:
//   allow  keep it as the reader does without a policy (builtin data constructors such as
//          builtins.set may be folded into the value they build);
//   inert  keep it as an inert node (Kind::global / Kind::object), never folded or resolved;
//   deny   refuse the pickle: the reader throws PolicyError naming module.name and the offset.
//
//   auto policy = std::make_shared<pickle::SafeLoadPolicy>(pickle::PolicyPreset::deny_unknown);
//   policy->allow_global("mypackage.models", "Point");
//   pickle::ReadOptions options;
//   options.policy = policy;
//   pickle::Value v = pickle::loads(bytes, options);   // throws PolicyError on os.system
//
// The presets:
//   inert         (the default) every reference is kept inert: the reader is data only.
//   deny_unknown  an allowlist of builtin-data globals in the spirit of PyTorch's weights_only
//                 loader (collections.OrderedDict, datetime, decimal, builtins.set, …); anything
//                 else is denied.
//   deny_dangerous  denies what the scanner rates dangerous (the hard blocklist and the other
//                 dangerous patterns), allows the rest.
// The hard blocklist (os, posix, nt, sys, subprocess, builtins.eval/exec/…, the union of what
// fickling and picklescan flag) is never allowed: an allowlist entry or a custom rule that would
// allow a blocklisted global is turned into a denial.
//
// assess_global() is the one classification both the policy presets and the scanner (scan.hpp) use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "pickle/errors.hpp"
#include "pickle/value.hpp"

namespace pickle {

// --- classification --------------------------------------------------------------------------

// How risky a reference is, from the point of view of someone who would load the pickle in Python.
enum class Risk : std::uint8_t {
  safe,        // a builtin data constructor (the deny_unknown allowlist)
  suspicious,  // not known to be harmful, not known to be data (a user class, a persistent id, …)
  dangerous,   // runs code, touches files, processes or the network, or escapes through attributes
};

std::string_view risk_name(Risk risk) noexcept;  // "safe", "suspicious", "dangerous"

struct RiskAssessment {
  Risk risk = Risk::suspicious;
  std::string reason;  // why, in a few words ("blocked module os", "builtin data constructor", …)
};

// Rates the global `module`.`name` (name may be a dotted qualified name, as protocol 4 allows).
// Python 2 names (__builtin__, copy_reg, …) are rated as the Python 3 names they load as.
RiskAssessment assess_global(std::string_view module, std::string_view name);

// True when module.name is on the hard blocklist (directly, through a parent module, or through an
// attribute path that reaches a blocked module).
bool is_blocklisted(std::string_view module, std::string_view name);

// True when module.name is on the builtin-data allowlist of the deny_unknown preset.
bool is_builtin_data_global(std::string_view module, std::string_view name);

// --- the policy interface the reader calls ---------------------------------------------------

enum class PolicyVerdict : std::uint8_t { allow, deny, inert };

std::string_view verdict_name(PolicyVerdict verdict) noexcept;  // "allow", "deny", "inert"

struct PolicyDecision {
  PolicyVerdict verdict = PolicyVerdict::inert;
  std::string reason;  // shown in the PolicyError message on deny
};

// What a call (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ) is made on.
enum class CallKind : std::uint8_t { reduce, newobj, newobj_ex, inst, obj };

std::string_view call_kind_name(CallKind kind) noexcept;  // the opcode name: "REDUCE", …

// The reader calls these for every reference, before it keeps it. `offset` is the offset of the
// opcode. Implementations must not throw anything but pickle::Error subclasses.
class LoadPolicy {
 public:
  virtual ~LoadPolicy() = default;
  // Every GLOBAL, STACK_GLOBAL and INST reference, and every global an EXT code resolves to.
  virtual PolicyDecision check_global(std::string_view module, std::string_view name,
                                      std::size_t offset) const = 0;
  // Every call. `callable` is the value being called: a Kind::global for the ordinary case,
  // anything else when a pickle calls the result of another call, a persistent id, … The default
  // rates a global callable with check_global and denies (or, for the inert preset, keeps inert)
  // calls on anything else.
  virtual PolicyDecision check_call(const Value& callable, CallKind kind, std::size_t offset) const;
  // Every PERSID / BINPERSID, with the persistent id.
  virtual PolicyDecision check_persistent_id(const Value& pid, std::size_t offset) const;
  // Every EXT1 / EXT2 / EXT4, with the code (the global it resolves to then goes to check_global).
  virtual PolicyDecision check_extension(std::int32_t code, std::size_t offset) const;
};

enum class PolicyPreset : std::uint8_t { inert, deny_unknown, deny_dangerous };

// The configurable policy with the three presets and the hard blocklist.
class SafeLoadPolicy : public LoadPolicy {
 public:
  // A find_class-style rule consulted before the preset: return a verdict to decide, nullopt to
  // let the preset decide. An allow for a blocklisted global still becomes a deny.
  using GlobalRule =
      std::function<std::optional<PolicyVerdict>(std::string_view module, std::string_view name)>;

  explicit SafeLoadPolicy(PolicyPreset preset = PolicyPreset::inert);

  PolicyPreset preset() const noexcept { return preset_; }

  // Allow one more global (like torch.serialization.add_safe_globals). Ignored for blocklisted
  // globals, which stay denied.
  SafeLoadPolicy& allow_global(std::string_view module, std::string_view name);
  // Allow every global of a module (and of its submodules), blocklist excepted.
  SafeLoadPolicy& allow_module(std::string_view module);
  // Deny one more global, whatever the preset.
  SafeLoadPolicy& deny_global(std::string_view module, std::string_view name);
  SafeLoadPolicy& set_rule(GlobalRule rule);
  // Verdicts for persistent ids and extension codes. Defaults: inert for the inert preset, allow
  // (the caller's persistent_load hook / extension registry decides) for the others.
  SafeLoadPolicy& set_persistent_ids(PolicyVerdict verdict);
  SafeLoadPolicy& set_extensions(PolicyVerdict verdict);

  PolicyDecision check_global(std::string_view module, std::string_view name,
                              std::size_t offset) const override;
  PolicyDecision check_call(const Value& callable, CallKind kind, std::size_t offset) const override;
  PolicyDecision check_persistent_id(const Value& pid, std::size_t offset) const override;
  PolicyDecision check_extension(std::int32_t code, std::size_t offset) const override;

 private:
  PolicyPreset preset_;
  std::set<std::pair<std::string, std::string>, std::less<>> allowed_globals_;
  std::set<std::string, std::less<>> allowed_modules_;
  std::set<std::pair<std::string, std::string>, std::less<>> denied_globals_;
  GlobalRule rule_;
  PolicyVerdict persistent_ids_;
  PolicyVerdict extensions_;
};

// --- what the reader throws on deny ----------------------------------------------------------

// A policy refused a reference. Carries what was refused; the message names it and the offset:
//   "Unsupported global: GLOBAL os.system at offset 2 was not allowed by the policy (blocked
//    module os)"
class PolicyError : public UnpicklingError {
 public:
  PolicyError(const std::string& message, std::string module, std::string name, std::size_t offset,
              std::optional<std::uint8_t> opcode)
      : UnpicklingError(PyExc::UnpicklingError, message, offset, opcode),
        module_(std::move(module)),
        name_(std::move(name)) {}
  // The refused global (for a call on a non-global, a persistent id or an extension code: empty
  // module and a description as the name, e.g. "persistent id", "extension code 7").
  const std::string& module() const noexcept { return module_; }
  const std::string& name() const noexcept { return name_; }

 private:
  std::string module_;
  std::string name_;
};

// The calls the reader makes. Each asks the policy and returns allow or inert; on deny it throws
// PolicyError for the opcode at `offset` (opcode = the opcode byte).
PolicyVerdict enforce_global(const LoadPolicy& policy, std::string_view module,
                             std::string_view name, std::size_t offset, std::uint8_t opcode);
PolicyVerdict enforce_call(const LoadPolicy& policy, const Value& callable, CallKind kind,
                           std::size_t offset, std::uint8_t opcode);
PolicyVerdict enforce_persistent_id(const LoadPolicy& policy, const Value& pid, std::size_t offset,
                                    std::uint8_t opcode);
PolicyVerdict enforce_extension(const LoadPolicy& policy, std::int32_t code, std::size_t offset,
                                std::uint8_t opcode);

}  // namespace pickle
