// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/locate.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "core/log.h"

namespace keyport::p11 {
namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, std::string fallback = {}) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// A p11-kit config file (pkcs11.conf(5)): "name: value" lines, '#' comments at line start only,
// white space around both stripped. Files over 64 KiB are not configurations.
std::map<std::string, std::string> read_config(const fs::path& file) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (fs::file_size(file, ec) > 64 * 1024 || ec)
    return out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::string_view l = trim(line);
    if (l.empty() || l.front() == '#')
      continue;
    auto colon = l.find(':');
    if (colon == std::string_view::npos)
      continue;
    out[std::string(trim(l.substr(0, colon)))] = std::string(trim(l.substr(colon + 1)));
  }
  return out;
}

bool is_path(std::string_view module) {
  return module.find('/') != std::string_view::npos ||
         (module.size() > 3 && module.substr(module.size() - 3) == ".so") ||
         module.find(".so.") != std::string_view::npos;
}

Result<RegisteredModule> find_registered(std::string_view name) {
  auto all = registered_modules();
  std::string names;
  for (auto& m : all) {
    if (m.name == name)
      return m;
    names += (names.empty() ? "" : ", ") + m.name;
  }
  std::string dirs;
  for (const auto& d : p11kit_module_config_dirs())
    dirs += (dirs.empty() ? "" : ", ") + d.string();
  return make_error(ErrorCode::kNotFound, "no PKCS#11 module named \"" + std::string(name) +
                                              "\" is registered with p11-kit (registered: " +
                                              (names.empty() ? "none" : names) + "; read from " +
                                              dirs + "); give a path to the module's .so instead");
}

}  // namespace

std::vector<fs::path> p11kit_module_config_dirs() {
  if (std::string list = env_or("KEYPORT_P11KIT_CONFIG_DIRS"); !list.empty()) {
    std::vector<fs::path> dirs;
    std::stringstream ss(list);
    std::string d;
    while (std::getline(ss, d, ':')) {
      if (!d.empty())
        dirs.emplace_back(d);
    }
    return dirs;
  }
  // User configuration: pkcs11.conf(5) "user-config: none | merge | only" in the system file.
  std::string user_mode = "merge";
  auto system_conf = read_config(fs::path(KEYPORT_P11KIT_SYSTEM_CONFIG) / "pkcs11.conf");
  if (auto it = system_conf.find("user-config"); it != system_conf.end())
    user_mode = it->second;
  fs::path user = env_or("XDG_CONFIG_HOME").empty() ? fs::path(env_or("HOME", "/root")) / ".config"
                                                    : fs::path(env_or("XDG_CONFIG_HOME"));
  user /= "pkcs11/modules";
  std::vector<fs::path> dirs;
  if (user_mode != "only") {
    dirs.emplace_back(KEYPORT_P11KIT_MODULE_CONFIGS);
    dirs.emplace_back(fs::path(KEYPORT_P11KIT_SYSTEM_CONFIG) / "modules");
  }
  if (user_mode != "none")
    dirs.push_back(user);
  return dirs;
}

std::vector<RegisteredModule> registered_modules() {
  std::map<std::string, RegisteredModule> by_name;
  for (const auto& dir : p11kit_module_config_dirs()) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path& file = it->path();
      if (file.extension() != ".module")
        continue;
      auto conf = read_config(file);
      auto mod = conf.find("module");
      if (mod == conf.end() || mod->second.empty()) {
        log::debug("p11-kit config " + file.string() + " has no module: line; skipped");
        continue;
      }
      RegisteredModule m;
      m.name = file.stem().string();
      m.path = mod->second;
      if (fs::path(m.path).is_relative())
        m.path = (fs::path(KEYPORT_P11KIT_MODULE_PATH) / m.path).string();
      if (auto init = conf.find("x-init-reserved"); init != conf.end())
        m.init_reserved = init->second;
      m.config_file = file;
      by_name[m.name] = std::move(m);
    }
  }
  std::vector<RegisteredModule> out;
  for (auto& [name, m] : by_name)
    out.push_back(std::move(m));
  return out;
}

Result<ResolvedModule> resolve_module(const ModuleSelection& selection, const Uri* uri) {
  ResolvedModule r;
  std::optional<RegisteredModule> registered;
  auto by_name = [&](std::string_view name, const std::string& how) -> Status {
    KEYPORT_ASSIGN_OR_RETURN(auto m, find_registered(name));
    r.path = m.path;
    r.origin = how + ": p11-kit module " + m.name + " (" + m.config_file.string() + ")";
    registered = std::move(m);
    return {};
  };
  if (!selection.module.empty()) {
    if (is_path(selection.module)) {
      r.path = selection.module;
      r.origin = "--module";
    } else {
      KEYPORT_TRY(by_name(selection.module, "--module"));
    }
  } else if (uri != nullptr && uri->module_path) {
    r.path = *uri->module_path;
    r.origin = "the URI's module-path";
  } else if (uri != nullptr && uri->module_name) {
    KEYPORT_TRY(by_name(*uri->module_name, "the URI's module-name"));
  } else {
    r.path = Module::default_path();
    r.origin =
        env_or("KEYPORT_PKCS11_MODULE").empty() ? "the default module" : "$KEYPORT_PKCS11_MODULE";
  }
  if (selection.init_args) {
    r.init_args = *selection.init_args;
  } else if (std::string env = env_or("KEYPORT_PKCS11_INIT_ARGS"); !env.empty()) {
    r.init_args = env;
  } else if (registered && registered->init_reserved) {
    r.init_args = *registered->init_reserved;
  }
  return r;
}

Result<std::shared_ptr<Module>> load_module(const ModuleSelection& selection, const Uri* uri) {
  KEYPORT_ASSIGN_OR_RETURN(auto r, resolve_module(selection, uri));
  ModuleOptions opts;
  opts.finalize = selection.finalize;
  opts.init_args = r.init_args;
  auto m = Module::load(r.path, opts);
  if (!m && r.origin != "--module" && r.origin != "the default module")
    return tl::unexpected(m.error().with_context(r.origin));
  return m;
}

}  // namespace keyport::p11
