// Python literals, as ast.literal_eval accepts them: numbers, str and bytes in every quoting form,
// tuples, lists, dicts, sets, None, True, False (and unary minus / complex-free arithmetic it allows
// is rejected, see the implementation notes).
#pragma once

#include <string_view>

#include "pickle/value.hpp"

namespace pickle {

// Parse a Python literal. Throws pickle::Error(ValueError / SyntaxError-like message) when the
// text is not a literal ast.literal_eval would accept.
Value parse_literal(std::string_view text);

}  // namespace pickle
