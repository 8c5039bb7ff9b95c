// SPDX-License-Identifier: Apache-2.0
#include "transfer/batch.h"

#include <fnmatch.h>
#include <sys/resource.h>

#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "byok/byok_file.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "core/strings.h"
#include "pkcs11/quirks.h"

namespace keyport::transfer {
namespace fs = std::filesystem;

std::string_view to_string(ItemOutcome o) {
  switch (o) {
    case ItemOutcome::kWritten:
      return "written";
    case ItemOutcome::kSkipped:
      return "skipped";
    case ItemOutcome::kFailed:
      return "failed";
  }
  return "";
}

Json ItemResult::to_json() const {
  Json j = {{"key", label},
            {"type", key_type},
            {"kid", kid},
            {"output", output.string()},
            {"outcome", std::string(transfer::to_string(outcome))}};
  if (!sha256.empty())
    j["sha256"] = sha256;
  if (error) {
    j["error"] = error->describe();
    j["error_code"] = std::string(keyport::to_string(error->code()));
  }
  if (!warnings.empty())
    j["warnings"] = warnings;
  return j;
}

Result<Destination> load_destination(const std::string& kek_path,
                                     std::optional<std::string> kid_text,
                                     std::optional<byok::TargetKind> target_fallback,
                                     std::vector<std::string>& warnings) {
  KEYPORT_ASSIGN_OR_RETURN(byok::Kek kek, byok::load_kek_file(kek_path));
  Destination d{kek_path, std::move(kek), {}, byok::TargetKind::kKeyVault, {}};
  std::string text = kid_text.value_or(d.kek.kid.value_or(""));
  if (text.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no kid for KEK " + kek_path +
                          ": give --kid https://<vault>.vault.azure.net/keys/<kek-name>/<version> "
                          "(or a JWK with a kid)");
  }
  auto kid = byok::parse_kid(text, true);
  if (!kid)
    return tl::unexpected(kid.error().with_context("kid for " + kek_path));
  d.kid = std::move(*kid);
  if (d.kek.kid && kid_text && *d.kek.kid != *kid_text) {
    warnings.push_back("the kid given for " + kek_path + " differs from the kid inside it");
  }
  KEYPORT_ASSIGN_OR_RETURN(d.target, resolve_target(d.kid, target_fallback, warnings));
  return d;
}

void assign_destination_tags(std::vector<Destination>& ds) {
  auto clean = [](std::string s) {
    for (char& c : s) {
      bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok)
        c = '-';
    }
    return s;
  };
  std::map<std::string, int> vault_count;
  for (const auto& d : ds)
    ++vault_count[clean(d.kid.vault_name)];
  std::set<std::string> used;
  for (auto& d : ds) {
    std::string tag = clean(d.kid.vault_name);
    if (vault_count[tag] > 1)
      tag += "-" + clean(d.kid.key_name);
    std::string unique = tag;
    for (int i = 2; used.count(unique); ++i)
      unique = tag + "-" + std::to_string(i);
    used.insert(unique);
    d.tag = unique;
  }
}

namespace {

// RFC 4180-style CSV: commas, double quotes with "" escapes, CRLF or LF.
Result<std::vector<std::vector<std::string>>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  std::size_t line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n')
          ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
        ++i;
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
      if (!(row.size() == 1 && row[0].empty()))
        rows.push_back(std::move(row));
      row.clear();
      ++line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted)
    return make_error(ErrorCode::kFormat,
                      "CSV: unterminated quoted field at line " + std::to_string(line));
  if (field_started || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

Result<std::vector<ManifestEntry>> read_manifest(const fs::path& path) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(path, 64u << 20));
  fs::path base = path.parent_path();
  auto resolve = [&](const std::string& p) {
    return fs::path(p).is_absolute() || base.empty() ? p : (base / p).string();
  };
  std::vector<ManifestEntry> out;
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
    JsonLimits limits;
    limits.max_bytes = 64u << 20;
    auto json = parse_json_strict(text, limits);
    if (!json)
      return tl::unexpected(json.error().with_context("manifest " + path.string()));
    const Json* arr = &*json;
    if (json->is_object()) {
      auto it = json->find("items");
      if (it == json->end() || !it->is_array()) {
        return make_error(ErrorCode::kFormat,
                          "manifest " + path.string() + ": want an array or {\"items\": [...]}");
      }
      arr = &*it;
    }
    if (!arr->is_array())
      return make_error(ErrorCode::kFormat, "manifest " + path.string() + ": not an array");
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const Json& e = (*arr)[i];
      std::string where = "manifest " + path.string() + " item " + std::to_string(i);
      if (!e.is_object())
        return make_error(ErrorCode::kFormat, where + ": not an object");
      KEYPORT_TRY(json_only_members(e, {"key", "kek", "kid", "enc", "output"}, where));
      ManifestEntry m;
      KEYPORT_ASSIGN_OR_RETURN(m.key, json_string(e, "key", where));
      KEYPORT_ASSIGN_OR_RETURN(std::string kek, json_string(e, "kek", where));
      m.kek = resolve(kek);
      for (auto [name, field] :
           {std::pair{"kid", &m.kid}, {"enc", &m.enc}, {"output", &m.output}}) {
        if (e.contains(name)) {
          KEYPORT_ASSIGN_OR_RETURN(std::string v, json_string(e, name, where));
          *field = v;
        }
      }
      out.push_back(std::move(m));
    }
    return out;
  }
  KEYPORT_ASSIGN_OR_RETURN(auto rows, parse_csv(text));
  if (rows.empty())
    return make_error(ErrorCode::kFormat, "manifest " + path.string() + " is empty");
  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < rows[0].size(); ++i)
    col[std::string(trim(rows[0][i]))] = i;
  for (const char* need : {"key", "kek"}) {
    if (!col.count(need)) {
      return make_error(ErrorCode::kFormat, "manifest " + path.string() +
                                                ": the CSV header needs a \"" + need +
                                                "\" column (columns: key,kek,kid,enc,output)");
    }
  }
  for (const auto& [name, _] : col) {
    if (name != "key" && name != "kek" && name != "kid" && name != "enc" && name != "output") {
      return make_error(ErrorCode::kFormat,
                        "manifest " + path.string() + ": unknown CSV column \"" + name + "\"");
    }
  }
  for (std::size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    auto get = [&](const char* name) -> std::optional<std::string> {
      auto it = col.find(name);
      if (it == col.end() || it->second >= row.size())
        return std::nullopt;
      std::string v(trim(row[it->second]));
      if (v.empty())
        return std::nullopt;
      return v;
    };
    if (row.size() > rows[0].size()) {
      return make_error(ErrorCode::kFormat, "manifest " + path.string() + " row " +
                                                std::to_string(r + 1) +
                                                ": more fields than the header has columns");
    }
    ManifestEntry m;
    auto key = get("key");
    auto kek = get("kek");
    if (!key || !kek) {
      return make_error(ErrorCode::kFormat, "manifest " + path.string() + " row " +
                                                std::to_string(r + 1) +
                                                ": key and kek are required");
    }
    m.key = *key;
    m.kek = resolve(*kek);
    m.kid = get("kid");
    m.enc = get("enc");
    m.output = get("output");
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<Json> read_report(const fs::path& path) {
  std::vector<Json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = parse_json_strict(line);
    if (j && j->is_object())
      out.push_back(std::move(*j));
  }
  return out;
}

std::vector<p11::KeyObject> select_keys(const std::vector<p11::KeyObject>& keys,
                                        const std::string& glob) {
  std::vector<p11::KeyObject> out;
  for (const auto& k : keys) {
    if (::fnmatch(glob.c_str(), k.label.c_str(), 0) == 0)
      out.push_back(k);
  }
  return out;
}

namespace {

struct Shared {
  const p11::WrapCapabilities& caps;
  const std::vector<Destination>& destinations;
  const std::vector<BatchItem>& items;
  const BatchOptions& options;
  std::map<std::string, std::string> previous;  // output path -> sha256 recorded as written
  std::vector<ItemResult> results;
  std::atomic<std::size_t> next{0};
  std::mutex report_mutex;
  std::size_t group_size = 1;  // files per commit, fitted to the descriptor limit by run_batch
};

// True when `path` holds a file an earlier run wrote and recorded for this item, unchanged.
bool already_done(const Shared& sh, const BatchItem& item, const Destination& d,
                  std::string* out_sha) {
  auto it = sh.previous.find(item.output.string());
  if (it == sh.previous.end())
    return false;
  auto bytes = read_file(item.output, 1u << 20);
  if (!bytes)
    return false;
  std::string sha = hex_encode(sha256(*bytes));
  if (sha != it->second)
    return false;
  auto file = byok::ByokFile::parse(as_chars(*bytes));
  if (!file || file->kid != d.kid.url || file->enc != item.enc)
    return false;
  std::size_t modulus = (d.kek.key.bits() + 7) / 8;
  if (file->ciphertext.size() < modulus + 16 || (file->ciphertext.size() - modulus) % 8 != 0)
    return false;
  *out_sha = sha;
  return true;
}

void worker(Shared& sh, const std::shared_ptr<const p11::Module>& module, CK_SLOT_ID slot,
            const p11::TokenInfo& token, Status* setup) {
  auto session = p11::Session::open(module, slot, true);
  if (!session) {
    *setup = tl::unexpected(session.error());
    return;
  }
  std::map<std::size_t, SessionKek> keks;
  std::map<std::string, std::vector<std::string>> quirk_notes;  // per key type, computed once
  AtomicBatchWriter writer;
  std::vector<std::size_t> staged;
  auto report = [&](std::size_t idx) {
    if (sh.options.on_item) {
      std::lock_guard<std::mutex> lock(sh.report_mutex);
      sh.options.on_item(sh.results[idx]);
    }
  };
  auto commit = [&] {
    auto statuses = writer.commit();
    for (std::size_t i = 0; i < staged.size(); ++i) {
      ItemResult& r = sh.results[staged[i]];
      if (statuses[i]) {
        r.outcome = ItemOutcome::kWritten;
      } else {
        r.outcome = ItemOutcome::kFailed;
        r.error = statuses[i].error();
        r.sha256.clear();
      }
      report(staged[i]);
    }
    staged.clear();
  };
  WriteOptions wo;
  wo.overwrite = sh.options.force;
  std::chrono::steady_clock::time_point group_opened;
  for (;;) {
    if (sh.options.cancel && sh.options.cancel->load())
      break;
    std::size_t idx = sh.next.fetch_add(1);
    if (idx >= sh.items.size())
      break;
    const BatchItem& item = sh.items[idx];
    const Destination& dest = sh.destinations[item.destination];
    ItemResult& r = sh.results[idx];
    r.label = item.key.label;
    r.key_type = item.key.spec.name();
    r.kid = dest.kid.url;
    r.output = item.output;
    auto fail = [&](Error e) {
      r.outcome = ItemOutcome::kFailed;
      r.error = std::move(e);
      report(idx);
    };
    std::error_code ec;
    if (!sh.options.force && fs::exists(item.output, ec)) {
      std::string sha;
      if (already_done(sh, item, dest, &sha)) {
        r.outcome = ItemOutcome::kSkipped;
        r.sha256 = sha;
        report(idx);
      } else {
        fail(Error(ErrorCode::kAlreadyExists,
                   item.output.string() +
                       " already exists and is not a verified output of an earlier run "
                       "(use --force to overwrite)"));
      }
      continue;
    }
    auto kek_it = keks.find(item.destination);
    if (kek_it == keks.end()) {
      auto k = SessionKek::import(*session, dest.kek.key);
      if (!k) {
        fail(k.error());
        continue;
      }
      kek_it = keks.emplace(item.destination, std::move(*k)).first;
    }
    ExportOptions eo;
    eo.enc = item.enc;
    eo.strategy = sh.options.strategy;
    eo.generator = sh.options.generator;
    auto exported =
        export_key(*session, sh.caps, item.key, kek_it->second, dest.kid, dest.target, eo);
    if (!exported) {
      fail(exported.error());
      continue;
    }
    r.warnings = exported->warnings;
    auto [cached, fresh] = quirk_notes.try_emplace(exported->spec.name());
    if (fresh) {
      for (const auto& q : p11::quirks_affecting_export(token, exported->spec)) {
        cached->second.push_back(
            "module quirk " + q.code +
            (exported->spec.family == KeyFamily::kRsa ? " may apply" : " applies"));
      }
    }
    r.warnings.insert(r.warnings.end(), cached->second.begin(), cached->second.end());
    std::string text = exported->file.to_json();
    r.sha256 = hex_encode(sha256(as_bytes(text)));
    auto st = writer.stage(item.output, as_bytes(text), wo);
    if (!st) {
      r.sha256.clear();
      fail(st.error());
      continue;
    }
    staged.push_back(idx);
    auto now = std::chrono::steady_clock::now();
    if (staged.size() == 1)
      group_opened = now;
    if (staged.size() >= sh.group_size || now - group_opened >= sh.options.commit_interval)
      commit();
  }
  commit();
  keks.clear();  // session objects go before the session closes
}

}  // namespace

Result<std::vector<ItemResult>> run_batch(const std::shared_ptr<const p11::Module>& module,
                                          CK_SLOT_ID slot, const p11::WrapCapabilities& caps,
                                          const std::vector<Destination>& destinations,
                                          const std::vector<BatchItem>& items,
                                          const BatchOptions& options) {
  KEYPORT_ASSIGN_OR_RETURN(p11::TokenInfo token, p11::token_info(*module, slot));
  Shared sh{caps, destinations, items, options, {}, std::vector<ItemResult>(items.size()), {}, {}};
  if (!options.previous_report.empty()) {
    for (const auto& j : read_report(options.previous_report)) {
      auto out = j.find("output");
      auto sha = j.find("sha256");
      auto outcome = j.find("outcome");
      if (out != j.end() && sha != j.end() && outcome != j.end() && out->is_string() &&
          sha->is_string() && outcome->is_string() &&
          (*outcome == "written" || *outcome == "skipped")) {
        sh.previous[out->get<std::string>()] = sha->get<std::string>();
      }
    }
  }
  // A batch killed outright (SIGKILL, power loss) can leave staged temporary files beside its
  // outputs; they never carry a final name, and this run replaces them.
  {
    std::map<fs::path, std::set<std::string>> by_dir;
    for (const auto& item : items) {
      by_dir[item.output.parent_path()].insert("." + item.output.filename().string() + ".tmp-");
    }
    for (const auto& [dir, prefixes] : by_dir) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec)) {
        std::string name = entry.path().filename().string();
        auto dot = name.find(".tmp-");
        if (dot != std::string::npos && prefixes.count(name.substr(0, dot + 5)))
          fs::remove(entry.path(), ec);
      }
    }
  }
  int jobs = std::max(1, std::min(options.jobs, 64));
  // Each staged file holds a descriptor until its group commits: keep every worker's group within
  // the process's descriptor limit (raised to the hard limit first), with room for the module's
  // own.
  sh.group_size = std::max<std::size_t>(1, options.commit_every);
  {
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
      }
      std::size_t room =
          rl.rlim_cur > 128 ? (rl.rlim_cur - 128) / static_cast<std::size_t>(jobs) : 1;
      sh.group_size = std::max<std::size_t>(1, std::min(sh.group_size, room));
    }
  }
  std::vector<Status> setup(static_cast<std::size_t>(jobs));
  if (jobs == 1) {
    worker(sh, module, slot, token, &setup[0]);
  } else {
    std::vector<std::thread> threads;
    for (int i = 0; i < jobs; ++i) {
      threads.emplace_back(
          [&, i] { worker(sh, module, slot, token, &setup[static_cast<std::size_t>(i)]); });
    }
    for (auto& t : threads)
      t.join();
  }
  for (const auto& s : setup) {
    if (!s)
      return tl::unexpected(s.error().with_context("opening a worker session"));
  }
  // Items never reached (cancelled) are reported as failed, so nothing is silently missing.
  for (std::size_t i = 0; i < sh.results.size(); ++i) {
    auto& r = sh.results[i];
    if (r.label.empty()) {
      r.label = items[i].key.label;
      r.key_type = items[i].key.spec.name();
      r.kid = destinations[items[i].destination].kid.url;
      r.output = items[i].output;
      r.outcome = ItemOutcome::kFailed;
      r.error = Error(ErrorCode::kInternal, "not attempted: the batch was interrupted");
    }
  }
  return std::move(sh.results);
}

}  // namespace keyport::transfer
