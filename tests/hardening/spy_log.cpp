// SPDX-License-Identifier: Apache-2.0
#include "tests/hardening/spy_log.h"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace keyport::test::spy {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) {
    return {};
  }
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// "    CKA_VALUE             000055aab3ea8060 / 256" (8+ hex digits, " / ", a signed length)
Attribute parse_attribute(const std::string& line) {
  static const std::regex pointer_form(
      R"(^\s+(CKA_\w+|0x[0-9a-fA-F]+)\s+([0-9a-fA-F]{8,16}) / (-?\d+)\s*$)");
  static const std::regex named_form(R"(^\s+(CKA_\w+|0x[0-9a-fA-F]+)\s+(.*)$)");
  Attribute a;
  std::smatch m;
  if (std::regex_match(line, m, pointer_form)) {
    a.name = m[1];
    a.has_pointer = true;
    a.pointer = std::stoull(m[2], nullptr, 16);
    a.length = std::stoll(m[3]);
    a.value = trim(m[2].str() + " / " + m[3].str());
  } else if (std::regex_match(line, m, named_form)) {
    a.name = m[1];
    a.value = trim(m[2]);
  }
  return a;
}

bool is_attribute_line(const std::string& line) {
  static const std::regex attr(R"(^\s{4}(CKA_\w+|0x[0-9a-fA-F]+)\s+\S.*$)");
  return std::regex_match(line, attr);
}

// Where a template argument begins: "[in] pTemplate[9]: ", "[out] pTemplate[1]: ",
// "[in] pPublicKeyTemplate[9]: ".
bool template_header(const std::string& line, std::string& dir, std::string& name) {
  static const std::regex header(R"(^\[(in|out)\] (\w+)\[\d+\]:\s*$)");
  std::smatch m;
  if (!std::regex_match(line, m, header)) {
    return false;
  }
  dir = m[1];
  name = m[2];
  return true;
}

void finish_record(Call& c) {
  static const std::regex scalar(R"(^\[(in|out)\] ([*\w\->\[\]]+) = (.*)$)");
  static const std::regex returned(R"(^Returned:\s+(\d+) (\w+)\s*$)");
  static const std::regex found(R"(^Object (0x[0-9a-fA-F]+) matches\s*$)");
  std::string tdir;
  std::string tname;
  bool in_template = false;
  for (const auto& line : c.lines) {
    std::smatch m;
    std::string dir;
    std::string name;
    if (template_header(line, dir, name)) {
      in_template = true;
      tdir = dir;
      tname = name;
      (dir == "in" ? c.in_templates : c.out_templates)[name];
      continue;
    }
    if (in_template && is_attribute_line(line)) {
      Attribute a = parse_attribute(line);
      if (!a.name.empty()) {
        (tdir == "in" ? c.in_templates : c.out_templates)[tname].push_back(a);
      }
      continue;
    }
    if (in_template && line.rfind("    ", 0) == 0) {
      continue;  // a hex dump line or the text under it
    }
    in_template = false;
    if (std::regex_match(line, m, returned)) {
      c.rv = m[2];
    } else if (std::regex_match(line, m, found)) {
      c.found.push_back(static_cast<std::uint64_t>(std::stoull(m[1], nullptr, 16)));
    } else if (std::regex_match(line, m, scalar)) {
      (m[1] == "in" ? c.in : c.out)[m[2]] = trim(m[3]);
    }
  }
}

}  // namespace

std::vector<Call> parse(const std::string& text) {
  static const std::regex head(R"(^(\d+): (C_\w+)\s*$)");
  std::vector<Call> calls;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    std::smatch m;
    if (std::regex_match(line, m, head)) {
      if (!calls.empty()) {
        finish_record(calls.back());
      }
      Call c;
      c.seq = std::stol(m[1]);
      c.function = m[2];
      calls.push_back(std::move(c));
      continue;
    }
    if (!calls.empty()) {
      calls.back().lines.push_back(line);
    }
  }
  if (!calls.empty()) {
    finish_record(calls.back());
  }
  return calls;
}

std::vector<Call> parse_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str());
}

long long parse_handle(const std::string& text) {
  try {
    std::size_t used = 0;
    long long v = std::stoll(text, &used, 0);
    return used == trim(text).size() ? v : -1;
  } catch (...) {
    return -1;
  }
}

namespace {

const std::set<std::string>& secret_attributes() {
  static const std::set<std::string> s = {
      "CKA_VALUE",      "CKA_PRIVATE_EXPONENT", "CKA_PRIME_1",     "CKA_PRIME_2",
      "CKA_EXPONENT_1", "CKA_EXPONENT_2",       "CKA_COEFFICIENT",
  };
  return s;
}

// The template argument `name` of a call (empty when the record has none).
const std::vector<Attribute>& templ(const std::map<std::string, std::vector<Attribute>>& m,
                                    const std::string& name) {
  static const std::vector<Attribute> none;
  auto it = m.find(name);
  return it == m.end() ? none : it->second;
}

// The CKA_CLASS a template names ("" when it has none).
std::string class_in(const std::vector<Attribute>& t) {
  for (const auto& a : t) {
    if (a.name == "CKA_CLASS" && !a.has_pointer) {
      return a.value;
    }
  }
  return {};
}

// True unless the template says CKA_SENSITIVE False (absent counts as sensitive here, so a read
// of such an object is flagged).
bool sensitive(const std::vector<Attribute>& t) {
  for (const auto& a : t) {
    if (a.name == "CKA_SENSITIVE") {
      return a.value.rfind("False", 0) != 0;
    }
  }
  return true;
}

// True when a creation template makes a session object (CKA_TOKEN False, or no CKA_TOKEN: the
// PKCS#11 default).
bool session_object(const std::vector<Attribute>& t) {
  for (const auto& a : t) {
    if (a.name == "CKA_TOKEN") {
      return a.value.rfind("False", 0) == 0;
    }
  }
  return true;
}

void check_one_process(const std::vector<Call>& calls, std::size_t begin, std::size_t end,
                       Report& r) {
  std::map<long long, std::string> cls;  // object handle -> class
  // Session objects this process created with CKA_SENSITIVE False (data it brought into the token
  // itself, such as an envelope primary key unwrapped for use in host memory): the only objects
  // whose value keyport may read back.
  std::set<long long> own_plain;
  std::map<long long, long> ephemeral;  // live session objects -> record number
  std::map<long long, long> sessions;   // live sessions -> record number
  std::string find_class;               // class of the running C_FindObjects search
  auto created = [&](const Call& c, const std::string& out_name,
                     const std::vector<Attribute>& templ) {
    auto it = c.out.find(out_name);
    if (it == c.out.end()) {
      r.violations.push_back("#" + std::to_string(c.seq) + " " + c.function +
                             " succeeded but the log has no " + out_name);
      return;
    }
    const long long h = parse_handle(it->second);
    cls[h] = class_in(templ);
    own_plain.erase(h);
    if (session_object(templ)) {
      ephemeral[h] = c.seq;
      ++r.ephemeral_objects;
      if (!sensitive(templ)) {
        own_plain.insert(h);
      }
    }
  };
  for (std::size_t i = begin; i < end; ++i) {
    const Call& c = calls[i];
    ++r.calls;
    ++r.functions[c.function];
    const std::string& f = c.function;
    if (f == "C_OpenSession" && c.ok()) {
      sessions[parse_handle(c.out.count("*phSession") ? c.out.at("*phSession") : "")] = c.seq;
      ++r.sessions_opened;
    } else if (f == "C_CloseSession" && c.ok()) {
      sessions.erase(parse_handle(c.in.count("hSession") ? c.in.at("hSession") : ""));
    } else if (f == "C_CloseAllSessions" && c.ok()) {
      sessions.clear();
    } else if (f == "C_GenerateKey" && c.ok()) {
      created(c, "hKey", templ(c.in_templates, "pTemplate"));
    } else if (f == "C_GenerateKeyPair" && c.ok()) {
      created(c, "hPublicKey", templ(c.in_templates, "pPublicKeyTemplate"));
      created(c, "hPrivateKey", templ(c.in_templates, "pPrivateKeyTemplate"));
    } else if ((f == "C_UnwrapKey" || f == "C_DeriveKey") && c.ok()) {
      created(c, c.out.count("hKey") ? "hKey" : "*phKey", templ(c.in_templates, "pTemplate"));
      if (f == "C_UnwrapKey") {
        ++r.unwraps;
      }
    } else if ((f == "C_CreateObject" || f == "C_CopyObject") && c.ok()) {
      created(c, c.out.count("*phObject") ? "*phObject" : "*phNewObject",
              templ(c.in_templates, "pTemplate"));
    } else if (f == "C_DestroyObject" && c.ok()) {
      const long long h = parse_handle(c.in.count("hObject") ? c.in.at("hObject") : "");
      ephemeral.erase(h);
      cls.erase(h);
      own_plain.erase(h);
    } else if (f == "C_WrapKey" && c.ok()) {
      ++r.wraps;
    } else if (f == "C_FindObjectsInit") {
      find_class = class_in(templ(c.in_templates, "pTemplate"));
    } else if (f == "C_FindObjects" && c.ok()) {
      for (auto h : c.found) {
        if (!find_class.empty()) {
          cls[static_cast<long long>(h)] = find_class;
        }
      }
    } else if (f == "C_GetAttributeValue") {
      const long long h = parse_handle(c.in.count("hObject") ? c.in.at("hObject") : "");
      for (const auto& a : templ(c.out_templates, "pTemplate")) {
        if (a.name == "CKA_CLASS" && !a.has_pointer) {
          cls[h] = a.value;
        }
      }
      const std::string klass = cls.count(h) ? cls[h] : "";
      const bool secret_object =
          klass.empty() || klass == "CKO_SECRET_KEY" || klass == "CKO_PRIVATE_KEY";
      for (const auto& a : templ(c.out_templates, "pTemplate")) {
        if (secret_attributes().count(a.name) == 0 || !secret_object) {
          continue;
        }
        if (a.has_pointer && a.pointer != 0 && a.length >= 0 && own_plain.count(h) != 0) {
          ++r.own_plain_reads;
        } else if (a.has_pointer && a.pointer != 0 && a.length >= 0) {
          r.violations.push_back("#" + std::to_string(c.seq) + " C_GetAttributeValue returned " +
                                 a.name + " (" + std::to_string(a.length) + " bytes) of object " +
                                 std::to_string(h) + " (" +
                                 (klass.empty() ? "class unknown" : klass) + ")");
        } else if (a.has_pointer && a.length < 0) {
          ++r.sensitive_reads_refused;
        }
      }
    }
    if (c.rv.empty()) {
      r.violations.push_back("#" + std::to_string(c.seq) + " " + f +
                             " has no Returned line (the process died in the call?)");
    }
  }
  for (const auto& [h, seq] : ephemeral) {
    r.violations.push_back("session object " + std::to_string(h) + " created by record #" +
                           std::to_string(seq) + " was never destroyed");
  }
  for (const auto& [h, seq] : sessions) {
    r.violations.push_back("session " + std::to_string(h) + " opened by record #" +
                           std::to_string(seq) + " was never closed");
  }
}

}  // namespace

Report check(const std::vector<Call>& calls) {
  Report r;
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= calls.size(); ++i) {
    const bool boundary = i == calls.size() || (i > begin && calls[i].function == "C_Initialize");
    if (boundary) {
      check_one_process(calls, begin, i, r);
      begin = i;
    }
  }
  return r;
}

}  // namespace keyport::test::spy
