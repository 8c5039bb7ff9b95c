/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyport.h - the C API of libkeyport (C99; usable from C, C++, Rust, Go and Python FFIs).
 *
 * What it does: open a PKCS#11 module and a token, generate portable keys in the token, list
 * them, export a token key to Azure's BYOK transfer format (.byok, the key wrapped inside the
 * token), inspect a .byok file offline, wrap a key held in a file, and, on an enclave's side,
 * verify a Secure Key Release response and unwrap the released key into a token or into memory.
 * docs/embedding.md has a worked example, the ABI policy and the error mapping.
 *
 * Conventions (every function follows them):
 * - Handles (kp_module, kp_token, kp_byok, kp_release, kp_error) are opaque. Each has one
 *   *_free / *_close function; passing NULL to it is a no-op.
 * - Every fallible function returns a kp_status: KP_OK (0) or the category of the failure, which
 *   is the number the `keyport` CLI exits with for the same failure. When `err` is not NULL and
 *   the call fails, *err receives a kp_error the caller frees with kp_error_free; on success *err
 *   is set to NULL. Output parameters are written only on success.
 * - Strings are UTF-8 and NUL-terminated. Strings and buffers the library returns are owned by the
 *   caller and freed with kp_free; secret buffers (key material) with kp_free_secret, which wipes
 *   them first. Inputs are only read during the call; the library keeps no pointer to them.
 * - No C++ type and no exception crosses this interface.
 * - Thread safety: every function may be called from any thread. A kp_module may be shared by
 *   threads (its tokens are independent); a kp_token is one PKCS#11 session and must not be used
 *   by two threads at once (open one token per thread); kp_byok, kp_release and kp_error are
 *   immutable once returned and may be read from several threads.
 */
#ifndef KEYPORT_KEYPORT_H
#define KEYPORT_KEYPORT_H

#include <stddef.h>
#include <stdint.h>

#if defined(KEYPORT_BUILDING_LIBRARY) && defined(__GNUC__)
#define KP_API __attribute__((visibility("default")))
#else
#define KP_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version: the N of libkeyport.so.N. It changes only when a function's signature or
 * meaning changes incompatibly (docs/embedding.md "ABI policy"). */
#define KP_ABI_VERSION 0

/* Status codes: the categories of failure, numbered as the CLI's exit codes. */
typedef enum kp_status {
  KP_OK = 0,
  KP_ERR_INTERNAL = 1,      /* a bug or an unexpected condition */
  KP_ERR_BAD_INPUT = 3,     /* an argument, file or option value is malformed or inconsistent */
  KP_ERR_HSM_OR_CRYPTO = 4, /* a PKCS#11 call or a cryptographic operation failed (unwrap
                               failures are all this one, with one message: no oracle) */
  KP_ERR_NOT_FOUND = 5,     /* token, key, file or object does not exist */
  KP_ERR_EXISTS = 6,        /* the output file or label exists */
  KP_ERR_AUTH = 7,          /* wrong or missing PIN, permission denied */
  KP_ERR_UNSUPPORTED = 8,   /* valid, but the target or the module cannot do it */
  KP_ERR_DENIED = 9,        /* a release policy or an attestation check said no */
  KP_ERR_IO = 10,           /* file system I/O failed */
  KP_ERR_PRECONDITION = 12, /* refused until an earlier step is done */
  KP_ERR_UNAVAILABLE = 13   /* a remote service failed on its side */
} kp_status;

typedef struct kp_error kp_error;
typedef struct kp_module kp_module;
typedef struct kp_token kp_token;
typedef struct kp_byok kp_byok;
typedef struct kp_release kp_release;

/* --- library ------------------------------------------------------------------------------- */

/* The library's version, "0.1.0". Static storage: do not free. */
KP_API const char* kp_version(void);
/* KP_ABI_VERSION of the library actually loaded (compare with the header's). */
KP_API int kp_abi_version(void);
/* Frees a string or buffer the library returned (not secrets: kp_free_secret). NULL: no-op. */
KP_API void kp_free(void* p);
/* Wipes `len` bytes at `p`, then frees it. For key material the library returned. */
KP_API void kp_free_secret(uint8_t* p, size_t len);

/* --- errors -------------------------------------------------------------------------------- */

/* The category, the message ("what failed: why", never secret values) and the stable sub-code
 * ("" when none: a Key Vault error code, a linter finding, a release check such as REL-CHAIN).
 * The strings live as long as the error. */
KP_API kp_status kp_error_status(const kp_error* e);
KP_API const char* kp_error_message(const kp_error* e);
KP_API const char* kp_error_detail(const kp_error* e);
KP_API void kp_error_free(kp_error* e);

/* --- modules and tokens -------------------------------------------------------------------- */

/* Loads a PKCS#11 module: a path to a .so, or a p11-kit registration name ("softhsm2"); NULL or
 * "" is the build's default module. `init_args` is the module's C_Initialize string (NSS softoken
 * needs one), or NULL. A module is initialised once per process per path, and finalised when its
 * last kp_module and kp_token are closed. Thread-safe. */
KP_API kp_status kp_module_open(const char* module, const char* init_args, kp_module** out,
                                kp_error** err);
KP_API void kp_module_close(kp_module* module);

/* Asks the application for a PIN: write at most `capacity` bytes to `buf`, set *len, return 0; any
 * other return refuses (KP_ERR_AUTH). `ctx` is the pointer given to kp_token_open. The library
 * wipes `buf` after use. Called on the thread that called kp_token_open. */
typedef int (*kp_pin_callback)(void* ctx, const char* token_label, char* buf, size_t capacity,
                               size_t* len);

/* Opens a read-write session on a token and logs in. `token` is a PKCS#11 URI (RFC 7512,
 * "pkcs11:token=vault") or a plain token label. The PIN comes from `pin_source` when not NULL
 * ("env:NAME" or "file:PATH", as the CLI's --pin-source), else from `pin_cb`, else from the
 * URI's pin-source / the KEYPORT_PIN environment variable; never a prompt. Tokens with a
 * protected authentication path log in on their PIN pad. The token keeps `module` loaded. */
KP_API kp_status kp_token_open(kp_module* module, const char* token, const char* pin_source,
                               kp_pin_callback pin_cb, void* pin_ctx, kp_token** out,
                               kp_error** err);
KP_API void kp_token_close(kp_token* token);

/* --- keys in the token --------------------------------------------------------------------- */

/* Generates a portable key: CKA_SENSITIVE and CKA_EXTRACTABLE true, so that it leaves the token
 * only wrapped. `spec`: "RSA-2048", "RSA-3072", "RSA-4096", "EC-P256", "EC-P384", "EC-P521",
 * "EC-P256K", "AES-128", "AES-192", "AES-256" (any case). KP_ERR_EXISTS when the label is
 * taken, KP_ERR_UNSUPPORTED when the token cannot make that type. `info_json` (optional, kp_free)
 * gets {"label", "id" (hex), "type" ("rsa-3072", "ec-p256", "aes-256": the CLI's names), "class",
 * "sensitive", "extractable", "has_public"}. */
KP_API kp_status kp_key_generate(kp_token* token, const char* spec, const char* label,
                                 char** info_json, kp_error** err);

/* Every private and secret key on the token as a JSON array of {"label", "id", "type", "class",
 * "sensitive", "extractable", "has_public"}. kp_free the string. */
KP_API kp_status kp_key_list(kp_token* token, char** keys_json, kp_error** err);

/* --- export to .byok ----------------------------------------------------------------------- */

typedef struct kp_export_options {
  /* sizeof(kp_export_options): lets later versions add members at the end. Required. */
  size_t struct_size;
  /* The key in the token: a PKCS#11 URI (object=, id=, type=) or a label. Required. */
  const char* key;
  /* The target's key-exchange key (KEK): PEM or DER SubjectPublicKeyInfo, or a JWK / KeyBundle
   * (JSON). Required. */
  const uint8_t* kek;
  size_t kek_len;
  /* The KEK's kid (https://NAME.vault.azure.net/keys/KEK/VERSION). NULL: the JWK's "kid". */
  const char* kid;
  /* "CKM_RSA_AES_KEY_WRAP" (NULL: default), or "RSA_AES_KEY_WRAP_256" / "RSA_AES_KEY_WRAP_384". */
  const char* enc;
  /* "auto" (NULL), "native" (CKM_RSA_AES_KEY_WRAP) or "composite" (RFC 5649 + RSA-OAEP). */
  const char* strategy;
  /* "key-vault" or "managed-hsm" for kid hosts that are not Azure's; NULL: from the kid. */
  const char* target;
} kp_export_options;

/* Wraps the key inside the token to the KEK and makes the .byok file (in memory). Checks first
 * that the target accepts the key type. KP_ERR_NOT_FOUND (no such key), KP_ERR_BAD_INPUT (KEK,
 * kid), KP_ERR_UNSUPPORTED (target or token cannot). The token is used only during the call. */
KP_API kp_status kp_export_byok(kp_token* token, const kp_export_options* options, kp_byok** out,
                                kp_error** err);

/* Wraps a key held in a file (PKCS#8 / PKCS#1 / SEC1 PEM or DER, or a raw 16/24/32-byte AES key
 * file) in software. `passphrase` for an encrypted file, else NULL. `target` as above. */
KP_API kp_status kp_wrap_key_file(const uint8_t* key_file, size_t key_file_len,
                                  const char* passphrase, const uint8_t* kek, size_t kek_len,
                                  const char* kid, const char* target, kp_byok** out,
                                  kp_error** err);

/* The .byok file's bytes: at most `capacity` are copied to `buf`; *len receives the file's size.
 * KP_ERR_BAD_INPUT (nothing copied) when `capacity` is too small: call with buf NULL to ask. */
KP_API kp_status kp_byok_copy(const kp_byok* byok, uint8_t* buf, size_t capacity, size_t* len,
                              kp_error** err);
/* Writes the file at `path` atomically (a temporary file in the same folder, fsynced, then
 * published): never half-written; an existing file is kept (KP_ERR_EXISTS) unless `overwrite`. */
KP_API kp_status kp_byok_write(const kp_byok* byok, const char* path, int overwrite,
                               kp_error** err);
/* {"kid", "target", "type", "enc", "strategy", "generator", "az_import"} (kp_free). */
KP_API kp_status kp_byok_info(const kp_byok* byok, char** info_json, kp_error** err);
KP_API void kp_byok_free(kp_byok* byok);

/* --- inspect ------------------------------------------------------------------------------- */

/* Checks a .byok file offline (docs/byok-inspect.md) and returns the report as JSON (what
 * `keyport byok inspect --json` prints; no key material) and the number of findings of each
 * severity (any of the counters may be NULL). `kek` (optional, NULL/0) enables the KEK checks.
 * Returns KP_OK whenever the report was made, whatever it found. */
KP_API kp_status kp_byok_inspect(const uint8_t* file, size_t file_len, const uint8_t* kek,
                                 size_t kek_len, char** report_json, size_t* errors,
                                 size_t* warnings, size_t* infos, kp_error** err);

/* --- Secure Key Release: the enclave's side ----------------------------------------------- */

/* Verifies a release response (the HTTP body {"value": "<JWS>"} or the bare JWS): its signature
 * with the x5c leaf, the chain to `vault_ca_pem`, the leaf's name against `vault_host` (NULL: not
 * checked) and the request nonce (`nonce`, NULL: not checked). KP_ERR_HSM_OR_CRYPTO (REL-CHAIN,
 * REL-SIGNATURE, REL-HEADER), KP_ERR_BAD_INPUT (REL-PAYLOAD, REL-KEY-HSM), KP_ERR_DENIED
 * (REL-NONCE). */
KP_API kp_status kp_release_verify(const char* response, const char* vault_ca_pem,
                                   const char* vault_host, const char* nonce, kp_release** out,
                                   kp_error** err);
/* {"kid", "kty", "key": <the released key's public JWK>, "signer"} (kp_free). */
KP_API kp_status kp_release_info(const kp_release* release, char** info_json, kp_error** err);
/* Unwraps the released key with the runtime private key in software (PKCS#8 or PKCS#1, PEM or
 * DER). *material (kp_free_secret with *material_len) is PKCS#8 DER for RSA and EC keys, the raw
 * key for AES; checked against the response's public key. `runtime_kid` NULL: the key's RFC 7638
 * thumbprint. */
KP_API kp_status kp_release_unwrap(const kp_release* release, const uint8_t* runtime_private_key,
                                   size_t runtime_private_key_len, const char* runtime_kid,
                                   uint8_t** material, size_t* material_len, kp_error** err);
/* Makes the enclave's runtime key in the token under `label`: RSA-2048, the private half
 * sensitive and not extractable (unwrap and decrypt only). `public_jwk` (kp_free) gets its public
 * JWK with "kid" set to its RFC 7638 thumbprint, the kid a release is wrapped to. KP_ERR_EXISTS
 * when the label is taken. */
KP_API kp_status kp_runtime_key_generate(kp_token* token, const char* label, char** public_jwk,
                                         kp_error** err);
/* Unwraps the released key into the token with the token's runtime key (`runtime_key`: URI or
 * label of an RSA private key), stored sensitive and not extractable under `label` (NULL:
 * "released-<version>"), checked against the response without reading secrets. `stored_json`
 * (optional, kp_free): {"label", "id", "type", "public_key_sha256" | "kcv"}. */
KP_API kp_status kp_release_unwrap_into_token(kp_token* token, const kp_release* release,
                                              const char* runtime_key, const char* runtime_kid,
                                              const char* label, char** stored_json,
                                              kp_error** err);
KP_API void kp_release_free(kp_release* release);

#ifdef __cplusplus
}
#endif

#endif /* KEYPORT_KEYPORT_H */
