// SPDX-License-Identifier: Apache-2.0
// Reads the log OpenSC's pkcs11-spy writes (PKCS11SPY_OUTPUT) and checks what a keyport run did
// through the module. The log is a sequence of records:
//
//   <n>: C_<Function>
//   <timestamp>
//   [in] <name> = <value>          scalar arguments; "[in] pTemplate[k]: " then one indented
//   [out] <name> = <value>         "    CKA_<NAME>   <value or pointer / length>" line per
//   ...                            attribute (hex dumps indented below it)
//   Returned:  <rv> <CKR_NAME>
//
// The checks (docs/threat-model.md T1, T2, T15):
//  - no C_GetAttributeValue returned the value (non-null pointer, length >= 0) of CKA_VALUE or of
//    a private RSA component on a secret or private key (or on an object whose class the log
//    never showed), except a session object the same process created with CKA_SENSITIVE False
//    (counted apart: own_plain_reads);
//  - every session object created (C_GenerateKey, C_GenerateKeyPair, C_UnwrapKey, C_DeriveKey,
//    C_CreateObject, C_CopyObject with CKA_TOKEN false or absent) was destroyed by C_DestroyObject;
//  - every session opened was closed (C_CloseSession, or C_CloseAllSessions).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace keyport::test::spy {

// One attribute line of a template: name, and the pointer / length when the spy printed them
// (symbolic values such as "CKO_SECRET_KEY" or "True" go to `value`).
struct Attribute {
  std::string name;
  std::string value;  // the rest of the line, trimmed
  bool has_pointer = false;
  std::uint64_t pointer = 0;
  long long length = 0;
};

struct Call {
  long seq = -1;
  std::string function;  // "C_GetAttributeValue"
  std::vector<std::string> lines;
  std::string rv;  // "CKR_OK" ("" when the record has no Returned line: a crash)
  // "[in] hSession = 0x1" -> in["hSession"] = "0x1"; the same for out.
  std::map<std::string, std::string> in;
  std::map<std::string, std::string> out;
  // Templates by argument name: "[in] pTemplate[2]: " -> in_templates["pTemplate"].
  std::map<std::string, std::vector<Attribute>> in_templates;
  std::map<std::string, std::vector<Attribute>> out_templates;
  // C_FindObjects: "Object 0x4 matches".
  std::vector<std::uint64_t> found;

  bool ok() const { return rv == "CKR_OK"; }
};

// Parses a whole log (one or more runs appended). Lines before the first record are ignored.
std::vector<Call> parse(const std::string& text);
std::vector<Call> parse_file(const std::filesystem::path& path);

// A handle written "0x1f" (or decimal) -> number; -1 on garbage.
long long parse_handle(const std::string& text);

struct Report {
  std::vector<std::string> violations;  // one sentence each, naming the record number
  std::size_t calls = 0;
  std::size_t sessions_opened = 0;
  std::size_t ephemeral_objects = 0;
  std::size_t wraps = 0;                    // successful C_WrapKey
  std::size_t unwraps = 0;                  // successful C_UnwrapKey
  std::size_t sensitive_reads_refused = 0;  // CKA_VALUE etc. asked for and refused by the module
  // Values read back from session objects this process created with CKA_SENSITIVE False (data it
  // brought into the token itself, e.g. an envelope primary key unwrapped for host-side use).
  std::size_t own_plain_reads = 0;
  std::map<std::string, std::size_t> functions;  // calls per function
};

// Runs the checks over the calls of one process (handles are per process: check each run's log
// separately, or split an appended log at each C_Initialize, which check() does).
Report check(const std::vector<Call>& calls);

}  // namespace keyport::test::spy
