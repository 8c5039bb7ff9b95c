// SPDX-License-Identifier: Apache-2.0
#include "migrate/cmk_runbook.h"

#include <sstream>

namespace keyport::migrate {
namespace {

// Single-quotes a word for sh when it holds anything but [A-Za-z0-9_./:=@%+-].
std::string sh(std::string_view s) {
  bool plain = !s.empty();
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("_./:=@%+-,").find(c) != std::string_view::npos;
    plain = plain && ok;
  }
  // Placeholders in <angle brackets> stay readable (they must be replaced before running).
  if (plain || (s.size() > 2 && s.front() == '<' && s.back() == '>')) {
    return std::string(s);
  }
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

bool valid_key_name(std::string_view name) {
  if (name.empty() || name.size() > 127) {
    return false;
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos;
       pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

}  // namespace

Result<VaultRef> VaultRef::parse(std::string_view text) {
  VaultRef v;
  if (text.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a vault is https://HOST:PORT or a folder");
  }
  if (text.rfind("http://", 0) == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "vault " + std::string(text) + ": the vault REST API is served over https");
  }
  if (text.rfind("https://", 0) == 0) {
    v.url = std::string(text);
    while (!v.url.empty() && v.url.back() == '/') {
      v.url.pop_back();
    }
  } else {
    v.dir = std::filesystem::path(text);
  }
  return v;
}

std::string VaultRef::target_args(bool admin) const {
  if (url.empty()) {
    return "--data " + sh(dir.string());
  }
  std::string out = "--url " + sh(url);
  if (ca_file) {
    out += " --ca-file " + sh(*ca_file);
  }
  if (admin) {
    out += " --token-file " + sh(admin_token_file.value_or("<admin.token>"));
  }
  return out;
}

std::string VaultRef::describe() const {
  return url.empty() ? "vault folder " + dir.string() : "vault " + url;
}

Json CmkRunbook::to_json() const {
  Json steps_json = Json::array();
  for (const auto& s : steps) {
    steps_json.push_back(Json{{"step", s.number},
                              {"title", s.title},
                              {"why", s.why},
                              {"commands", s.commands},
                              {"notes", s.notes}});
  }
  return Json{{"workload", workload}, {"from", from},     {"to", to},
              {"key", key},           {"to_key", to_key}, {"steps", steps_json}};
}

std::string CmkRunbook::to_text() const {
  std::ostringstream out;
  out << "Customer-managed-key workload: move key \"" << key << "\" (" << from << ") to key \""
      << to_key << "\" (" << to << ")\n";
  for (const auto& s : steps) {
    out << "\n" << s.number << ". " << s.title << "\n   " << s.why << "\n";
    for (const auto& c : s.commands) {
      out << "     $ " << c << "\n";
    }
    for (const auto& n : s.notes) {
      out << "   note: " << n << "\n";
    }
  }
  return out.str();
}

Result<CmkRunbook> build_cmk_runbook(const CmkRunbookInput& in) {
  const std::string to_key = in.to_key.empty() ? in.key : in.to_key;
  if (!valid_key_name(in.key) || !valid_key_name(to_key)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "key names are 1 to 127 characters of [0-9a-zA-Z-]");
  }
  if (in.from.url == in.to.url && in.from.dir == in.to.dir && in.key == to_key) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--from-vault and --to-vault name the same vault and key: nothing to move");
  }
  if (in.kty != "RSA-HSM" && in.kty != "RSA") {
    return make_error(ErrorCode::kInvalidArgument,
                      "a customer-managed key for wrapKey/unwrapKey is an RSA key (RSA-HSM)");
  }
  CmkRunbook rb;
  rb.from = in.from.describe();
  rb.to = in.to.describe();
  rb.key = in.key;
  rb.to_key = to_key;
  const std::string to_admin = in.to.target_args(true);
  const std::string from_admin = in.from.target_args(true);

  // 1. The new key.
  RunbookStep s1;
  s1.number = 1;
  if (!in.portable) {
    s1.title = "Create the new key in the destination";
    s1.why =
        "Key Vault never exports a key made inside it, so the workload's data key will be "
        "wrapped by a new key; the data itself is not re-encrypted.";
    s1.commands.push_back("keyport vault create-key " + to_admin + " --name " + sh(to_key) +
                          " --kty " + in.kty + " --size " + std::to_string(in.size) +
                          " --ops wrapKey unwrapKey");
    s1.commands.push_back("keyport vault get " + to_admin + " --name " + sh(to_key) + " --json");
    s1.notes.push_back(
        "if the old key is portable (made in your HSM and imported with BYOK), "
        "import the same material instead: plan with --portable");
  } else {
    s1.title = "Import the same key material in the destination (the old key is portable)";
    s1.why =
        "The key was made in an HSM you control and imported with BYOK: importing it again "
        "keeps every wrapped data key valid, even in backups.";
    const std::string kek = to_key + "-kek";
    s1.commands.push_back("keyport vault create-key " + to_admin + " --name " + sh(kek) + " --kek");
    s1.commands.push_back("keyport vault download " + to_admin + " --name " + sh(kek) + " -o " +
                          sh(kek + ".pem"));
    s1.commands.push_back("keyport byok export --token " + sh(in.portable_token) + " --key " +
                          sh(in.portable_label) + " --kek " + sh(kek + ".pem") + " --kid <kid of " +
                          kek + " printed by create-key> -o " + sh(to_key + ".byok"));
    s1.commands.push_back("keyport vault import " + to_admin + " --name " + sh(to_key) +
                          " --byok " + sh(to_key + ".byok") + " --kty RSA");
  }
  rb.steps.push_back(std::move(s1));

  // 2. Access for the workload's identity.
  RunbookStep s2;
  s2.number = 2;
  s2.title = "Grant the workload's identity get, wrapKey and unwrapKey in the destination";
  s2.why =
      "The workload unwraps its data key with the key at every start and wraps it when it "
      "switches; it needs nothing else (least privilege).";
  std::string access = in.to_access_file.value_or(
      in.to.dir.empty() ? "<the destination's access file>" : (in.to.dir / "access.json").string());
  s2.commands.push_back(
      "(umask 077 && jq --rawfile t " + sh(in.identity_token_file) + " --arg name " +
      sh(in.identity) +
      " '.tokens[($t | rtrimstr(\"\\n\"))] = {\"name\": $name, \"permissions\": [\"get\", "
      "\"wrapKey\", \"unwrapKey\"]}' " +
      sh(access) + " > " + sh(access + ".new") + ") && mv " + sh(access + ".new") + " " +
      sh(access));
  if (!in.to.url.empty()) {
    VaultRef as_workload = in.to;
    as_workload.admin_token_file = in.identity_token_file;
    s2.commands.push_back("keyport vault get " + as_workload.target_args(true) + " --name " +
                          sh(to_key));
    s2.notes.push_back(
        "the server re-reads its access file on the next request after it changes; "
        "the last command checks, with the workload's own token, that the grant is in "
        "force");
  } else {
    s2.notes.push_back("serve the destination (keyport vault serve --data " + in.to.dir.string() +
                       ") so that the workload can reach it over the REST API");
  }
  s2.notes.push_back("the token is read from its file, so it never appears on a command line");
  rb.steps.push_back(std::move(s2));

  // 3. Switch.
  RunbookStep s3;
  s3.number = 3;
  s3.title = "Switch the workload to the new key";
  s3.why =
      "The workload unwraps its data key with the old key and wraps it with the new one; from "
      "then on it needs only the new key for current data.";
  const std::string vault_text = in.to.url.empty() ? in.to.dir.string() : in.to.url;
  if (in.switch_command) {
    std::string c = *in.switch_command;
    replace_all(c, "{vault}", sh(vault_text));
    replace_all(c, "{ca_file}", sh(in.to.ca_file.value_or("<ca.pem>")));
    replace_all(c, "{key}", sh(to_key));
    s3.commands.push_back(c);
  } else {
    s3.commands.push_back("<point the workload at key " + to_key + " of " + vault_text + ">");
    s3.notes.push_back(
        "for an Azure Storage account: az storage account update --name <account> "
        "--resource-group <group> --encryption-key-source Microsoft.Keyvault "
        "--encryption-key-vault <vault-uri> --encryption-key-name " +
        to_key);
  }
  s3.notes.push_back("check that the workload reads data written before and after the switch");
  rb.steps.push_back(std::move(s3));

  // 4. Keep the old key.
  RunbookStep s4;
  s4.number = 4;
  s4.title = "Keep the old key until no backup needs it";
  s4.why =
      "Backups taken before the switch hold the data key wrapped by the old key only; "
      "restoring one needs unwrapKey with \"" +
      in.key + "\" in " + rb.from + ".";
  s4.commands.push_back("keyport vault get " + from_admin + " --name " + sh(in.key));
  s4.notes.push_back("do not delete, disable or expire \"" + in.key +
                     "\", and keep the workload's unwrapKey access to it, until the last backup "
                     "taken before the switch has expired");
  s4.notes.push_back("then, and only then: keyport vault delete " + from_admin + " --name " +
                     sh(in.key) + " (soft delete: recoverable for the retention period)");
  rb.steps.push_back(std::move(s4));
  return rb;
}

}  // namespace keyport::migrate
