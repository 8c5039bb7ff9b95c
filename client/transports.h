// SPDX-License-Identifier: Apache-2.0
// The two transports of vault::Client (internal to keyport::client).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"

namespace keyport::vault {

// `target` with "api-version=<kClientApiVersion>" added when it names none.
std::string with_api_version(const std::string& target);

// Splits "a=1&b=x%2Fy" into decoded name/value pairs ('+' is a space, as in a form).
std::vector<std::pair<std::string, std::string>> decode_query(std::string_view query);

Result<std::unique_ptr<Transport>> make_https_transport(HttpsOptions options);
Result<std::unique_ptr<Transport>> make_folder_transport(const std::filesystem::path& dir,
                                                         FolderOptions options);

}  // namespace keyport::vault
