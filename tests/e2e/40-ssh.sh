#!/bin/bash
# 40-ssh — ssh reaches a real sshd through the router, which recognises SSH by
# the client's banner; HTTP on the same port still goes to its own backend.
. "$(dirname "$0")/lib.sh"

SSHD=/usr/sbin/sshd
if [ ! -x "$SSHD" ] || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
  skip "ssh through the router" "OpenSSH server or client not installed (Debian: openssh-server openssh-client)"
  exit 0
fi
# sshd wants its privilege-separation directory when it runs as root.
[ "$(id -u)" = 0 ] && [ ! -d /run/sshd ] && mkdir -p /run/sshd && chmod 755 /run/sshd

ME=$(id -un)
S=$WORK/ssh
mkdir -p "$S"
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key" -C e2e-host || bail "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -f "$S/user_key" -C e2e-user || bail "ssh-keygen"
cp "$S/user_key.pub" "$S/authorized_keys"
chmod 600 "$S/authorized_keys"

P_SSH=$(free_port); P_WEB=$(free_port); P_R=$(free_port)
cat > "$S/sshd_config" <<EOF
Port $P_SSH
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $ME
StrictModes no
UsePAM no
PrintMotd no
LogLevel VERBOSE
EOF
start sshd "$SSHD" -D -e -f "$S/sshd_config"
wait_port "$P_SSH" 10 || bail "sshd did not listen" "$(cat "$WORK/sshd.log")"
start_http web "$P_WEB" "web backend" || bail "nginx"

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
local route_table = require "policies.route_table"
tunnel.listen{
  name = "mixed",
  addr = "127.0.0.1:$P_R",
  route = route_table{
    ssh = "127.0.0.1:$P_SSH",
    http = { ["*"] = "127.0.0.1:$P_WEB" },
  },
}
EOF
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log

SSH=(ssh -p "$P_R" -i "$S/user_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR -F /dev/null)

out=$(timeout 30 "${SSH[@]}" "$ME@127.0.0.1" echo hello 2>&1)
expect_eq "ssh through the router runs 'echo hello'" "hello" "$out"
check "the route line says proto ssh" jhas "$LOG" event=route proto=ssh "upstream=127.0.0.1:$P_SSH"

# The host key the client was shown is sshd's (no man in the middle): with
# strict checking against a known_hosts holding only sshd's key.
printf '[127.0.0.1]:%s %s\n' "$P_R" "$(cut -d' ' -f1,2 "$S/host_key.pub")" > "$S/known_hosts"
out=$(timeout 30 ssh -p "$P_R" -i "$S/user_key" -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$S/known_hosts" \
      -o BatchMode=yes -o ConnectTimeout=10 -o HostKeyAlgorithms=ssh-ed25519 -F /dev/null "$ME@127.0.0.1" echo verified 2>&1)
expect_eq "strict host key checking passes: the client sees sshd's own host key" "verified" "$out"

# A bulk transfer over the session: 8 MiB through ssh, checksummed.
head -c 8388608 /dev/urandom > "$WORK/blob"
want=$(sha256sum < "$WORK/blob" | awk '{ print $1 }')
got=$(timeout 60 "${SSH[@]}" "$ME@127.0.0.1" sha256sum < "$WORK/blob" 2>&1 | awk '{ print $1 }')
expect_eq "8 MiB piped through ssh arrives intact" "$want" "$got"

# The same router port still serves HTTP by its request line.
out=$(curl -sS --max-time 10 -H 'Host: any.test' "http://127.0.0.1:$P_R/" 2>&1)
expect_eq "HTTP on the same port goes to the web backend" "web backend" "$out"

# A bad key is refused by sshd itself (the router adds no authentication).
ssh-keygen -q -t ed25519 -N '' -f "$S/other_key" -C other || bail "ssh-keygen"
out=$(timeout 30 ssh -p "$P_R" -i "$S/other_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o BatchMode=yes -o ConnectTimeout=10 -o IdentitiesOnly=yes -F /dev/null "$ME@127.0.0.1" echo hello 2>&1)
expect_match "an unknown key is refused by sshd (Permission denied)" 'Permission denied' "$out"

stop router
expect_eq "the router exits 0 on SIGTERM" 0 "$EXIT_CODE"
