// SPDX-License-Identifier: Apache-2.0
#include "cli/common.h"

#include <cstdio>
#include <iostream>

#include "core/log.h"
#include "pkcs11/pin.h"

namespace keyport::cli {

void add_token_options(CLI::App& cmd, TokenOptions& opts, bool token_required) {
  auto* t = cmd.add_option("--token", opts.token,
                           "Token: a PKCS#11 URI (pkcs11:token=onprem) or a token label");
  if (token_required)
    t->required();
  cmd.add_option(
      "--pin-source", opts.pin_source,
      "Where the user PIN comes from: env:VAR or file:PATH (else $KEYPORT_PIN, else a prompt)");
  cmd.add_option("--pin", opts.pin,
                 "User PIN on the command line (visible in the process list; warns)");
}

void add_json_flag(CLI::App& cmd, GlobalOptions& g) {
  cmd.add_flag("--json", g.json, "Print machine-readable JSON on stdout");
}

Result<p11::Uri> token_uri(const std::string& token) {
  if (p11::looks_like_uri(token))
    return p11::Uri::parse(token);
  p11::Uri uri;
  if (!token.empty())
    uri.token = token;
  return uri;
}

p11::ModuleSelection module_selection(const GlobalOptions& g) {
  p11::ModuleSelection s;
  s.module = g.module_path;
  s.init_args = g.module_init_args;
  s.finalize = !g.no_finalize;
  return s;
}

Result<std::shared_ptr<p11::Module>> load_module(const GlobalOptions& g, const p11::Uri* uri) {
  return p11::load_module(module_selection(g), uri);
}

Result<TokenContext> open_token(const GlobalOptions& g, const TokenOptions& t, bool login) {
  TokenContext ctx;
  KEYPORT_ASSIGN_OR_RETURN(ctx.uri, token_uri(t.token));
  KEYPORT_ASSIGN_OR_RETURN(ctx.module, load_module(g, &ctx.uri));
  KEYPORT_ASSIGN_OR_RETURN(ctx.slot, p11::find_token(*ctx.module, ctx.uri));
  KEYPORT_ASSIGN_OR_RETURN(auto session, p11::Session::open(ctx.module, ctx.slot.id, true));
  ctx.session.emplace(std::move(session));
  if (login) {
    p11::PinRequest req;
    req.pin_source = t.pin_source;
    if (t.pin)
      req.pin_argv = std::make_shared<const SecretBytes>(SecretBytes::from_string(*t.pin));
    req.uri = &ctx.uri;
    req.what = "user PIN for token \"" + ctx.slot.token->label + "\"";
    auto st = p11::login_user(*ctx.session, ctx.token(), req,
                              [&g](const std::string& line) { note(g, line); });
    if (!st)
      return tl::unexpected(st.error().with_context("token \"" + ctx.slot.token->label + "\""));
  }
  return ctx;
}

void print_json(const Json& j) {
  std::cout << dump_json(j, 2) << std::endl;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i)
    width[i] = header[i].size();
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size())
        out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << out << '\n';
  };
  line(header);
  for (const auto& r : rows)
    line(r);
  std::cout.flush();
}

void note(const GlobalOptions& g, const std::string& line) {
  if (!g.quiet)
    std::cerr << line << std::endl;
}

}  // namespace keyport::cli
