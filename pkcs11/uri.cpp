// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/uri.h"
