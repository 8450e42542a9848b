// The pickletool command-line contract: commands, --help, exit statuses and the one-line error.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

namespace {

struct ToolRun {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

std::string env_or_skip(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string temp_path(const std::string& stem) {
  return ::testing::TempDir() + "/cli_test_" + stem + "_" + std::to_string(::getpid());
}

// Runs pickletool with `args`, feeding `input` on standard input.
ToolRun pickletool(const std::vector<std::string>& args, const std::string& input = "") {
  const std::string tool = env_or_skip("PICKLETOOL");
  const std::string in_path = temp_path("in"), out_path = temp_path("out"),
                    err_path = temp_path("err");
  std::ofstream(in_path, std::ios::binary) << input;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!std::freopen(in_path.c_str(), "rb", stdin) ||
        !std::freopen(out_path.c_str(), "wb", stdout) ||
        !std::freopen(err_path.c_str(), "wb", stderr)) {
      ::_exit(127);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(tool.c_str()));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(tool.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ToolRun run;
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  run.out = slurp(out_path);
  run.err = slurp(err_path);
  std::remove(in_path.c_str());
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return run;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env_or_skip("PICKLETOOL").empty()) GTEST_SKIP() << "PICKLETOOL is not set";
    data_ = env_or_skip("PICKLE_TEST_DATA") + "/../examples/";
  }
  std::string data_;
};

const std::regex one_line_error(
    R"(pickletool: [A-Za-z]+Error at offset [0-9]+ \([A-Z_0-9a-z ]+\): [^\n]*\n)");

TEST_F(Cli, ReprOfTheSampleIsPythonsRepr) {
  ToolRun run = pickletool({"repr", data_ + "sample.pkl"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, slurp(data_ + "sample.repr"));
}

TEST_F(Cli, DisOfTheSampleIsPickletoolsDis) {
  ToolRun run = pickletool({"dis", data_ + "sample.pkl"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, slurp(data_ + "sample.dis"));
}

TEST_F(Cli, DashReadsStandardInput) {
  ToolRun run = pickletool({"repr", "-"}, slurp(data_ + "sample.pkl"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, slurp(data_ + "sample.repr"));
}

TEST_F(Cli, EveryCommandHasHelp) {
  for (const char* command : {"repr", "dis", "convert", "encode"}) {
    ToolRun run = pickletool({command, "--help"});
    EXPECT_EQ(run.exit_code, 0) << command;
    EXPECT_NE(run.out.find("usage: pickletool "), std::string::npos) << command;
  }
  ToolRun run = pickletool({"--help"});
  EXPECT_EQ(run.exit_code, 0);
}

TEST_F(Cli, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"no-such-command"},
      {"repr"},
      {"repr", "a", "b"},
      {"repr", "--no-such-option", "-"},
      {"repr", "--encoding", "utf-16", "-"},
      {"dis", "--indent", "x", "-"},
      {"repr", "/no/such/file"},
  };
  for (const auto& args : cases) {
    ToolRun run = pickletool(args);
    EXPECT_EQ(run.exit_code, 2) << (args.empty() ? "" : args[0]) << " " << run.err;
    EXPECT_EQ(run.signal, 0);
  }
}

// bench and bench-native time with the same timer: both take --clock wall|cpu and report it, and
// both run at least 5 samples. Nothing about the times themselves is checked.
TEST_F(Cli, BenchCommandsShareTheClockOptions) {
  const std::string ints = std::string("\x80\x04]\x94(K\x01K\x02" "e.", 11);
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"bench"}, std::vector<std::string>{"bench-native", "--type", "list-int"}}) {
    for (const char* clock : {"wall", "cpu"}) {
      std::vector<std::string> args = command;
      args.insert(args.end(), {"--op", "loads", "--min-time", "0", "--clock", clock, "-"});
      ToolRun run = pickletool(args, ints);
      EXPECT_EQ(run.exit_code, 0) << command[0] << " " << run.err;
      EXPECT_NE(run.out.find(std::string("\"clock\": \"") + clock + "\""), std::string::npos)
          << command[0] << ": " << run.out;
      std::smatch iterations;
      ASSERT_TRUE(std::regex_search(run.out, iterations, std::regex(R"("iterations": ([0-9]+))")))
          << run.out;
      EXPECT_GE(std::stoll(iterations[1]), 5) << command[0];
    }
    std::vector<std::string> args = command;
    args.insert(args.end(), {"--clock", "sundial", "-"});
    EXPECT_EQ(pickletool(args, ints).exit_code, 2) << command[0];
  }
}

// Malformed input: exit 1, exactly one line on stderr naming CPython's exception class, the
// offset and the opcode. The classes are what CPython 3.11's pickle.loads raises for each input.
TEST_F(Cli, MalformedInputGivesOneLine) {
  struct Case {
    std::string input;
    std::string python_class;
    std::string offset_and_opcode;
  };
  const std::vector<Case> cases = {
      {"", "EOFError", "at offset 0 (end of input)"},
      {"N", "EOFError", "at offset 1 (end of input)"},
      {"X\xff\xff\xff\xff.", "UnpicklingError", "at offset 0 (BINUNICODE)"},
      {"N(.", "UnpicklingError", "at offset 2 (STOP)"},
      {"\x80\x06N.", "ValueError", "at offset 0 (PROTO)"},
      {"\xff", "UnpicklingError", "at offset 0 (0xff)"},
      {std::string("X\x01\x00\x00\x00\xff.", 7), "UnicodeDecodeError", "at offset 0 (BINUNICODE)"},
  };
  for (const Case& c : cases) {
    ToolRun run = pickletool({"repr", "-"}, c.input);
    EXPECT_EQ(run.exit_code, 1) << c.python_class;
    EXPECT_EQ(run.signal, 0);
    EXPECT_TRUE(std::regex_match(run.err, one_line_error)) << run.err;
    EXPECT_EQ(run.err.rfind("pickletool: " + c.python_class + " " + c.offset_and_opcode + ": ", 0),
              0u)
        << run.err;
  }
}

// A pickle of a few hundred bytes whose repr doubles with each level of shared lists (Python
// would print 2^40 items): repr stops at --max-size with a MemoryError line.
TEST_F(Cli, ReprOfASharedReferenceBombIsBounded) {
  std::string bomb = "\x80\x02]q";
  bomb += std::string(1, '\0') + "K\x01" "a";
  for (int level = 0; level < 40; ++level) {
    const char index = static_cast<char>(level);
    bomb += std::string("(h") + index + "h" + index + "lq" + static_cast<char>(level + 1);
  }
  bomb += ".";
  ToolRun run = pickletool({"repr", "--max-size", "100000", "-"}, bomb);
  EXPECT_EQ(run.exit_code, 1) << run.err;
  // Refused before printing: the message gives the text's length, 7 * 2**40 - 4 characters.
  EXPECT_EQ(run.err,
            "pickletool: MemoryError: repr longer than 100000 bytes (at least 7696581394428)\n");
  EXPECT_TRUE(run.out.empty());
}

// CPython wrote the sample at protocol 4; converting it at its own protocol reproduces it.
TEST_F(Cli, ConvertAtTheSameProtocolReproducesCPythonsBytes) {
  ToolRun run = pickletool({"convert", data_ + "sample.pkl", "-"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, slurp(data_ + "sample.pkl"));
}

// Bytes above 0x7f in a literal are a syntax error, never an abort (X3's character classes
// assert on them).
TEST_F(Cli, EncodeRejectsNonAsciiSyntaxCleanly) {
  for (const char* literal : {"\xff", "0\xff", "1\xe9", "\xe9'a'", "0x\xff", "a\xe9" "b"}) {
    ToolRun run = pickletool({"encode", literal});
    EXPECT_EQ(run.exit_code, 1) << literal << " " << run.err;
    EXPECT_EQ(run.signal, 0) << literal;
  }
}

}  // namespace
