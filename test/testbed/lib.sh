# Shared by the test-bed scripts (sourced, not run). The caller defines step() and die().

# ensure_packages PKG...: installs the Debian packages that are not installed yet (one apt-get update).
ensure_packages() {
  local missing=() pkg status
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == installed ]] || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    step "packages: all $# installed"
    return 0
  fi
  step "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  apt-get update -qq || die "apt-get update failed (Debian package mirror unreachable?)"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
}
