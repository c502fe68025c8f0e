#!/usr/bin/env bash
# What the README's two commands need on a fresh machine, checked before anything compiles.
# Sourced by scripts/test.sh and scripts/demo.sh:
#   source scripts/prereqs.sh; prereqs_build; prereqs_tests
# Missing Debian packages are installed with apt-get (as root, or through passwordless sudo),
# missing Rust targets with rustup; where that is impossible it stops at once and prints the
# exact command to run. Only a Rust toolchain and python3 are assumed.

PREREQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

prereq_stop() {
  printf 'error: %s\n' "$1" >&2
  [ -n "${2:-}" ] && printf '  run: %s\n' "$2" >&2
  exit 1
}

# A package is there when dpkg says it is installed (Debian), or else when its command is on PATH.
# Each spec is `package:command`; the command is what other systems are checked by.
prereq_missing() {
  local spec pkg cmd
  for spec in "$@"; do
    pkg="${spec%%:*}"
    cmd="${spec#*:}"
    if command -v dpkg-query >/dev/null 2>&1; then
      # Not `dpkg -s`: it succeeds for a removed package whose config files remain.
      [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] \
        || printf '%s ' "$pkg"
    elif [ -n "$cmd" ] && ! command -v "$cmd" >/dev/null 2>&1; then
      printf '%s ' "$pkg"
    fi
  done
}

prereq_apt() {
  local missing
  missing="$(prereq_missing "$@")"
  [ -z "$missing" ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    prereq_stop "missing: ${missing}(Debian package names; install their equivalents)" \
      "your package manager's install of: ${missing}"
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      # shellcheck disable=SC2086
      prereq_stop "missing Debian packages: ${missing}" "sudo apt-get install -y ${missing}"
    fi
  fi
  echo "==> installing Debian packages: ${missing}" >&2
  $sudo apt-get update -qq >&2 || prereq_stop "apt-get update failed" "sudo apt-get update"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends ${missing} >&2 \
    || prereq_stop "apt-get install failed" "sudo apt-get install -y ${missing}"
}

prereq_rust_target() {
  local target="$1"
  command -v rustup >/dev/null 2>&1 || {
    # A distribution toolchain cannot add targets; say so only if the target is really absent.
    rustc --print sysroot >/dev/null 2>&1 && [ -d "$(rustc --print sysroot)/lib/rustlib/$target" ] && return 0
    prereq_stop "the Rust target $target is not installed and there is no rustup to add it" \
      "install Rust with rustup (https://rustup.rs), then: rustup target add $target"
  }
  rustup target list --installed 2>/dev/null | grep -qx "$target" && return 0
  echo "==> rustup target add $target" >&2
  rustup target add "$target" >&2 || prereq_stop "could not add the Rust target $target" "rustup target add $target"
}

# Everything that compiles thumbctl: cargo, and the C codecs' build tools (cmake and nasm
# build the bundled libjpeg-turbo; lambda-image/APT_PACKAGES lists the engine's own).
prereqs_build() {
  command -v cargo >/dev/null 2>&1 \
    || prereq_stop "no Rust toolchain (cargo) on PATH" "curl --proto '=https' -sSf https://sh.rustup.rs | sh"
  command -v python3 >/dev/null 2>&1 || prereq_stop "no python3 on PATH" "sudo apt-get install -y python3"
  # libde265-dev: the HEVC decoder that the engine's libheif (built from source) links for
  # HEIC input on this machine; the static musl build compiles its own (lambda-image/Dockerfile).
  local specs=("cmake:cmake" "nasm:nasm" "ca-certificates:" "libde265-dev:")
  local p
  if [ -f "$PREREQ_ROOT/lambda-image/APT_PACKAGES" ]; then
    while read -r p; do
      case "$p" in ''|'#'*) ;; *) [[ " ${specs[*]} " == *" $p:"* ]] || specs+=("$p:$p") ;; esac
    done <"$PREREQ_ROOT/lambda-image/APT_PACKAGES"
  fi
  # moto runs in a venv; Debian's python3 has no venv/ensurepip without python3-venv.
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    specs+=("python3-venv:")
  fi
  prereq_apt "${specs[@]}"
}

# What the tests add: the static musl build of `build-image --local`, the OCI registry its
# push goes to (docker-registry, with htpasswd from apache2-utils for its auth).
prereqs_tests() {
  # chromium and its WebDriver: the gallery's test drives a real headless browser.
  # libgs-common: real Adobe RGB and CMYK ICC profiles for the colour-management test.
  # man-db: the manual-page test renders `thumbctl man` with `man -l`.
  # shellcheck: the smoke script's test lints it.
  prereq_apt "musl-tools:musl-gcc" "docker-registry:docker-registry" "apache2-utils:htpasswd" \
    "chromium:chromium" "chromium-driver:chromedriver" "libgs-common:" "man-db:man" \
    "shellcheck:shellcheck"
  prereq_rust_target x86_64-unknown-linux-musl
}
