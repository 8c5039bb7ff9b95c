// SPDX-License-Identifier: Apache-2.0
// Managed HSM full backup, full restore and selective key restore (docs/vault.md "Full backup and
// restore"), to a folder standing in for the Azure Blob Storage container. A full backup is one
// BackupKey blob per key (vault_backup.cpp: key material only wrapped by the backup domain's key,
// every byte under its MAC) and a manifest, in a new folder mhsm-NAME-YYYYMMDDHHMMSS.
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <mutex>
#include <shared_mutex>

#include "core/file_io.h"
#include "core/random.h"
#include "core/strings.h"
#include "vault/vault_impl.h"

namespace keyport::vault {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifestFile = "keyport-full-backup.json";
constexpr const char* kManifestFormat = "keyport-full-backup-1";
constexpr std::size_t kMaxBlobFile = 4u << 20;

bool valid_container(std::string_view c) {
  if (c.size() < 3 || c.size() > 63 || c.front() == '-' || c.back() == '-' ||
      c.find("--") != std::string_view::npos) {
    return false;
  }
  for (char ch : c) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) {
      return false;
    }
  }
  return true;
}

bool valid_storage_host(std::string_view h) {
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-' ||
      h.find("..") != std::string_view::npos) {
    return false;
  }
  for (char ch : h) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.')) {
      return false;
    }
  }
  return true;
}

// A folder name of this vault's backups, or one a caller names for restore: letters, digits, '-'.
bool valid_folder(std::string_view f) {
  if (f.empty() || f.size() > 128) {
    return false;
  }
  for (char ch : f) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-')) {
      return false;
    }
  }
  return true;
}

std::string utc_stamp(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

}  // namespace

Result<fs::path> Vault::Impl::storage_container(const Json& sas) {
  if (!sas.is_object()) {
    return bad_parameter("The SAS token parameters must be an object {storageResourceUri, token}.");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string uri, string_member(sas, "storageResourceUri"));
  const Json* sas_token = member(sas, "token");
  const Json* mi = member(sas, "useManagedIdentity");
  const bool managed_identity = mi != nullptr && mi->is_boolean() && mi->get<bool>();
  if (!managed_identity && (sas_token == nullptr || !sas_token->is_string() ||
                            sas_token->get_ref<const std::string&>().empty())) {
    return bad_parameter(
        "token (a SAS token for the container) is required unless useManagedIdentity is true.");
  }
  const std::string prefix = "https://";
  const std::string lower = ascii_lower(uri);
  const auto slash = lower.find('/', prefix.size());
  if (lower.rfind(prefix, 0) != 0 || slash == std::string::npos) {
    return bad_parameter(
        "storageResourceUri must be https://ACCOUNT.blob.core.windows.net/CONTAINER.");
  }
  std::string account = lower.substr(prefix.size(), slash - prefix.size());
  std::string container = lower.substr(slash + 1);
  while (!container.empty() && container.back() == '/') {
    container.pop_back();
  }
  if (!valid_storage_host(account) || !valid_container(container)) {
    return bad_parameter(
        "storageResourceUri must be https://ACCOUNT.blob.core.windows.net/CONTAINER (a container "
        "name is 3-63 lowercase letters, digits and single hyphens).");
  }
  if (backup_storage.empty()) {
    return bad_parameter(
        "This simulated Managed HSM has no backup storage: start it with keyport vault serve "
        "--backup-storage DIR (the folder standing in for Azure Blob Storage).");
  }
  return backup_storage / account / container;
}

Json Vault::Impl::start_job() {
  return Json{{"status", "InProgress"}, {"statusDetails", nullptr},
              {"error", nullptr},       {"startTime", now()},
              {"endTime", nullptr},     {"jobId", hex_encode(random_bytes(16))}};
}

Json Vault::Impl::finish_job(Json job, const Result<std::string>& outcome) {
  // The first answer is the job as Azure accepts it (InProgress, as the 202 always says): the
  // outcome is read from the status route, which is where clients look for it.
  Json accepted = job;
  accepted.erase("azureStorageBlobContainerUri");
  job["endTime"] = now();
  if (outcome) {
    job["status"] = "Succeeded";
    job["statusDetails"] = *outcome;
  } else {
    job["status"] = "Failed";
    job["statusDetails"] = outcome.error().message();
    job["error"] = Json{{"code", outcome.error().detail().empty() ? std::string("BadParameter")
                                                                  : outcome.error().detail()},
                        {"message", outcome.error().message()},
                        {"innererror", nullptr}};
  }
  std::lock_guard<std::mutex> lock(jobs_mutex);
  if (jobs.size() >= 1000) {
    jobs.erase(jobs.begin());
  }
  const std::string id = job["jobId"].get<std::string>();
  jobs[id] = std::move(job);
  return accepted;
}

Result<Json> Vault::Impl::full_backup(Op& op, const Json& params) {
  if (config.flavor != Flavor::kManagedHsm) {
    return bad_parameter("Full backup is a Managed HSM operation; this vault is a Key Vault.");
  }
  KEYPORT_ASSIGN_OR_RETURN(fs::path container, storage_container(params));
  const std::string uri = params.value("storageResourceUri", "");
  Json job = start_job();
  auto outcome = [&]() -> Result<std::string> {
    std::error_code ec;
    if (!fs::is_directory(container, ec)) {
      return make_error(ErrorCode::kNotFound, "ContainerNotFound",
                        "The storage container does not exist (" + container.string() + ").");
    }
    const std::string folder = "mhsm-" + config.name + "-" + utc_stamp(now());
    const fs::path target = container / folder;
    if (::mkdir(target.c_str(), 0700) != 0) {
      return make_error(ErrorCode::kAlreadyExists, std::string(kConflict),
                        "The backup folder " + folder + " exists already (one backup per second).");
    }
    ::mkdir((target / "keys").c_str(), 0700);
    KEYPORT_ASSIGN_OR_RETURN(auto all, store->keys());
    Json names = Json::array();
    for (const auto& k : all) {
      if (k.deleted()) {
        continue;
      }
      Op key_op;
      KEYPORT_ASSIGN_OR_RETURN(Json blob, backup_key(key_op, k.name));
      KEYPORT_TRY(write_file_atomic(target / "keys" / (k.name + ".blob"),
                                    blob["value"].get<std::string>() + "\n",
                                    WriteOptions{false, 0600}));
      names.push_back(Json{{"name", k.name}, {"file", "keys/" + k.name + ".blob"}});
    }
    const Json manifest{{"format", kManifestFormat},
                        {"vault", config.name},
                        {"base_url", config.base_url},
                        {"backup_domain", config.backup_domain},
                        {"created", now()},
                        {"keys", names}};
    KEYPORT_TRY(write_file_atomic(target / kManifestFile, manifest.dump(1) + "\n",
                                  WriteOptions{false, 0600}));
    job["azureStorageBlobContainerUri"] =
        (uri.back() == '/' ? uri.substr(0, uri.size() - 1) : uri) + "/" + folder;
    op.note = "full backup of " + std::to_string(names.size()) + " key(s) to " + folder;
    return std::to_string(names.size()) + " key(s) backed up to " + folder + ".";
  }();
  return finish_job(std::move(job), outcome);
}

Result<Json> Vault::Impl::full_restore(Op& op, const Json& params, std::string_view only_key) {
  if (config.flavor != Flavor::kManagedHsm) {
    return bad_parameter("Full restore is a Managed HSM operation; this vault is a Key Vault.");
  }
  if (!params.is_object()) {
    return bad_parameter("The request body must be a JSON object.");
  }
  const Json* sas = member(params, "sasTokenParameters");
  if (sas == nullptr) {
    return bad_parameter("sasTokenParameters is required.");
  }
  KEYPORT_ASSIGN_OR_RETURN(fs::path container, storage_container(*sas));
  const char* folder_member = only_key.empty() ? "folderToRestore" : "folder";
  KEYPORT_ASSIGN_OR_RETURN(std::string folder, string_member(params, folder_member));
  if (!valid_folder(folder)) {
    return bad_parameter(std::string(folder_member) +
                         " must be the name of a backup folder (letters, digits, hyphens).");
  }
  Json job = start_job();
  auto outcome = [&]() -> Result<std::string> {
    const fs::path target = container / folder;
    KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(target / kManifestFile, 1u << 20));
    KEYPORT_ASSIGN_OR_RETURN(Json manifest, parse_json_strict(text));
    if (manifest.value("format", "") != kManifestFormat || !manifest.contains("keys") ||
        !manifest["keys"].is_array()) {
      return bad_parameter("The folder does not hold a keyport full backup (" +
                           std::string(kManifestFile) + ").");
    }
    // Every blob first: read, authentic, and its name free. Nothing is restored unless all are.
    std::vector<std::pair<std::string, Bytes>> blobs;
    for (const auto& k : manifest["keys"]) {
      const std::string name = k.value("name", "");
      if (!valid_key_name(name)) {
        return bad_parameter("The backup's manifest names an invalid key.");
      }
      if (!only_key.empty() && !iequals(name, only_key)) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(std::string b64,
                               read_text_file(target / "keys" / (name + ".blob"), kMaxBlobFile));
      auto blob = base64url_decode(trim(b64));
      if (!blob) {
        return bad_parameter("The backup blob of " + name + " is not base64url.");
      }
      {
        std::shared_lock<std::shared_mutex> objects(objects_mutex);
        KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
        Op check;
        KEYPORT_ASSIGN_OR_RETURN(BackupContents contents, authentic_backup(check, *lease, *blob));
        if (!iequals(contents.name, name)) {
          return bad_parameter("The backup blob of " + name + " holds another key.");
        }
      }
      KEYPORT_ASSIGN_OR_RETURN(auto existing, store->find_key(name));
      if (existing) {
        return make_error(
            ErrorCode::kAlreadyExists, std::string(kConflict),
            "A key named " + existing->name + " exists already; nothing was restored.");
      }
      blobs.emplace_back(name, std::move(*blob));
    }
    if (!only_key.empty() && blobs.empty()) {
      return make_error(ErrorCode::kNotFound, std::string(kKeyNotFound),
                        "The backup holds no key named " + std::string(only_key) + ".");
    }
    std::size_t restored = 0;
    for (const auto& [name, blob] : blobs) {
      Op key_op;
      auto r = restore_blob(key_op, blob);
      if (!r) {
        return tl::unexpected(Error(r.error().code(), "restored " + std::to_string(restored) +
                                                          " of " + std::to_string(blobs.size()) +
                                                          " key(s), then " + name +
                                                          " failed: " + r.error().message())
                                  .with_detail(r.error().detail()));
      }
      ++restored;
    }
    op.note = "restored " + std::to_string(restored) + " key(s) from " + folder;
    return std::to_string(restored) + " key(s) restored from " + folder + ".";
  }();
  return finish_job(std::move(job), outcome);
}

// ---------------------------------------------------------------------------------------------

Result<Json> Vault::Impl::job_status(std::string_view job_id) {
  std::lock_guard<std::mutex> lock(jobs_mutex);
  auto it = jobs.find(std::string(job_id));
  if (it == jobs.end()) {
    return make_error(ErrorCode::kNotFound, "JobNotFound",
                      "No backup or restore job " + std::string(job_id) +
                          " (jobs are kept in memory until the vault restarts).");
  }
  return it->second;
}

Result<Json> Vault::begin_full_backup(const CallContext& ctx, const Json& params) {
  return m_impl->run(ctx, "FullBackup", [&](Op& op) { return m_impl->full_backup(op, params); });
}

Result<Json> Vault::full_backup_status(const CallContext& ctx, std::string_view job_id) {
  return m_impl->run(ctx, "FullBackupStatus", [&](Op&) { return m_impl->job_status(job_id); });
}

Result<Json> Vault::begin_full_restore(const CallContext& ctx, const Json& params) {
  return m_impl->run(ctx, "FullRestoreOperation",
                     [&](Op& op) { return m_impl->full_restore(op, params, ""); });
}

Result<Json> Vault::begin_selective_key_restore(const CallContext& ctx, std::string_view name,
                                                const Json& params) {
  return m_impl->run(ctx, "SelectiveKeyRestoreOperation", [&](Op& op) {
    op.name = std::string(name);
    return m_impl->full_restore(op, params, name);
  });
}

Result<Json> Vault::restore_status(const CallContext& ctx, std::string_view job_id) {
  return m_impl->run(ctx, "RestoreStatus", [&](Op&) { return m_impl->job_status(job_id); });
}

}  // namespace keyport::vault
