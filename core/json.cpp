// SPDX-License-Identifier: Apache-2.0
#include "core/json.h"

#include <set>
#include <vector>

namespace keyport {

namespace {

// One pass over the text with nlohmann's parser callback: tracks the JSON path, bounds the depth,
// and records duplicate members (stopping at the first one when `stop_at_duplicate`).
JsonScan scan(std::string_view text, const JsonLimits& limits, bool stop_at_duplicate) {
  JsonScan out;
  if (text.size() > limits.max_bytes) {
    out.error =
        Error(ErrorCode::kFormat, "JSON document too large (" + std::to_string(text.size()) +
                                      " bytes, limit " + std::to_string(limits.max_bytes) + ")");
    return out;
  }
  // nlohmann's lexer takes a NUL byte for the end of the input, so "{...}\0{...}" would parse as
  // its first half. A NUL is never valid in JSON text (RFC 8259: not even inside a string).
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    out.error = Error(ErrorCode::kFormat,
                      "JSON syntax error at byte " + std::to_string(nul + 1) + ": a NUL byte");
    return out;
  }
  struct Frame {
    bool is_object;
    std::set<std::string> keys;
    std::string path;
    std::size_t index = 0;
  };
  std::vector<Frame> stack;
  std::string pending_key;
  std::string problem;

  auto child_path = [&]() -> std::string {
    if (stack.empty())
      return "$";
    Frame& top = stack.back();
    if (top.is_object)
      return top.path + "." + pending_key;
    return top.path + "[" + std::to_string(top.index) + "]";
  };

  Json::parser_callback_t cb = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    if (!problem.empty())
      return false;
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start: {
        if (static_cast<std::size_t>(depth) >= limits.max_depth) {
          problem = "JSON nesting deeper than " + std::to_string(limits.max_depth);
          return false;
        }
        std::string path = child_path();
        stack.push_back(Frame{event == Json::parse_event_t::object_start, {}, path});
        break;
      }
      case Json::parse_event_t::key: {
        std::string key = parsed.get<std::string>();
        Frame& top = stack.back();
        if (!top.keys.insert(key).second) {
          out.duplicates.push_back({key, top.path});
          if (stop_at_duplicate) {
            problem = "duplicate member \"" + key + "\" in " + top.path;
            return false;
          }
        }
        pending_key = key;
        break;
      }
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        stack.pop_back();
        if (!stack.empty() && !stack.back().is_object)
          ++stack.back().index;
        break;
      case Json::parse_event_t::value:
        if (!stack.empty() && !stack.back().is_object)
          ++stack.back().index;
        break;
    }
    return true;
  };

  try {
    Json doc = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true,
                           /*ignore_comments=*/false);
    if (problem.empty())
      out.doc = std::move(doc);
  } catch (const Json::parse_error& e) {
    if (problem.empty()) {
      std::string what = e.what();
      // nlohmann quotes the text it last read: keep the input's bytes (perhaps a secret) out of it.
      std::size_t last_read = what.find("; last read:");
      if (last_read != std::string::npos)
        what.resize(last_read);
      std::size_t colon = what.find(": ");
      problem = "JSON syntax error at byte " + std::to_string(e.byte) + ": " +
                (colon == std::string::npos ? what : what.substr(colon + 2));
    }
  } catch (const Json::out_of_range& e) {
    // 406: a number beyond double ("1e999"). nlohmann's text names itself and quotes the input.
    if (problem.empty())
      problem = e.id == 406 ? "JSON number out of range" : "JSON value out of range";
  } catch (const std::exception&) {
    if (problem.empty())
      problem = "JSON text that cannot be read";
  }
  if (!problem.empty()) {
    out.doc.reset();
    out.error = Error(ErrorCode::kFormat, problem);
  }
  return out;
}

}  // namespace

JsonScan scan_json(std::string_view text, const JsonLimits& limits) {
  return scan(text, limits, false);
}

Result<Json> parse_json_strict(std::string_view text, const JsonLimits& limits) {
  JsonScan s = scan(text, limits, true);
  if (s.error)
    return tl::unexpected(*s.error);
  return std::move(*s.doc);
}

std::string json_quoted(std::string_view text) {
  return dump_json(Json(std::string(text)));
}

std::string dump_json(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> json_string(const Json& obj, std::string_view member, std::string_view where) {
  auto it = obj.find(std::string(member));
  if (it == obj.end()) {
    return make_error(ErrorCode::kFormat,
                      std::string(where) + ": missing member \"" + std::string(member) + "\"");
  }
  if (!it->is_string()) {
    return make_error(ErrorCode::kFormat, std::string(where) + ": member \"" + std::string(member) +
                                              "\" must be a string");
  }
  return it->get<std::string>();
}

Result<const Json*> json_object(const Json& obj, std::string_view member, std::string_view where) {
  auto it = obj.find(std::string(member));
  if (it == obj.end()) {
    return make_error(ErrorCode::kFormat,
                      std::string(where) + ": missing member \"" + std::string(member) + "\"");
  }
  if (!it->is_object()) {
    return make_error(ErrorCode::kFormat, std::string(where) + ": member \"" + std::string(member) +
                                              "\" must be an object");
  }
  return &*it;
}

Status json_only_members(const Json& obj, std::initializer_list<std::string_view> allowed,
                         std::string_view where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (auto a : allowed)
      ok = ok || it.key() == a;
    if (!ok) {
      return make_error(ErrorCode::kFormat,
                        std::string(where) + ": unexpected member \"" + it.key() + "\"");
    }
  }
  return {};
}

}  // namespace keyport
