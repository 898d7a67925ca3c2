#!/usr/bin/env bash
# Builds the container images ikt/<name>:dev with no registry: the binaries are built on the host as
# static executables and copied into `FROM scratch` images, so `docker build` pulls nothing and the
# same Dockerfiles build unchanged on a machine that does have a registry.
#
# usage: deploy/docker/build.sh [--no-cargo] [IMAGE...]
#   IMAGE       one or more of: s-cscf-agent p-cscf-agent ims-lab sip-relay sipp kamailio (default:
#               all whose binary exists; sipp and kamailio are made from the host's Debian packages
#               sip-tester and kamailio: the program, its libraries, and for Kamailio the modules and
#               deploy/kamailio/*.cfg)
#   --no-cargo  reuse the binaries already in target/ (the release build is the slow part)
# env: IKT_TAG (default dev), CARGO_TARGET_DIR (default <repo>/target)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
triple=x86_64-unknown-linux-gnu
tag=${IKT_TAG:-dev}
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin_dir=$target_dir/$triple/release
stage_root=$target_dir/docker-context

run_cargo=1
images=()
for a in "$@"; do
  case $a in
    --no-cargo) run_cargo=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) images+=("$a") ;;
  esac
done

# image name -> cargo package that owns the binary of the same name
declare -A package=(
  [s-cscf-agent]=s-cscf-agent
  [p-cscf-agent]=p-cscf-agent
  [ims-lab]=ikt-lab
  [sip-relay]=ikt-relay
  [ikt-certs]=ikt-certs
)
rust_images=(s-cscf-agent p-cscf-agent ims-lab sip-relay)
explicit=1
if [ ${#images[@]} -eq 0 ]; then
  images=("${rust_images[@]}" sipp kamailio)
  explicit=0
fi

if [ "$run_cargo" = 1 ]; then
  pkgs=(-p ikt-certs)
  for i in "${images[@]}"; do
    [ -n "${package[$i]:-}" ] && pkgs+=(-p "${package[$i]}")
  done
  # crt-static gives static-pie executables that run in an empty image; the explicit --target keeps
  # build scripts and proc-macros dynamic (they run on the host).
  echo "== cargo build --release (static) ${pkgs[*]}"
  (cd "$root" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    nice -n 10 cargo build --release --target "$triple" --bins "${pkgs[@]}")
fi

# Files every image gets: a named unprivileged user (uid 65532, as in distroless "nonroot") and an
# explicit resolver order. Name resolution inside compose networks works without them (checked by
# check-dns.sh), but nsswitch.conf makes the order independent of the C library's built-in default.
stage_etc() {
  mkdir -p "$1/etc"
  printf 'root:x:0:0:root:/:/sbin/nologin\nikt:x:65532:65532:ikt:/:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nikt:x:65532:\n' >"$1/etc/group"
  printf 'hosts: files dns\n' >"$1/etc/nsswitch.conf"
}

# Host programs (SIPp, Kamailio) as images without a base: the files and exactly the shared
# libraries ldd names for them, at the same paths.
stage_host() { # ctx file...
  local ctx=$1 f lib; shift
  mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
  chmod 1777 "$ctx/rootfs/tmp"
  for f in "$@"; do
    mkdir -p "$ctx/rootfs$(dirname "$f")"
    cp -L "$f" "$ctx/rootfs$f"
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
      mkdir -p "$ctx/rootfs$(dirname "$lib")"
      [ -e "$ctx/rootfs$lib" ] || cp -L "$lib" "$ctx/rootfs$lib"
    done
  done
  cp "$ctx/etc/"* "$ctx/rootfs/etc/"
  rm -rf "$ctx/etc"
}
# The Kamailio modules deploy/kamailio/*.cfg load.
kamailio_modules=(tm tmx sl rr path textops siputils maxfwd pv xlog)
kamailio_moddir=/usr/lib/x86_64-linux-gnu/kamailio/modules

built=()
for img in "${images[@]}"; do
  ctx=$stage_root/$img
  rm -rf "$ctx"
  mkdir -p "$ctx/bin"
  stage_etc "$ctx"
  if [ "$img" = sipp ] || [ "$img" = kamailio ]; then
    if ! command -v "$img" >/dev/null 2>&1; then
      [ "$explicit" = 1 ] && { echo "$img not installed (Debian package $([ "$img" = sipp ] && echo sip-tester || echo kamailio))" >&2; exit 1; }
      echo "-- skip $img (not installed)"; continue
    fi
    if [ "$img" = sipp ]; then
      stage_host "$ctx" "$(command -v sipp)"
    else
      files=("$(command -v kamailio)")
      for m in "${kamailio_modules[@]}"; do files+=("$kamailio_moddir/$m.so"); done
      stage_host "$ctx" "${files[@]}"
      mkdir -p "$ctx/rootfs/etc/kamailio"
      cp "$root/deploy/kamailio/"*.cfg "$ctx/rootfs/etc/kamailio/"
    fi
  else
    [ -n "${package[$img]:-}" ] || { echo "unknown image $img" >&2; exit 2; }
    src=$bin_dir/$img
    if [ ! -x "$src" ]; then
      [ "$explicit" = 1 ] && { echo "missing $src: build it first" >&2; exit 1; }
      echo "-- skip $img (no binary at $src)"; continue
    fi
    # The release profile keeps debug info for profiling; images do not need it.
    if command -v strip >/dev/null 2>&1; then strip --strip-debug -o "$ctx/bin/$img" "$src"; else cp "$src" "$ctx/bin/$img"; fi
  fi
  cp "$here/$img.Dockerfile" "$ctx/Dockerfile"
  echo "== docker build ikt/$img:$tag"
  docker build -q -t "ikt/$img:$tag" "$ctx"
  built+=("ikt/$img:$tag")
done

# Smoke check: every binary starts in its empty image (a dynamic binary would fail with "no such file").
for ref in "${built[@]}"; do
  name=${ref#ikt/}; name=${name%%:*}
  if [ "$name" = sipp ]; then
    out=$(docker run --rm "$ref" -v 2>&1 || true)
    echo "$out" | grep -q 'SIPp v' || { echo "FAIL: $ref does not run: $out" >&2; exit 1; }
  elif [ "$name" = kamailio ]; then
    # Parse both configs with every module loaded (-c), as the containers will run them.
    for cfg in icscf pcscf; do
      out=$(docker run --rm -e IKT_ICSCF_LISTEN=127.0.0.1:5064 -e IKT_ICSCF_NEXT=sip:127.0.0.1:5070 \
        -e IKT_PCSCF_ACCESS=127.0.0.1:5060 -e IKT_PCSCF_CORE=127.0.0.1:5061 -e IKT_PCSCF_NEXT=sip:127.0.0.1:5062 \
        "$ref" -f /etc/kamailio/$cfg.cfg -c 2>&1 || true)
      echo "$out" | grep -q 'config file ok' || { echo "FAIL: $ref $cfg.cfg: $out" >&2; exit 1; }
    done
  else
    docker run --rm "$ref" --help >/dev/null || { echo "FAIL: $ref --help" >&2; exit 1; }
  fi
  echo "ok: $ref runs"
done
