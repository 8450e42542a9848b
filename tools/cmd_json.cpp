// pickletool json / from-json: a JSON view of a pickle, and the pickle of a JSON document (the
// mapping is pickle/json.hpp's, described in pickle/JSON.md).
#include <iostream>
#include <string>
#include <vector>

#include "pickle/json.hpp"
#include "pickle/reader.hpp"
#include "pickle/writer.hpp"

#include "cli.hpp"

namespace {

using namespace pickletool;

// As for repr: a small pickle can reference one long str a million times.
constexpr std::size_t default_json_max_size = std::size_t(256) << 20;

int command_json(const std::vector<std::string>& argv) {
  Arguments args(argv, {"no-fix-imports"}, {"indent", "encoding", "max-size"});
  const std::string data = read_input(args.only_positional("FILE"));
  pickle::JsonOptions options;
  options.indent = args.integer("indent", -1);
  if (args.has("indent") && options.indent < 0) throw UsageError("--indent must be 0 or more");
  options.max_output_bytes = default_json_max_size;
  if (args.has("max-size")) {
    const int max_size = args.integer("max-size", 0);
    if (max_size < 0) throw UsageError("--max-size must be 0 or more");
    options.max_output_bytes = static_cast<std::size_t>(max_size);
  }
  std::string text = pickle::to_json(pickle::loads(data, read_options(args)), options);
  text += '\n';
  write_output("-", text);
  return exit_ok;
}

int command_from_json(const std::vector<std::string>& argv) {
  Arguments args(argv, {}, {"protocol", "target"});
  if (args.positional().size() != 2) throw UsageError("expected FILE and OUT");
  pickle::WriteOptions options;
  if (auto target = args.value("target")) {
    int minor = -1;
    if (target->size() > 2 && target->rfind("3.", 0) == 0 &&
        target->find_first_not_of("0123456789", 2) == std::string::npos && target->size() <= 4) {
      minor = std::stoi(target->substr(2));
    }
    if (minor < 8 || minor > 14) throw UsageError("--target must be 3.8 … 3.14");
    options.target_minor = minor;
  }
  options.protocol = args.integer("protocol", pickle::default_protocol(options.target_minor));
  if (options.protocol < 0 || options.protocol > 5) throw UsageError("--protocol must be 0 … 5");
  // The value is built as json.loads builds it (fresh objects, shared equal dict keys), so it is
  // written with CPython's identities for fresh objects: '' and 1-character strs are shared.
  options.identities = pickle::Identities::cpython;
  const pickle::Value value = pickle::from_json(read_input(args.positional()[0]));
  write_output(args.positional()[1], pickle::dumps(value, options));
  return exit_ok;
}

const CommandRegistration json_registration({
    "json",
    "json [--indent N] [--max-size BYTES] [--encoding E] [--no-fix-imports] FILE",
    "Print a JSON view of the pickle (mapping: pickle/JSON.md). Shared and cyclic containers are\n"
    "written once as {\"$id\": n, \"$value\": ...} and then as {\"$ref\": n}. Output beyond\n"
    "--max-size bytes (default 256 MiB) is refused.\n",
    command_json,
});

const CommandRegistration from_json_registration({
    "from-json",
    "from-json [--protocol N] [--target 3.X] FILE OUT",
    "Write the pickle of a JSON document, as pickle.dumps(json.loads(text), N) would for plain\n"
    "JSON; the tagged forms that `json` prints ($tuple, $bytes, $ref, ...) are read back.\n",
    command_from_json,
});

}  // namespace
