// SPDX-License-Identifier: Apache-2.0
// A tiny leveled logger. Messages go to stderr (or a sink set by tests). Nothing secret is ever
// passed to it: the PKCS#11 layer logs function names, return values and attribute *types*.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace keyport::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Default kWarn; KEYPORT_LOG=debug|info|warn|error|off in the environment overrides it at start.
void set_level(Level level);
Level level();
bool enabled(Level level);

using Sink = std::function<void(Level, std::string_view)>;
// Replaces the sink (nullptr restores stderr). Not thread-safe against concurrent logging.
void set_sink(Sink sink);

void write(Level level, std::string_view message);
inline void debug(std::string_view m) {
  write(Level::kDebug, m);
}
inline void info(std::string_view m) {
  write(Level::kInfo, m);
}
inline void warn(std::string_view m) {
  write(Level::kWarn, m);
}
inline void error(std::string_view m) {
  write(Level::kError, m);
}

}  // namespace keyport::log
