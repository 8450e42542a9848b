"""Expectations for pickle::parse_literal: for each literal, what
pickle.dumps(ast.literal_eval(LITERAL), protocol) is under this interpreter (protocols 2-5), or the
exception ast.literal_eval raises.

Run under each interpreter:  python3.X tests/writer/gen_literal_cases.py > tests/writer/literals-3.X.tsv
Each line: literal as hex (runs packed as [pattern*count], see describe.pack_hex) <TAB> protocol <TAB> pickle as hex, or - <TAB> exception class, or -
           <TAB> "complex" when the value holds a complex number (not supported: rejected)
"""
import ast
import os
import pickle
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from describe import pack_hex  # noqa: E402

LITERALS = [
    # atoms
    "None", "True", "False", "0", "1", "-1", "+1", "- 1", "255", "256", "65535", "65536", "-128",
    "2147483647", "-2147483648", "2147483648", "9223372036854775807", "-9223372036854775809",
    "123456789012345678901234567890", "-" + "9" * 600, "1_000_000", "0_0", "00", "0x1F", "0X_ff",
    "0o17", "0O_7", "0b1010", "0B_1", "0xdead_beef_cafe_babe_1234", "01", "1__0", "1_", "_1",
    "1.5", "-0.0", "0.0", "1.", ".5", "1e5", "1E-5", "1_0.0_1e1_0", "1e400", "-1e400", "1e-400",
    "3.141592653589793", "0.1", "1e", "1.5_", "--1", "-(1)", "(-1)", "-(-1)", "-((2.5))", "-True",
    "not 1", "1+1", "1j", "1+2j", "-1-2.5j", "(1, 2j)",
    # strings
    "''", '""', "'a'", '"abc"', "'\\xe9'", "'\u00e9'", "'\u20ac'", "'\\u20ac'", "'\\U0001F600'",
    "'\U0001F600'", "'\\ud800'", "'\\N{LATIN SMALL LETTER E WITH ACUTE}'", "'\\N{EM DASH}'",
    "'\\N{NO SUCH NAME}'", "'\\0'", "'\\777'", "'\\x41'", "'\\x4'", "'\\q'", "'a\\\nb'",
    "'\\a\\b\\f\\n\\r\\t\\v\\\\\\'\\\"'", "'''a\nb'''", '"""x"y"""', "'''it''s'''", "r'\\n'",
    "R'\\x'", "r'\\''", "u'u'", "U'u'", "ur'x'", "f'x'", "'a' 'b'", "'a' \"b\" '''c'''",
    "'a'\n'b'", "('a'\n'b')", "'a' b'b'", "'x' * 2",
    # bytes
    "b''", "b'a'", "B'abc'", "b'\\xff\\x00'", "b'\\777'", "b'\\u00e9'", "b'\\N{X}'", "rb'\\x'",
    "Rb'a'", "BR'\\n'", "bR'a'", "b'a' b'b'", "b'\xe9'", "b'x' * 3",
    # containers
    "()", "(1,)", "(1)", "((1,),)", "(1, 2)", "(1, 2, 3)", "(1, 2, 3, 4)", "1,", "1, 2", "1, 2,",
    ",", "(,)", "[]", "[1]", "[1,]", "[,]", "[1, 2, 3]", "[[[[]]]]", "{}", "{1: 2}", "{1: 2,}",
    "{'a': 1, 'b': [2, 3]}", "{1: 2, 1: 3}", "{1: 'a', 1.0: 'b', True: 'c'}", "{[1]: 2}",
    "{1: []}", "{1, 2, 3}", "{3, 1, 2}", "{1,}", "{1, 1.0, True}", "{-1, -2, 7, 1000000, 2**3}",
    "{9, 1}", "{1, 9}", "{(1, 2), (3, 4)}", "{0.5, 1.5, -2.25}", "set()", "set( )",
    "set([1])", "frozenset()", "{1:}", "{:1}", "{1: 2, 3}", "{1, 2: 3}", "[1 2]", "[1,,2]",
    "(1, 2", "[1))", "1 2", "",
    "[1, 'a', (2.5, None, True), b'\\x00', {'k': -1}, 300, 2147483648, -2147483649, '\\xe9']",
    "['a', 'a']", "['ab', 'ab']", "['', '']", "[b'', b'']", "[b'a', b'a']", "['a', b'a']",
    "[b'a', 'a']", "['\\xe9', b'\\xe9']", "['latin1', b'x']", "[b'x', b'y', b'x']",
    "[(), ()]", "[(1,), (1,)]", "[1.5, 1.5]", "[10**20]", "[123456789012345678901, 123456789012345678901]",
    "...", "[..., ...]", "Ellipsis", "x", "print(1)", "[1][0]", "1 if 1 else 2", "{**{}}", "[*()]",
    # layout
    " 1", "\t1", "1 ", "1\n", "\n1", "1 # comment", "[1, # c\n 2]", "(1,\n 2)", "\\\n1", "\r\n1",
    "[1\n,2]", "\x0c1", "[\n]", "{\n'a'\n:\n1\n}",
    # sizes
    "[" + ", ".join(str(i) for i in range(1001)) + "]",
    "{" + ", ".join("%d: %d" % (i, i) for i in range(1000)) + "}",
    "{" + ", ".join(str(i) for i in range(1000)) + "}",
    "'" + "x" * 300 + "'", "b'" + "y" * 70000 + "'",
]


def main():
    warnings.simplefilter("ignore")
    out = sys.stdout
    for literal in LITERALS:
        try:
            value = ast.literal_eval(literal)
            error = None
        except Exception as e:
            value, error = None, type(e).__name__
        has_complex = error is None and "j" in repr(value) and _has_complex(value)
        for protocol in range(2, 6):
            if error is not None:
                out.write("%s\t%d\t-\t%s\t-\n" % (pack_hex(literal.encode()), protocol, error))
                continue
            data = pack_hex(pickle.dumps(value, protocol))
            out.write("%s\t%d\t%s\t-\t%s\n" % (pack_hex(literal.encode()), protocol, data,
                                               "complex" if has_complex else "-"))


def _has_complex(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is complex:
            return True
        if type(v) in (list, tuple, set, frozenset):
            stack.extend(v)
        elif type(v) is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
    return False


if __name__ == "__main__":
    main()
