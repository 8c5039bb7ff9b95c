# SPDX-License-Identifier: Apache-2.0
"""Managed HSM local RBAC and settings through Debian's azure.keyvault.administration.

Run by run_rbac.sh, which serves a managed-hsm vault (base URL https://kphsm.localhost:PORT) whose
access file has an admin token (every permission) and a "ci" token (none). The SDK runs with its
defaults (api-version 7.4-preview.1 for the administration clients) and a bearer token.
"""

from urllib.parse import urlparse

from azure.keyvault.administration import (
    KeyVaultAccessControlClient,
    KeyVaultDataAction,
    KeyVaultPermission,
    KeyVaultRoleScope,
    KeyVaultSettingsClient,
)
from azure.keyvault.keys import KeyClient

from interop_lib import TokenCredential, check, expect_http_error, need, resolve_to_loopback


URL = need("VAULT_URL")
HOST = urlparse(URL).hostname
resolve_to_loopback(HOST)

ADMIN = TokenCredential(need("ADMIN_TOKEN_FILE"))
CI = TokenCredential(need("CI_TOKEN_FILE"))
CRYPTO_USER = "21dbd100-6940-42c2-9190-5d6cb909625b"
ADMINISTRATOR = "a290e904-7015-4bba-90c8-60543313cdb4"


def main():
    access = KeyVaultAccessControlClient(URL, ADMIN)
    keys = KeyClient(URL, ADMIN)
    ci_keys = KeyClient(URL, CI)

    definitions = list(access.list_role_definitions(KeyVaultRoleScope.GLOBAL))
    built_in = {d.name: d for d in definitions if d.role_type == "AKVBuiltInRole"}
    check(len(built_in) == 9, f"list_role_definitions lists the 9 built-in roles ({len(built_in)})")
    user = built_in[CRYPTO_USER]
    check(user.role_name == "Managed HSM Crypto User", "Crypto User has its Azure name and id")
    check(KeyVaultDataAction.SIGN_HSM_KEY in user.permissions[0].data_actions,
          "Crypto User holds keys/sign/action")

    assignments = list(access.list_role_assignments(KeyVaultRoleScope.GLOBAL))
    admin_roles = {a.properties.role_definition_id.rsplit("/", 1)[-1]
                   for a in assignments if a.properties.principal_id == "admin"}
    check(ADMINISTRATOR in admin_roles and CRYPTO_USER in admin_roles,
          "the first start assigned admin the Administrator and Crypto User roles at /")

    expect_http_error(lambda: access.set_role_definition(KeyVaultRoleScope.GLOBAL, name=ADMINISTRATOR,
                                                         role_name="x"),
                      400, "set_role_definition refuses a built-in role's id")

    reader = access.set_role_definition(
        KeyVaultRoleScope.GLOBAL, role_name="py-key-reader", description="reads keys",
        permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY])])
    check(reader.role_type == "CustomRole" and reader.role_name == "py-key-reader",
          f"set_role_definition made a custom role ({reader.name})")
    fetched = access.get_role_definition(KeyVaultRoleScope.GLOBAL, reader.name)
    check(fetched.permissions[0].data_actions == [KeyVaultDataAction.READ_HSM_KEY],
          "get_role_definition returns its dataActions")

    keys.create_oct_key("py-one", size=256, hardware_protected=True)
    keys.create_oct_key("py-two", size=256, hardware_protected=True)
    expect_http_error(lambda: ci_keys.get_key("py-one"), 403, "ci may not read keys before any assignment")

    assignment = access.create_role_assignment("/keys/py-one", reader.id, "ci")
    check(assignment.properties.scope == "/keys/py-one",
          f"create_role_assignment at /keys/py-one ({assignment.name})")
    check(ci_keys.get_key("py-one").name == "py-one", "ci reads py-one through the assignment")
    expect_http_error(lambda: ci_keys.get_key("py-two"), 403, "the assignment does not cover py-two")

    listed = [a.name for a in access.list_role_assignments("/keys/py-one")]
    check(assignment.name in listed, "list_role_assignments at /keys/py-one lists it")
    got = access.get_role_assignment("/keys/py-one", assignment.name)
    check(got.properties.principal_id == "ci", "get_role_assignment returns it")

    expect_http_error(lambda: access.delete_role_definition(KeyVaultRoleScope.GLOBAL, reader.name),
                      409, "a role in use is not deleted")
    access.delete_role_assignment("/keys/py-one", assignment.name)
    expect_http_error(lambda: ci_keys.get_key("py-one"), 403, "delete_role_assignment revoked it")
    access.delete_role_definition(KeyVaultRoleScope.GLOBAL, reader.name)
    remaining = [d.name for d in access.list_role_definitions(KeyVaultRoleScope.GLOBAL)]
    check(reader.name not in remaining, "delete_role_definition removed the custom role")

    ci_access = KeyVaultAccessControlClient(URL, CI)
    expect_http_error(lambda: ci_access.create_role_assignment(KeyVaultRoleScope.GLOBAL, CRYPTO_USER, "ci"),
                      403, "ci may not assign itself a role")

    settings = KeyVaultSettingsClient(URL, ADMIN)
    listed = {s.name: s for s in settings.list_settings()}
    check("AllowKeyManagementOperationsThroughARM" in listed, "list_settings lists the ARM setting")
    setting = settings.get_setting("AllowKeyManagementOperationsThroughARM")
    check(setting.value == "false" and setting.type == "boolean", "get_setting: boolean, false")
    updated = settings.update_setting("AllowKeyManagementOperationsThroughARM", "true")
    check(updated.value == "true", "update_setting set it to true")
    check(settings.get_setting("AllowKeyManagementOperationsThroughARM").value == "true",
          "get_setting reads it back")
    expect_http_error(lambda: settings.update_setting("AllowKeyManagementOperationsThroughARM", "yes"),
                      400, "update_setting refuses a value that is not a boolean")
    expect_http_error(lambda: KeyVaultSettingsClient(URL, CI).update_setting(
        "AllowKeyManagementOperationsThroughARM", "false"), 403, "ci may not change settings")
    print("rbac_flow: passed", flush=True)


if __name__ == "__main__":
    main()
