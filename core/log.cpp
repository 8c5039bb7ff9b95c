// SPDX-License-Identifier: Apache-2.0
#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace keyport::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("KEYPORT_LOG");
  if (env == nullptr)
    return Level::kWarn;
  if (std::strcmp(env, "debug") == 0)
    return Level::kDebug;
  if (std::strcmp(env, "info") == 0)
    return Level::kInfo;
  if (std::strcmp(env, "error") == 0)
    return Level::kError;
  if (std::strcmp(env, "off") == 0)
    return Level::kOff;
  return Level::kWarn;
}

std::atomic<Level>& current() {
  static std::atomic<Level> level{initial_level()};
  return level;
}

std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}

Sink& sink() {
  static Sink s;
  return s;
}

const char* prefix(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "";
  }
  return "";
}

}  // namespace

void set_level(Level level) {
  current().store(level);
}
Level level() {
  return current().load();
}
bool enabled(Level l) {
  return l >= current().load() && l != Level::kOff;
}

void set_sink(Sink s) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  sink() = std::move(s);
}

void write(Level l, std::string_view message) {
  if (!enabled(l))
    return;
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (sink()) {
    sink()(l, message);
    return;
  }
  std::fprintf(stderr, "keyport: %s: %.*s\n", prefix(l), static_cast<int>(message.size()),
               message.data());
}

}  // namespace keyport::log
