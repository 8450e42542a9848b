// pickletool cache: inspect and edit a PyTorch Inductor on-disk cache directory by hand.
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "pickle/cache.hpp"
#include "pickle/json.hpp"
#include "pickle/literal.hpp"
#include "pickle/repr.hpp"

namespace {

using namespace pickletool;
namespace cache = pickle::cache;

// A miss (get) or an absent entry (rm).
constexpr int exit_missing = 3;

// What ls prints of one value at most; a cache value can be large.
constexpr std::size_t ls_repr_max_size = 4096;

cache::OnDiskCacheOptions cache_options(const Arguments& args) {
  cache::OnDiskCacheOptions options;
  options.protocol = args.integer("protocol", cache::default_protocol);
  if (options.protocol < 0 || options.protocol > 5) {
    throw UsageError("--protocol must be 0 to 5 (4: CPython 3.8-3.13 producers, 5: 3.14)");
  }
  if (auto timeout = args.value("timeout")) {
    try {
      options.lock_timeout = std::chrono::duration<double>(std::stod(*timeout));
    } catch (const std::exception&) {
      throw UsageError("--timeout needs a number of seconds, got '" + *timeout + "'");
    }
  }
  options.lock = !args.has("no-lock");
  options.stale_entries = args.has("keep-stale") ? cache::StaleEntries::keep : cache::StaleEntries::remove;
  if (args.has("inert")) {
    options.policy = std::make_shared<pickle::SafeLoadPolicy>(pickle::PolicyPreset::inert);
  }
  return options;
}

// The entry name a KEY argument stands for: the name itself with --name, else the key literal's.
std::string name_argument(const Arguments& args, const std::string& text, int protocol) {
  if (args.has("name")) {
    if (!cache::is_entry_name(text)) throw UsageError("--name needs 32 lowercase hex digits, got '" + text + "'");
    return text;
  }
  return cache::entry_name(pickle::parse_literal(text), protocol);
}

// The value as the command shows it: repr, or with --json pickle::to_json.
std::string show(const Arguments& args, const pickle::Value& value, const pickle::ReprOptions& repr_options) {
  if (args.has("json")) {
    pickle::JsonOptions json_options;
    json_options.max_output_bytes = repr_options.max_size;
    return pickle::to_json(value, json_options);
  }
  return pickle::repr(value, repr_options);
}

// Entries in a directory another user controls could be planted; say so, and go on (the values
// are still read with the safe-load policy).
void warn_if_untrusted(const std::filesystem::path& dir) {
  if (auto reason = cache::untrusted_directory_reason(dir)) {
    std::cerr << "pickletool: warning: untrusted cache directory: " << *reason << '\n';
  }
}

std::string short_class_name(const cache::PyException& error) {
  std::string_view name = error.python_class_name();
  if (auto dot = name.rfind('.'); dot != std::string_view::npos) name.remove_prefix(dot + 1);
  return std::string(name);
}

int run_cache(const std::vector<std::string>& argv) {
  if (argv.empty()) throw UsageError("expected ls, get, put or rm");
  const std::string action = argv[0];
  Arguments args(std::vector<std::string>(argv.begin() + 1, argv.end()),
                 {"name", "no-lock", "keep-stale", "inert", "json"}, {"protocol", "timeout"});
  const auto& positional = args.positional();
  auto expect = [&](std::size_t count, const char* what) {
    if (positional.size() != count) throw UsageError(std::string("cache ") + action + " expects " + what);
  };
  try {
    if (action == "ls") {
      expect(1, "DIR");
      auto disk = cache::OnDiskCache::in_directory(positional[0], cache_options(args));
      warn_if_untrusted(disk.cache_dir());
      pickle::ReprOptions repr_options;
      repr_options.max_size = ls_repr_max_size;
      for (const cache::EntryInfo& entry : disk.scan()) {
        std::cout << entry.name << '\t' << cache::entry_state_name(entry.state) << '\t'
                  << entry.file_size;
        if (entry.state == cache::EntryState::valid) {
          std::cout << '\t';
          try {
            cache::RawEntry raw = disk.read_entry(entry.name);
            if (raw.state == cache::EntryState::valid) {
              std::cout << show(args, disk.load_value(raw.payload), repr_options);
            }
          } catch (const cache::ValueUnPicklingError& error) {
            std::string reason = "unreadable";
            try {
              error.rethrow_cause();
            } catch (const pickle::Error& cause) {
              reason = cause.what();
            } catch (...) {
            }
            std::cout << "<unreadable: " << reason << '>';
          } catch (const pickle::Error&) {
            std::cout << "<longer than " << ls_repr_max_size << " characters>";
          }
        }
        std::cout << '\n';
      }
      return exit_ok;
    }
    if (action == "get") {
      expect(2, "DIR KEY");
      auto disk = cache::OnDiskCache::in_directory(positional[0], cache_options(args));
      const std::string name = name_argument(args, positional[1], disk.options().protocol);
      warn_if_untrusted(disk.cache_dir());
      std::optional<pickle::Value> value = disk.get_entry(name);
      if (!value) {
        std::cerr << "pickletool: cache miss: " << name << '\n';
        return exit_missing;
      }
      std::cout << show(args, *value, pickle::ReprOptions{}) << '\n';
      return exit_ok;
    }
    if (action == "put") {
      expect(3, "DIR KEY VALUE");
      auto disk = cache::OnDiskCache::in_directory(positional[0], cache_options(args));
      const std::string name = name_argument(args, positional[1], disk.options().protocol);
      const pickle::Value value = pickle::parse_literal(positional[2]);
      const bool inserted = args.has("name")
                                ? disk.insert_pickled(name, cache::pickle_value(value, disk.options().protocol))
                                : disk.insert(pickle::parse_literal(positional[1]), value);
      std::cout << (inserted ? "inserted " : "exists ") << name << '\n';
      return exit_ok;
    }
    if (action == "rm") {
      expect(2, "DIR KEY");
      auto disk = cache::OnDiskCache::in_directory(positional[0], cache_options(args));
      const std::string name = name_argument(args, positional[1], disk.options().protocol);
      if (!disk.remove_entry(name)) {
        std::cerr << "pickletool: no entry " << name << '\n';
        return exit_missing;
      }
      std::cout << "removed " << name << '\n';
      return exit_ok;
    }
  } catch (const cache::PyException& error) {
    std::cerr << "pickletool: " << short_class_name(error) << ": " << error.message() << '\n';
    return exit_malformed;
  }
  throw UsageError("unknown cache action '" + action + "' (ls, get, put, rm)");
}

const CommandRegistration registration{Command{
    "cache",
    "cache ls|get|put|rm DIR [KEY [VALUE]] [--name] [--protocol N] [--timeout S] [--no-lock] "
    "[--keep-stale] [--inert] [--json]",
    "Reads and writes a PyTorch Inductor on-disk cache directory (<tmp>/torchinductor_<user>/cache/\n"
    "<sub_dir>): files named by the first 32 hex digits of sha256(pickle.dumps(key)), holding a\n"
    "4-byte version header and pickle.dumps(value). Python's dir.lock is taken as filelock does.\n"
    "\n"
    "  ls DIR              one line per entry: NAME, STATE (valid, wrong-header, empty-payload,\n"
    "                      not-a-file), SIZE and, for valid entries, the value's repr\n"
    "  get DIR KEY         prints the value's repr; exit 3 on a miss\n"
    "  put DIR KEY VALUE   inserts unless the key is there (first writer wins): 'inserted NAME' or\n"
    "                      'exists NAME'\n"
    "  rm DIR KEY          removes the entry; exit 3 when there is none\n"
    "\n"
    "KEY and VALUE are Python literals (\"(3, 'x')\"); with --name, KEY is the entry's file name.\n"
    "  --protocol N   the producer's pickle protocol: 4 (CPython 3.8-3.13, default) or 5 (3.14)\n"
    "  --timeout S    seconds to wait for dir.lock (default 60)\n"
    "  --no-lock      do not take dir.lock\n"
    "  --keep-stale   get leaves an entry with a wrong header in place (Python removes it)\n"
    "  --inert        read values with the inert policy instead of builtin data + CacheEntry only\n"
    "  --json         show values as JSON (pickle/json.hpp's mapping) instead of repr\n"
    "Exit status: 0 success, 1 unreadable value or cache error (lock timeout, permission), 2 usage,\n"
    "3 miss / no such entry.\n",
    run_cache,
}};

}  // namespace
