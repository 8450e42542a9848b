// The safe-load policy (pickle/policy.hpp): the risk of globals, the three presets, the hard
// blocklist that no allowlist overrides, and the PolicyError the reader throws on a denial.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "pickle/opcodes.hpp"
#include "pickle/policy.hpp"
#include "pickle/reader.hpp"

namespace {

using pickle::PolicyPreset;
using pickle::PolicyVerdict;
using pickle::Risk;

struct GlobalRow {
  const char* module;
  const char* name;
  Risk risk;
};

// The spec of the classification, one row per rule it has to get right.
const std::vector<GlobalRow> global_rows = {
    // Builtin data constructors CPython itself writes for builtin values.
    {"builtins", "set", Risk::safe},
    {"__builtin__", "set", Risk::safe},  // Python 2 name
    {"__builtin__", "long", Risk::safe},  // Python 2 name mapped to builtins.int
    {"builtins", "bytearray", Risk::safe},
    {"builtins", "complex", Risk::safe},
    {"_codecs", "encode", Risk::safe},
    {"copyreg", "_reconstructor", Risk::safe},
    {"copy_reg", "_reconstructor", Risk::safe},
    {"collections", "OrderedDict", Risk::safe},
    {"datetime", "datetime", Risk::safe},
    {"decimal", "Decimal", Risk::safe},
    {"torch._utils", "_rebuild_tensor_v2", Risk::safe},
    {"numpy.core.multiarray", "_reconstruct", Risk::safe},
    {"exceptions", "ValueError", Risk::safe},
    // Unknown: user classes, harmless-looking library functions.
    {"__main__", "Point", Risk::suspicious},
    {"mypackage.models", "User", Risk::suspicious},
    {"collections", "namedtuple", Risk::suspicious},
    {"builtins", "type", Risk::suspicious},
    {"http.cookies", "SimpleCookie", Risk::suspicious},
    {"urllib.parse", "SplitResult", Risk::suspicious},
    // The hard blocklist: whole modules, their submodules, Python 2 spellings.
    {"os", "system", Risk::dangerous},
    {"os.path", "join", Risk::dangerous},
    {"posix", "system", Risk::dangerous},
    {"nt", "system", Risk::dangerous},
    {"sys", "modules", Risk::dangerous},
    {"subprocess", "Popen", Risk::dangerous},
    {"_posixsubprocess", "fork_exec", Risk::dangerous},
    {"socket", "socket", Risk::dangerous},
    {"shutil", "rmtree", Risk::dangerous},
    {"runpy", "_run_code", Risk::dangerous},
    {"pty", "spawn", Risk::dangerous},
    {"site", "execsitecustomize", Risk::dangerous},
    {"atexit", "_run_exitfuncs", Risk::dangerous},
    {"marshal", "loads", Risk::dangerous},
    {"types", "CodeType", Risk::dangerous},
    {"cProfile", "runctx", Risk::dangerous},
    {"importlib", "import_module", Risk::dangerous},
    {"pickle", "loads", Risk::dangerous},
    {"cPickle", "loads", Risk::dangerous},
    {"ctypes", "CDLL", Risk::dangerous},
    {"httplib", "HTTPConnection", Risk::dangerous},  // Python 2 name of http.client
    {"http.client", "HTTPConnection", Risk::dangerous},
    {"urllib", "urlretrieve", Risk::dangerous},  // Python 2 urllib
    {"urllib.request", "urlopen", Risk::dangerous},
    {"torch.hub", "load", Risk::dangerous},
    // Single names.
    {"builtins", "eval", Risk::dangerous},
    {"builtins", "exec", Risk::dangerous},
    {"builtins", "compile", Risk::dangerous},
    {"builtins", "open", Risk::dangerous},
    {"builtins", "getattr", Risk::dangerous},
    {"builtins", "__import__", Risk::dangerous},
    {"__builtin__", "eval", Risk::dangerous},
    {"__builtin__", "apply", Risk::dangerous},
    {"operator", "attrgetter", Risk::dangerous},
    {"_operator", "methodcaller", Risk::dangerous},
    {"functools", "partial", Risk::dangerous},
    {"torch", "load", Risk::dangerous},
    {"numpy", "load", Risk::dangerous},
    {"io", "open", Risk::dangerous},
    // Names that run code whatever module they are in, and attribute paths that escape.
    {"somelib", "system", Risk::dangerous},
    {"somelib.util", "run_path", Risk::dangerous},
    {"somelib", "Popen", Risk::dangerous},
    {"posixpath", "os", Risk::dangerous},
    {"posixpath", "os.system", Risk::dangerous},
    {"builtins", "object.__subclasses__", Risk::dangerous},
    {"collections", "OrderedDict.__init__.__globals__", Risk::dangerous},
    {"builtins", "set.__init__", Risk::dangerous},
};

TEST(PolicyRisk, Classification) {
  for (const GlobalRow& row : global_rows) {
    SCOPED_TRACE(std::string(row.module) + "." + row.name);
    pickle::RiskAssessment assessment = pickle::assess_global(row.module, row.name);
    EXPECT_EQ(assessment.risk, row.risk) << assessment.reason;
    EXPECT_FALSE(assessment.reason.empty());
    EXPECT_EQ(pickle::is_builtin_data_global(row.module, row.name), row.risk == Risk::safe);
    if (row.risk != Risk::dangerous) {
      EXPECT_FALSE(pickle::is_blocklisted(row.module, row.name));
    }
  }
}

TEST(PolicyRisk, BlocklistNamesTheReason) {
  EXPECT_EQ(pickle::assess_global("os.path", "join").reason, "blocked module os");
  EXPECT_EQ(pickle::assess_global("builtins", "eval").reason, "blocked builtin eval");
  EXPECT_EQ(pickle::assess_global("functools", "partial").reason, "blocked global functools.partial");
}

PolicyVerdict verdict_of(const pickle::LoadPolicy& policy, const char* module, const char* name) {
  return policy.check_global(module, name, 0).verdict;
}

TEST(PolicyPresets, InertKeepsEverythingInert) {
  pickle::SafeLoadPolicy policy;  // the default preset
  EXPECT_EQ(policy.preset(), PolicyPreset::inert);
  for (const GlobalRow& row : global_rows) {
    EXPECT_EQ(verdict_of(policy, row.module, row.name), PolicyVerdict::inert) << row.module << "." << row.name;
  }
  EXPECT_EQ(policy.check_call(pickle::Value::global("os", "system"), pickle::CallKind::reduce, 0).verdict,
            PolicyVerdict::inert);
  EXPECT_EQ(policy.check_call(pickle::Value(1), pickle::CallKind::reduce, 0).verdict, PolicyVerdict::inert);
  EXPECT_EQ(policy.check_persistent_id(pickle::Value("x"), 0).verdict, PolicyVerdict::inert);
  EXPECT_EQ(policy.check_extension(7, 0).verdict, PolicyVerdict::inert);
}

TEST(PolicyPresets, DenyUnknownAllowsOnlyBuiltinData) {
  pickle::SafeLoadPolicy policy(PolicyPreset::deny_unknown);
  for (const GlobalRow& row : global_rows) {
    SCOPED_TRACE(std::string(row.module) + "." + row.name);
    EXPECT_EQ(verdict_of(policy, row.module, row.name),
              row.risk == Risk::safe ? PolicyVerdict::allow : PolicyVerdict::deny);
  }
  // Calls: on an allowed global, allowed; on anything computed at load time, denied.
  EXPECT_EQ(policy.check_call(pickle::Value::global("collections", "OrderedDict"), pickle::CallKind::reduce, 0).verdict,
            PolicyVerdict::allow);
  EXPECT_EQ(policy.check_call(pickle::Value::global("os", "system"), pickle::CallKind::reduce, 0).verdict,
            PolicyVerdict::deny);
  pickle::Value made = pickle::Value::object(pickle::ObjectForm::reduce, pickle::Value::global("builtins", "getattr"),
                                             pickle::Value::tuple());
  pickle::PolicyDecision on_result = policy.check_call(made, pickle::CallKind::reduce, 0);
  EXPECT_EQ(on_result.verdict, PolicyVerdict::deny);
  EXPECT_NE(on_result.reason.find("the result of another call"), std::string::npos) << on_result.reason;
  // Persistent ids and extensions are the caller's hooks: allowed unless configured otherwise.
  EXPECT_EQ(policy.check_persistent_id(pickle::Value("x"), 0).verdict, PolicyVerdict::allow);
  EXPECT_EQ(policy.check_extension(7, 0).verdict, PolicyVerdict::allow);
  policy.set_persistent_ids(PolicyVerdict::deny).set_extensions(PolicyVerdict::inert);
  EXPECT_EQ(policy.check_persistent_id(pickle::Value("x"), 0).verdict, PolicyVerdict::deny);
  EXPECT_EQ(policy.check_extension(7, 0).verdict, PolicyVerdict::inert);
}

TEST(PolicyPresets, DenyDangerousDeniesOnlyTheDangerous) {
  pickle::SafeLoadPolicy policy(PolicyPreset::deny_dangerous);
  for (const GlobalRow& row : global_rows) {
    SCOPED_TRACE(std::string(row.module) + "." + row.name);
    EXPECT_EQ(verdict_of(policy, row.module, row.name),
              row.risk == Risk::dangerous ? PolicyVerdict::deny : PolicyVerdict::allow);
  }
}

TEST(PolicyBlocklist, NoAllowlistOverridesIt) {
  for (PolicyPreset preset : {PolicyPreset::inert, PolicyPreset::deny_unknown, PolicyPreset::deny_dangerous}) {
    pickle::SafeLoadPolicy policy(preset);
    policy.allow_global("os", "system").allow_module("subprocess").allow_global("builtins", "eval");
    policy.allow_global("mypackage", "Point").allow_module("mypackage.models");
    policy.set_rule([](std::string_view module, std::string_view) -> std::optional<PolicyVerdict> {
      if (module == "posix" || module == "json") return PolicyVerdict::allow;
      return std::nullopt;
    });
    EXPECT_EQ(verdict_of(policy, "os", "system"), PolicyVerdict::deny);
    EXPECT_EQ(verdict_of(policy, "subprocess", "Popen"), PolicyVerdict::deny);
    EXPECT_EQ(verdict_of(policy, "builtins", "eval"), PolicyVerdict::deny);
    EXPECT_EQ(verdict_of(policy, "__builtin__", "eval"), PolicyVerdict::deny);
    EXPECT_EQ(verdict_of(policy, "posix", "system"), PolicyVerdict::deny);
    // What the caller allowed and is not blocklisted is allowed in every preset.
    EXPECT_EQ(verdict_of(policy, "mypackage", "Point"), PolicyVerdict::allow);
    EXPECT_EQ(verdict_of(policy, "mypackage.models.user", "User"), PolicyVerdict::allow);
    EXPECT_EQ(verdict_of(policy, "json", "JSONDecoder"), PolicyVerdict::allow);
  }
}

TEST(PolicyBlocklist, CallerDenialsAndRules) {
  pickle::SafeLoadPolicy policy(PolicyPreset::deny_dangerous);
  policy.deny_global("collections", "OrderedDict");
  EXPECT_EQ(verdict_of(policy, "collections", "OrderedDict"), PolicyVerdict::deny);
  EXPECT_EQ(verdict_of(policy, "collections", "Counter"), PolicyVerdict::allow);
  policy.set_rule([](std::string_view module, std::string_view) -> std::optional<PolicyVerdict> {
    if (module == "__main__") return PolicyVerdict::inert;
    return std::nullopt;
  });
  EXPECT_EQ(verdict_of(policy, "__main__", "Point"), PolicyVerdict::inert);
}

TEST(PolicyEnforce, DenialThrowsPolicyErrorNamingGlobalAndOffset) {
  pickle::SafeLoadPolicy policy(PolicyPreset::deny_unknown);
  try {
    pickle::enforce_global(policy, "os", "system", 17, pickle::byte(pickle::Op::STACK_GLOBAL));
    FAIL() << "no PolicyError";
  } catch (const pickle::PolicyError& error) {
    EXPECT_EQ(error.module(), "os");
    EXPECT_EQ(error.name(), "system");
    EXPECT_EQ(error.offset(), 17u);
    EXPECT_EQ(error.opcode(), pickle::byte(pickle::Op::STACK_GLOBAL));
    EXPECT_EQ(error.python_class(), pickle::PyExc::UnpicklingError);
    EXPECT_EQ(std::string(error.what()),
              "Unsupported global: STACK_GLOBAL os.system at offset 17 was not allowed by the policy "
              "(blocked module os)");
  }
  // It is an UnpicklingError, so callers catching the reader's errors catch it too.
  EXPECT_THROW(pickle::enforce_global(policy, "__main__", "X", 0, pickle::byte(pickle::Op::GLOBAL)),
               pickle::UnpicklingError);
  EXPECT_EQ(pickle::enforce_global(policy, "datetime", "date", 0, pickle::byte(pickle::Op::GLOBAL)),
            PolicyVerdict::allow);

  try {
    pickle::enforce_call(policy, pickle::Value::global("builtins", "getattr"), pickle::CallKind::reduce, 40,
                         pickle::byte(pickle::Op::REDUCE));
    FAIL() << "no PolicyError";
  } catch (const pickle::PolicyError& error) {
    EXPECT_EQ(error.module(), "builtins");
    EXPECT_EQ(error.name(), "getattr");
    EXPECT_EQ(error.offset(), 40u);
    EXPECT_NE(std::string(error.what()).find("REDUCE of builtins.getattr at offset 40"), std::string::npos)
        << error.what();
  }
  policy.set_persistent_ids(PolicyVerdict::deny).set_extensions(PolicyVerdict::deny);
  EXPECT_THROW(pickle::enforce_persistent_id(policy, pickle::Value("x"), 3, pickle::byte(pickle::Op::PERSID)),
               pickle::PolicyError);
  try {
    pickle::enforce_extension(policy, 7, 5, pickle::byte(pickle::Op::EXT1));
    FAIL() << "no PolicyError";
  } catch (const pickle::PolicyError& error) {
    EXPECT_EQ(error.name(), "extension code 7");
    EXPECT_EQ(error.offset(), 5u);
  }
}

TEST(PolicyEnforce, ReadOptionsCarryAPolicy) {
  pickle::ReadOptions options;
  EXPECT_EQ(options.policy, nullptr);
  options.policy = std::make_shared<pickle::SafeLoadPolicy>(PolicyPreset::deny_unknown);
  EXPECT_EQ(options.policy->check_global("os", "system", 0).verdict, PolicyVerdict::deny);
}

// Through the reader: ReadOptions::policy is consulted for every global and call.
TEST(PolicyThroughReader, DenyUnknownRefusesWithOffsetAndName) {
  pickle::ReadOptions options;
  options.policy = std::make_shared<pickle::SafeLoadPolicy>(PolicyPreset::deny_unknown);
  struct Row {
    std::string data;
    std::size_t offset;
    std::string module, name;
  };
  const std::vector<Row> rows = {
      {"cos\nsystem\n(Vid\ntR.", 0, "os", "system"},
      {"\x80\x04\x8c\x02os\x8c\x06system\x93.", 14, "os", "system"},
      {"\x80\x02" "c__builtin__\neval\nN\x85R.", 2, "builtins", "eval"},  // mapped Python 2 name
      {"\x80\x02" "cdatetime\ndate\n)Rc__main__\nPoint\n.", 19, "__main__", "Point"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.data);
    try {
      pickle::loads(row.data, options);
      ADD_FAILURE() << "loaded";
    } catch (const pickle::PolicyError& error) {
      EXPECT_EQ(error.offset(), row.offset);
      EXPECT_EQ(error.module(), row.module);
      EXPECT_EQ(error.name(), row.name);
      EXPECT_NE(std::string(error.what()).find(row.module + "." + row.name), std::string::npos);
    }
  }
  // Builtin data loads.
  EXPECT_NO_THROW(pickle::loads("\x80\x02" "ccollections\nOrderedDict\n)R.", options));
}

TEST(PolicyThroughReader, InertKeepsBuiltinReductionsUnfolded) {
  const std::string set_pickle = "\x80\x02" "c__builtin__\nset\n]K\x01" "a\x85R.";
  EXPECT_EQ(pickle::loads(set_pickle).kind(), pickle::Kind::set);  // no policy: folded, like Python
  pickle::ReadOptions inert;
  inert.policy = std::make_shared<pickle::SafeLoadPolicy>(PolicyPreset::inert);
  EXPECT_EQ(pickle::loads(set_pickle, inert).kind(), pickle::Kind::object);
  pickle::ReadOptions dangerous_only;
  dangerous_only.policy = std::make_shared<pickle::SafeLoadPolicy>(PolicyPreset::deny_dangerous);
  EXPECT_EQ(pickle::loads(set_pickle, dangerous_only).kind(), pickle::Kind::set);
  // The inert preset never refuses: os.system is data.
  EXPECT_EQ(pickle::loads("cos\nsystem\n(Vid\ntR.", inert).kind(), pickle::Kind::object);
  EXPECT_THROW(pickle::loads("cos\nsystem\n(Vid\ntR.", dangerous_only), pickle::PolicyError);
}

}  // namespace
