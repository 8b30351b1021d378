#!/usr/bin/env bash
# Prepares this machine for the Docker-host tests (agent/test/docker.test.ts,
# agent/test/caddy.test.ts and the end-to-end app tests): dockerd on
# /var/run/docker.sock, a registry on 127.0.0.1:5000 (no auth), Caddy with only
# its admin API on 127.0.0.1:2019, Debian's chromium at /usr/bin/chromium for the
# dashboard's browser tests (test/node/dashboard.test.ts), and test images in the registry:
#
#   127.0.0.1:5000/berth/hello:v1   busybox httpd on :8080 serving "hello v1"; says
#                                   "hello v1 listening on :8080" on stdout, logs requests on stderr
#   127.0.0.1:5000/berth/hello:v2   the same with "hello v2"
#   127.0.0.1:5000/berth/broken:v1  exits at once with "boom" on stderr
#   127.0.0.1:5000/berth/pulltest:v1  hello:v1 under another name, for the test that
#                                   removes its local copy and pulls it again
#   127.0.0.1:5000/berth/busybox:1.36  busybox (httpd, sh and the usual applets) under Docker
#                                   Hub's name, the base image of git builds in the tests
#                                   (test/node/git-builds.test.ts; the agent's --build-base-registry)
#   127.0.0.1:5001/berth/private:v1 hello:v1 in a second registry that wants a password
#                                   (htpasswd: berth / berth-registry-test)
#
# and two OpenSSH servers on loopback for the SSH profile and command tests
# (test/node/ssh.test.ts), with their own configs, host keys and pid files under
# /tmp/berth-host/ssh/ (a system sshd, if any, is left alone):
#
#   127.0.0.1:2222  host key A    user berthssh: the password in /tmp/berth-host/ssh/password
#   127.0.0.1:2223  host key B    (made here, root only) or the key .../ssh/client_ed25519
#
# The local copies of the images are removed after the push so that a deploy
# goes through a real pull. Run as root; idempotent: what already answers is
# left alone. Logs of what it starts go to /tmp/berth-host/.
#
#   BERTH_SETUP_REBUILD=1  build and push the images even when the registry has them
set -euo pipefail

STATE=/tmp/berth-host
REGISTRY=127.0.0.1:5000
REGISTRY_DATA=/var/lib/berth-registry
CADDY_ADMIN=127.0.0.1:2019
PRIVATE_REGISTRY=127.0.0.1:5001
PRIVATE_DATA=/var/lib/berth-registry-private
# The private registry's one account, for the registry-credential tests (test data, not a secret).
PRIVATE_USER=berth
PRIVATE_PASSWORD=berth-registry-test
# chromium: the dashboard's browser tests drive Debian's build (Playwright's own download is not reachable).
# git: the agent clones apps' repositories with it; the git build tests serve one with `git http-backend`.
PACKAGES=(docker.io caddy docker-registry busybox-static curl apache2-utils openssl chromium openssh-server git)
# The test SSH servers' one account. Its password is made per machine and kept for root only
# ($SSH_DIR/password): a system sshd that allows passwords would accept it too.
SSH_USER=berthssh
SSH_DIR=$STATE/ssh
SSH_PORTS=(2222 2223)

started=$SECONDS
mkdir -p "$STATE"

say() { printf '%-9s %s\n' "$1:" "$2"; }
die() {
  printf 'setup.sh: %s\n' "$*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and starts dockerd)"

# HTTP status of a URL, or 000 when nothing answers.
http_status() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true; }

# Waits up to $1 seconds for the command that follows to succeed.
wait_for() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

# Starts a command detached from this script (own session, no terminal), logging to a file.
# The daemon gets no other descriptor of ours: one inherited from `flock /tmp/berth-host.lock …`
# would keep that lock taken for as long as dockerd (or the registry, or Caddy) runs.
spawn() {
  local logfile=$1
  shift
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid "$@" >>"$logfile" 2>&1 </dev/null
  ) &
}

# --- packages ---------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # Installing openssh-server would start the system's sshd on :22; only the test servers
  # below are wanted. Where no policy-rc.d decides already, one for this install refuses ssh.
  temp_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    temp_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# berth test/host/setup.sh: no system sshd from this install\ncase "$1" in ssh|sshd) exit 101 ;; esac\nexit 0\n' >"$temp_policy"
    chmod 755 "$temp_policy"
  fi
  apt-get install -y -qq "${missing[@]}" >/dev/null || { [[ -z $temp_policy ]] || rm -f "$temp_policy"; die "apt-get install ${missing[*]} failed"; }
  [[ -z $temp_policy ]] || rm -f "$temp_policy"
  say packages "installed ${missing[*]}"
else
  say packages "already installed"
fi
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing (package chromium)"
say chromium "$(/usr/bin/chromium --version 2>/dev/null | head -n 1) at /usr/bin/chromium"

# --- dockerd ----------------------------------------------------------------
docker_up() { docker info >/dev/null 2>&1; }
if docker_up; then
  docker_note="already running"
else
  # containerd comes up with dockerd (docker.io starts its own when none runs).
  spawn "$STATE/dockerd.log" dockerd
  wait_for 60 docker_up || {
    tail -n 20 "$STATE/dockerd.log" >&2 || true
    die "dockerd did not answer within 60 s (log: $STATE/dockerd.log)"
  }
  docker_note="started (log $STATE/dockerd.log)"
fi
say docker "$(docker version --format 'Engine {{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null), $(docker info --format 'storage {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null) at /var/run/docker.sock: $docker_note"

# serve_registry <name> <addr> <data dir> <status GET /v2/ answers when up> <extra YAML>:
# Debian's docker-registry on one loopback address, its log and config under $STATE.
serve_registry() {
  local name=$1 addr=$2 data=$3 expect=$4 extra=$5
  mkdir -p "$data"
  cat >"$STATE/$name.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: $addr
$extra
EOF
  spawn "$STATE/$name.log" docker-registry serve "$STATE/$name.yml"
  wait_for 30 bash -c "[[ \$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://$addr/v2/) == $expect ]]" || {
    tail -n 20 "$STATE/$name.log" >&2 || true
    die "$name did not answer $expect on $addr within 30 s (log: $STATE/$name.log)"
  }
}

# --- registry ---------------------------------------------------------------
registry_up() { [[ $(http_status "http://$REGISTRY/v2/") == 200 ]]; }
if registry_up; then
  registry_note="already running"
else
  status=$(http_status "http://$REGISTRY/v2/")
  if [[ $status != 000 ]]; then
    # Debian's docker-registry service (all interfaces, htpasswd auth) started by systemd: replace it.
    if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
      systemctl stop docker-registry
      systemctl disable --quiet docker-registry 2>/dev/null || true
      wait_for 10 bash -c "[[ \$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://$REGISTRY/v2/) == 000 ]]" || true
    else
      die "something on $REGISTRY answers GET /v2/ with HTTP $status instead of 200 (a registry with auth?); stop it first"
    fi
  fi
  serve_registry registry "$REGISTRY" "$REGISTRY_DATA" 200 ""
  registry_note="started (data $REGISTRY_DATA, log $STATE/registry.log)"
fi
say registry "http://$REGISTRY (no auth): $registry_note"

# --- private registry (htpasswd) -----------------------------------------------
private_up() { [[ $(http_status "http://$PRIVATE_REGISTRY/v2/") == 401 ]]; }
if private_up; then
  private_note="already running"
else
  htpasswd -Bbn "$PRIVATE_USER" "$PRIVATE_PASSWORD" >"$STATE/private.htpasswd"
  serve_registry registry-private "$PRIVATE_REGISTRY" "$PRIVATE_DATA" 401 "auth:
  htpasswd:
    realm: berth-test
    path: $STATE/private.htpasswd"
  private_note="started (data $PRIVATE_DATA, log $STATE/registry-private.log)"
fi
say private "http://$PRIVATE_REGISTRY (htpasswd $PRIVATE_USER): $private_note"

# --- caddy ------------------------------------------------------------------
caddy_up() { [[ $(http_status "http://$CADDY_ADMIN/config/") == 200 ]]; }
if caddy_up; then
  caddy_note="already running"
  # Debian's caddy service serves a default site on :80; the agent's ingress server would clash with it.
  servers=$(curl -sf -m 3 "http://$CADDY_ADMIN/config/apps/http/servers" 2>/dev/null || true)
  if [[ -n $servers && $servers != null && $servers != '{}' ]]; then
    caddy_note+="; note: it already has HTTP servers: $(printf '%s' "$servers" | head -c 200)"
  fi
else
  # Only the admin API; the agent adds its ingress server through it.
  printf '{"admin":{"listen":"%s","config":{"persist":false}}}\n' "$CADDY_ADMIN" >"$STATE/caddy.json"
  spawn "$STATE/caddy.log" caddy run --config "$STATE/caddy.json"
  wait_for 30 caddy_up || {
    tail -n 20 "$STATE/caddy.log" >&2 || true
    die "caddy's admin API did not answer on $CADDY_ADMIN within 30 s (log: $STATE/caddy.log)"
  }
  caddy_note="started (admin only, log $STATE/caddy.log)"
fi
say caddy "$(caddy version 2>/dev/null | cut -d' ' -f1), admin API http://$CADDY_ADMIN: $caddy_note"

# --- sshd (two test servers, two host keys) -------------------------------------
sshd_up() { [[ $(timeout 2 bash -c "head -c 4 </dev/tcp/127.0.0.1/$1" 2>/dev/null) == SSH- ]]; }
mkdir -p "$SSH_DIR" /run/sshd
chmod 755 "$SSH_DIR"
id "$SSH_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$SSH_USER"
if [[ ! -s $SSH_DIR/password ]]; then
  (umask 077 && openssl rand -hex 16 >"$SSH_DIR/password")
fi
chmod 600 "$SSH_DIR/password"
printf '%s:%s\n' "$SSH_USER" "$(cat "$SSH_DIR/password")" | chpasswd
[[ -f $SSH_DIR/client_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C berth-test-client -f "$SSH_DIR/client_ed25519"
chmod 600 "$SSH_DIR/client_ed25519" # opens only these test servers (its public half is in $SSH_DIR/authorized_keys, no home)
install -m 644 "$SSH_DIR/client_ed25519.pub" "$SSH_DIR/authorized_keys"
ssh_note=()
for i in "${!SSH_PORTS[@]}"; do
  port=${SSH_PORTS[$i]}
  name=sshd-$port
  if sshd_up "$port"; then
    ssh_note+=("$port already running")
    continue
  fi
  [[ -f $SSH_DIR/host_key_$i ]] || ssh-keygen -q -t ed25519 -N '' -C "berth-test-host-$i" -f "$SSH_DIR/host_key_$i"
  # Its own config, key and pid file: nothing of a system sshd is read or written.
  # StrictModes off: $SSH_DIR is under /tmp, which is world-writable.
  printf '%s\n' \
    "Port $port" "ListenAddress 127.0.0.1" "HostKey $SSH_DIR/host_key_$i" "PidFile $SSH_DIR/$name.pid" \
    "AuthorizedKeysFile $SSH_DIR/authorized_keys" "StrictModes no" "UsePAM no" "PasswordAuthentication yes" \
    "KbdInteractiveAuthentication no" "PermitRootLogin no" "AllowUsers $SSH_USER" "X11Forwarding no" "AllowTcpForwarding no" \
    >"$SSH_DIR/$name.conf"
  spawn "$SSH_DIR/$name.log" /usr/sbin/sshd -D -e -f "$SSH_DIR/$name.conf"
  wait_for 15 sshd_up "$port" || {
    tail -n 20 "$SSH_DIR/$name.log" >&2 || true
    die "sshd did not answer on 127.0.0.1:$port within 15 s (log: $SSH_DIR/$name.log)"
  }
  ssh_note+=("$port started")
done
say sshd "127.0.0.1:${SSH_PORTS[*]} (user $SSH_USER, key $SSH_DIR/client_ed25519): ${ssh_note[*]}"

# --- test images ------------------------------------------------------------
# Bump when the images change: the registry keeps images across runs.
IMAGES_VERSION=4
IMAGES=("$REGISTRY/berth/hello:v1" "$REGISTRY/berth/hello:v2" "$REGISTRY/berth/broken:v1" "$REGISTRY/berth/pulltest:v1" "$REGISTRY/berth/busybox:1.36")

in_registry() {
  local ref=${1#"$REGISTRY"/}
  [[ $(curl -s -o /dev/null -m 5 -w '%{http_code}' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/${ref%:*}/manifests/${ref##*:}") == 200 ]]
}

# build_image <ref> <index text> <CMD as JSON>
build_image() {
  local ref=$1 text=$2 cmd=$3 root
  root=$(mktemp -d "$STATE/rootfs.XXXXXX")
  mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh httpd echo cat sleep ls false true mkdir cp printf; do ln -s busybox "$root/bin/$applet"; done
  printf '%s\n' "$text" >"$root/www/index.html"
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
    docker import --change "CMD $cmd" --change 'EXPOSE 8080' - "$ref" >/dev/null
  rm -rf "$root"
  docker push -q "$ref" >/dev/null
}

[[ -x /bin/busybox ]] || die "/bin/busybox is missing (package busybox-static)"
if [[ ${BERTH_SETUP_REBUILD:-} != 1 ]] && [[ $(cat "$REGISTRY_DATA/berth-images.version" 2>/dev/null) == "$IMAGES_VERSION" ]] &&
  in_registry "${IMAGES[0]}" && in_registry "${IMAGES[1]}" && in_registry "${IMAGES[2]}" && in_registry "${IMAGES[3]}" && in_registry "${IMAGES[4]}"; then
  images_note="already in the registry"
else
  # One line on stdout, then busybox httpd in the foreground (-v: a line per request on stderr).
  httpd() { printf '["/bin/sh","-c","echo %s listening on :8080; exec /bin/httpd -f -v -p 8080 -h /www"]' "$1"; }
  build_image "${IMAGES[0]}" "hello v1" "$(httpd 'hello v1')"
  build_image "${IMAGES[1]}" "hello v2" "$(httpd 'hello v2')"
  build_image "${IMAGES[2]}" "broken" '["/bin/sh","-c","echo boom >&2; exit 1"]'
  build_image "${IMAGES[4]}" "busybox" '["sh"]'
  docker tag "${IMAGES[0]}" "${IMAGES[3]}"
  docker push -q "${IMAGES[3]}" >/dev/null
  echo "$IMAGES_VERSION" >"$REGISTRY_DATA/berth-images.version"
  images_note="built and pushed"
fi
# The private image: hello:v1 behind the password, pushed with a throwaway Docker config so
# no credential stays in root's ~/.docker.
PRIVATE_IMAGE=$PRIVATE_REGISTRY/berth/private:v1
private_has() {
  [[ $(curl -s -o /dev/null -m 5 -w '%{http_code}' -u "$PRIVATE_USER:$PRIVATE_PASSWORD" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$PRIVATE_REGISTRY/v2/berth/private/manifests/v1") == 200 ]]
}
if private_has; then
  private_image_note="already in the registry"
else
  docker pull -q "${IMAGES[0]}" >/dev/null
  docker tag "${IMAGES[0]}" "$PRIVATE_IMAGE"
  login_dir=$(mktemp -d "$STATE/docker-config.XXXXXX")
  printf '%s' "$PRIVATE_PASSWORD" | DOCKER_CONFIG=$login_dir docker login -u "$PRIVATE_USER" --password-stdin "$PRIVATE_REGISTRY" >/dev/null 2>&1
  DOCKER_CONFIG=$login_dir docker push -q "$PRIVATE_IMAGE" >/dev/null
  rm -rf "$login_dir"
  docker rmi "$PRIVATE_IMAGE" >/dev/null 2>&1 || true
  private_image_note="pushed"
fi
say private "$PRIVATE_IMAGE: $private_image_note, no local copy"

# Deploys must pull. A tag a container still uses stays (Docker refuses without force).
for ref in "${IMAGES[@]}"; do
  docker image inspect "$ref" >/dev/null 2>&1 && { docker rmi "$ref" >/dev/null 2>&1 || true; }
done
say images "${IMAGES[*]}: $images_note, no local copies"

say done "in $((SECONDS - started)) s"
