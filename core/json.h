// SPDX-License-Identifier: Apache-2.0
// Strict JSON parsing for untrusted input: duplicate member names are an error (two readers of
// the same document must never see different values), nesting and size are bounded, and no
// exception escapes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace keyport {

using Json = nlohmann::json;

struct JsonLimits {
  std::size_t max_bytes = 1 << 20;  // 1 MiB
  std::size_t max_depth = 64;
};

// Parses `text` as one JSON value. Fails with kFormat on syntax errors (with the byte offset),
// duplicate member names (with the JSON path of the object), excess depth or size, and invalid
// UTF-8 in strings.
Result<Json> parse_json_strict(std::string_view text, const JsonLimits& limits = {});

// A tolerant read for linters: parses like parse_json_strict (same limits) but records every
// duplicate member instead of stopping (the last value wins in `doc`), so the other checks can
// still run. `error` is set (and `doc` empty) for syntax, depth and size problems. Messages never
// quote the input's bytes.
struct JsonDuplicate {
  std::string member;
  std::string path;  // JSON path of the object holding it, "$.header"
};
struct JsonScan {
  std::optional<Json> doc;
  std::optional<Error> error;
  std::vector<JsonDuplicate> duplicates;
};
JsonScan scan_json(std::string_view text, const JsonLimits& limits = {});

// Serialises compactly; never throws (invalid UTF-8 is replaced).
std::string dump_json(const Json& j, int indent = -1);
// `text` as a JSON string (quoted and escaped), for messages that show untrusted input.
std::string json_quoted(std::string_view text);

// Typed member access for validators: each returns kFormat naming `where` + member on mismatch.
Result<std::string> json_string(const Json& obj, std::string_view member, std::string_view where);
Result<const Json*> json_object(const Json& obj, std::string_view member, std::string_view where);
// Fails if `obj` has members outside `allowed` (comma-free list of names).
Status json_only_members(const Json& obj, std::initializer_list<std::string_view> allowed,
                         std::string_view where);

}  // namespace keyport
