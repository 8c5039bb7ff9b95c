# SPDX-License-Identifier: Apache-2.0
"""Shared by the Python flows in this folder (sdk_flow, backup_flow, rbac_flow): the environment
their run*.sh driver sets, the checks that print what passed, a vault host that resolves to this
machine, and an access-file bearer token as an azure-core credential."""
import os
import socket
import sys
import time

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError


def need(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"environment variable {name} is not set (run this through its run*.sh driver)")
    return value


def check(condition, what):
    if not condition:
        raise AssertionError(f"check failed: {what}")
    print(f"ok: {what}", flush=True)


def expect_http_error(call, status, what):
    """Runs call(); it must fail with HTTP `status`. Returns the error."""
    try:
        call()
    except HttpResponseError as e:
        check(e.status_code == status, f"{what}: HTTP {e.status_code} ({e.message.splitlines()[0]})")
        return e
    raise AssertionError(f"check failed: {what}: the call succeeded")


def resolve_to_loopback(host):
    """`host` resolves to 127.0.0.1 in this process, as an /etc/hosts line would make it."""
    real = socket.getaddrinfo

    def local(name, *args, **kwargs):
        return real("127.0.0.1" if name == host else name, *args, **kwargs)

    socket.getaddrinfo = local


class TokenCredential:
    """An access-file bearer token (the first line of `path`) as an azure-core credential."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.token = f.readline().strip()

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)
