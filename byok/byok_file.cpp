// SPDX-License-Identifier: Apache-2.0
#include "byok/byok_file.h"
