#!/bin/bash
# 230-identity-crash — an agent killed (-9) at any moment, renewal included,
# always finds DIR/current naming a complete, matching pair, and comes back
# with it.
#   Two agents (lap1, lap2), each enrolled in its own folder with its own
#   relay (same CA), go through the loop side by side, 15 kills each.
#   cert_ttl = 5 s (the smallest), so an agent renews 1 to 3.3 s after it
#   connects; the relay's authorize hook sleeps 0.25 s on "renew" (a slow
#   relay), so a renewal stays open long enough to be hit. Each iteration
#   starts the agent, predicts its renewal from its hello and its
#   certificate's notAfter, and kills it at a random moment around it (when
#   the certificate has too little life left for that: soon after the
#   renewal, timed so that the next run can be aimed). Then:
#     - DIR/current -> gen-N with key.pem and cert.pem that belong together
#       (same public key) and a certificate that verifies against the CA (at
#       the moment of the kill);
#     - the next start connects, presenting that certificate (the relay's
#       session fingerprint). A restart that comes after the certificate's
#       end (only on a very slow machine: the kills leave >= 0.5 s) is
#       refused by the relay, rightly; the agent then enrolls again, and
#       such restarts must stay rare;
#   and the kills that landed inside a renewal (a generation staged after
#   current, without its switch) are counted: there must be a few.
#   At the end, one more renewal clears the leftovers: only the current and
#   the previous generation remain, and the agents serve. For lap2, what a
#   kill inside the atomic write of a staged key leaves (gen-N holding only
#   key.pem.tmp.XXXXXX, hit by chance only now and then) is put there first:
#   it must go too.
# e2e: solo (it measures throughput or timing: tests/run-e2e runs it alone)
. "$(dirname "$0")/identity_lib.sh"

PER_AGENT=${CRASH_ITER:-15}        # kills per agent; two agents: 30
SPIN=0.25

tnl_setup
id_pki || bail "tunnel ca init / cert issue"
P_WEB=$(free_port)
ns_http web "$P_WEB" "still here" || bail "nginx"
CA=$RS/ca/ca.crt
AGENTS=(lap1 lap2)
# One relay per agent (the same CA): a renewal that keeps one relay busy
# does not delay the other agent.
declare -A P_EN_OF P_PUB_OF
for ag in "${AGENTS[@]}"; do
  P_AG=$(free_port); P_EN=$(free_port); P_PUB=$(free_port)
  P_EN_OF[$ag]=$P_EN; P_PUB_OF[$ag]=$P_PUB
  write_script "$WORK/relay-$ag.lua" <<EOF
local tunnel = require "tunnel"
local ffi = require "ffi"
ffi.cdef "int usleep(unsigned int);"
tunnel.config{ hook_budget = { timeout = 2 } }
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(id_relay_tls),
  issuer_ca = "$RS/ca",
  enroll = { addr = "$RELAY_IP:$P_EN", store = "$RS/bootstrap-$ag.json" },
  cert_ttl = 5,
  authorize = function(id, action)
    -- A slow relay: the agent waits $SPIN s for its new certificate.
    if action == "renew" then ffi.C.usleep($SPIN * 1000000) end
    return true
  end,
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
  start_relay "relay-$ag" "$WORK/relay-$ag.lua" || bail "the relay for $ag did not start"
  wait_port "$P_EN" 5 || bail "no enrollment listener"
  tok=$("$TUNNEL" token bootstrap --name "$ag" --role web --uses 10 --store "$RS/bootstrap-$ag.json" 2>/dev/null)
  agent_home "$ag" "$tok"
  enroll "$ag" "" || bail "enrollment of $ag" "$(cat "$WORK/enroll-$ag.out")"
  agent_script "$WORK/$ag.lua" "$ag" "$(dir_tls "$WORK/home-$ag/creds")" \
    "{ service = \"$ag\", kind = \"http\", hosts = { \"$ag.web.test\" }, target = \"127.0.0.1:$P_WEB\" }"
done

rnd() { awk -v a="$1" -v b="$2" -v s="$RANDOM$RANDOM" 'BEGIN { srand(s); printf "%.3f", a + rand() * (b - a) }'; }
gen_num() { local g=${1##*/}; echo "${g#gen-}"; }

# crash_loop AGENT N (in a subshell): N kills of AGENT; results in
# $WORK/loop-AGENT.res (name=value), failures in $WORK/loop-AGENT.bad.
crash_loop() {
  local ag=$1 max=$2 cr=$WORK/home-$1/creds snap=$WORK/snap-$1
  local RLOG=$WORK/relay-$1.log P_EN=${P_EN_OF[$1]}
  local res=$WORK/loop-$1.res badf=$WORK/loop-$1.bad
  local iters=0 hits=0 hit_kinds="" commits=0 aimed=0 late=0 lat=0.3 kill_at=""
  local a n nfail before want_fp want_exp exp_was mode why got_fp t_hello t_renew gen after was was_before more cur g gn k
  # Stopped from outside (the scenario's cleanup): end this loop's agents.
  trap 'for k in "${!_PIDS[@]}"; do [[ $k == "$ag"-* ]] && kill -KILL "${_PIDS[$k]}" 2>/dev/null; done; exit 143' TERM
  : > "$badf"
  nsess() { grep -c "\"event\":\"session\",.*\"agent\":\"$ag\"," "$RLOG"; }
  sess_more() { [ "$(nsess)" -gt "$n" ]; }
  launch() {
    iters=$((iters + 1))
    a=$ag-$iters
    n=$(nsess)
    nfail=$(grep -c '"event":"handshake_failed"' "$RLOG")
    before=" $(cd "$cr" && echo gen-*) "
    rm -f "$WORK/$a.log"      # (after a late restart the name is used again)
    start_agent "$a" "$WORK/$ag.lua"
  }
  # What the next start must present: DIR/current as it is now.
  want_fp=$(fp_of "$cr/current/cert.pem")
  want_exp=$(cert_epoch "$cr/current/cert.pem" enddate)
  launch
  while :; do
    if ! wait_until 5 sess_more; then
      why=$(new_reason "$RLOG" handshake_failed "$nfail")
      kill9 "$a"
      if [ "$why" = "certificate rejected: certificate has expired" ]; then
        # The restart came after the certificate's end (a slow machine): the
        # relay is right to refuse it. Enroll again and go on.
        late=$((late + 1))
        echo "$a: the certificate DIR/current holds (notAfter $want_exp) had expired when the agent restarted: enrolling again"
        enroll "$ag" "" || { echo "connect: $a: enrolling again failed: $(cat "$WORK/enroll-$ag.out")" >> "$badf"; break; }
        want_fp=$(fp_of "$cr/current/cert.pem")
        want_exp=$(cert_epoch "$cr/current/cert.pem" enddate)
        iters=$((iters - 1))
        launch
        continue
      fi
      echo "connect: $a: no session within 5 s: $why" >> "$badf"
      break     # the credentials are unusable: nothing more to learn
    fi
    got_fp=$(jlast "$RLOG" fingerprint event=session "agent=$ag")
    [ "$got_fp" = "$want_fp" ] || echo "connect: $a: the session presented $got_fp, DIR/current held $want_fp" >> "$badf"
    wait_until 5 grep -q '"event":"hello"' "$WORK/$a.log" || echo "connect: $a: no hello" >> "$badf"
    t_hello=$(date -u -d "$(sed -n 's/^{"ts":"\([^"]*\)".*"event":"hello".*/\1/p' "$WORK/$a.log" | head -n 1)" +%s.%N)
    # How long a restart takes here, from the kill to the hello (the last one).
    [ -n "$kill_at" ] && lat=$(awk -v h="$t_hello" -v k="$kill_at" 'BEGIN { d = h - k; if (d < 0.05 || d > 2) d = 0.3; printf "%.3f", d }')
    # The agent renews at max(1, 2/3 of (notAfter - os.time())) after its hello.
    t_renew=$(awk -v h="$t_hello" -v e="$want_exp" 'BEGIN { d = (e - int(h)) * 2 / 3; if (d < 1) d = 1; printf "%.3f", h + d }')
    # (The last run is not aimed: the final check starts the agent again.)
    if [ "$iters" -lt "$max" ] &&
       awk -v r="$t_renew" -v e="$want_exp" -v s="$SPIN" 'BEGIN { exit !(e - (r + s + 0.05) > 0.5) }'; then
      # Enough life left to survive a kill inside the renewal: aim at it.
      aimed=$((aimed + 1)); mode=aimed
      kill_at=$(awk -v r="$t_renew" -v x="$(rnd -0.05 "$(awk -v s="$SPIN" 'BEGIN { print s + 0.05 }')")" \
        'BEGIN { printf "%.3f", r + x }')
    else
      # Not enough: let this renewal finish, then kill soon after it, at a
      # moment such that the next run can be aimed at: its hello just after
      # the second notAfter - 4 begins (the agent counts whole seconds).
      mode=after
      wait_until 6 grep -q '"event":"renewed"' "$WORK/$a.log"
      kill_at=$(awk -v n="$(now)" -v e="$(cert_epoch "$cr/current/cert.pem" enddate)" -v l="$lat" -v x="$(rnd 0 0.1)" \
        'BEGIN { t = e - 4 + 0.1 - l + x; if (t < n) t = n; printf "%.3f", t }')
    fi
    exp_was=$want_exp
    sleep_until "$kill_at"
    kill9 "$a"
    # What the next start will load: a copy of DIR/current now (the next agent
    # renews a second later at the earliest, and may prune this generation).
    gen=$(gen_of "$cr")
    after=" $(cd "$cr" && echo gen-*) "
    rm -rf "$snap"; mkdir -p "$snap"
    [ -n "$gen" ] && cp -a "$cr/$gen" "$snap/" 2>/dev/null && ln -s "$gen" "$snap/current"
    was=$a; was_before=$before
    more=0
    [ "$iters" -lt "$max" ] && more=1 && launch
    [ "$(jcount "$WORK/$was.log" event=renewed)" -gt 0 ] && commits=$((commits + 1))

    why=$(pair_ok "$snap" "$CA" "$kill_at") || echo "pair: $was: $why" >> "$badf"
    want_fp=$(fp_of "$snap/current/cert.pem")
    want_exp=$(cert_epoch "$snap/current/cert.pem" enddate)
    # A generation newer than current that the killed run made: it was
    # killed inside a renewal.
    cur=$(gen_num "$gen")
    for g in $after; do
      gn=$(gen_num "$g")
      if [ "$gn" -gt "$cur" ] && [[ $was_before != *" $g "* ]]; then
        hits=$((hits + 1))
        if [ -e "$cr/$g/cert.pem" ]; then k="cert-written"
        elif compgen -G "$cr/$g/*.tmp.*" >/dev/null; then k="inside-a-file-write"
        elif [ -e "$cr/$g/key.pem" ]; then k="key-only"
        else k="empty"; fi
        hit_kinds="$hit_kinds $k"
        break
      fi
    done
    [ -n "${CRASH_DEBUG:-}" ] && echo "$was lat=$lat hello=$t_hello exp=$exp_was renew=$t_renew kill=$kill_at mode=$mode hits=$hits commits=$commits current=$gen"
    [ $more = 1 ] || break
  done
  # Afterwards (at once: the certificate is short): one more run, which
  # serves and renews; then only the current and the previous generation
  # are left.
  local f_body="" f_renewed=0 f_gens="" f_detail="" f_pair="" f_exit="" planted="" top
  if [ "$ag" = lap2 ]; then
    # What a kill inside the atomic write of a staged key leaves (we may not
    # have hit it by chance): a generation holding only key.pem.tmp.XXXXXX.
    top=$(cd "$cr" && ls -d gen-* | sed 's/^gen-//' | sort -n | tail -n 1)
    planted=gen-$((top + 1))
    mkdir -m 700 "$cr/$planted"
    ( umask 077; head -c 120 "$cr/current/key.pem" > "$cr/$planted/key.pem.tmp.e2eXyZ" )
  fi
  if start_agent "$ag-last" "$WORK/$ag.lua"; then
    wait_exposed "$RLOG" "$ag" 5
    wait_until 5 hok "$ag.web.test" "${P_PUB_OF[$ag]}"
    f_body=$(hbody "$ag.web.test" "${P_PUB_OF[$ag]}")
    if wait_jlog "$WORK/$ag-last.log" 6 event=renewed; then
      f_renewed=1
      f_gens=$(cd "$cr" && for g in gen-*; do [ "$g" != "$planted" ] && printf '%s ' "$g"; done)
      f_detail=$(for g in $f_gens; do printf '%s[%s] ' "$g" "$(ls -A "$cr/$g" | tr '\n' ' ' | sed 's/ $//')"; done)
    fi
    f_pair=$(pair_ok "$cr" "$CA")
    stop "$ag-last"
    f_exit=$EXIT_CODE
  fi
  printf 'iters=%s\nhits=%s\nhit_kinds="%s"\ncommits=%s\naimed=%s\nlate=%s\n' \
    "$iters" "$hits" "$hit_kinds" "$commits" "$aimed" "$late" > "$res"
  printf 'f_detail="%s"\n' "$f_detail" > "$res.final"
  printf 'f_body="%s"\nf_renewed=%s\nf_gens="%s"\nf_pair="%s"\nf_exit=%s\nf_current=%s\nf_planted=%s\nf_planted_left="%s"\n' \
    "$f_body" "$f_renewed" "$f_gens" "$f_pair" "$f_exit" "$(gen_of "$cr")" "$planted" \
    "$([ -n "$planted" ] && [ -e "$cr/$planted" ] && ls -A "$cr/$planted" | tr '\n' ' ')" >> "$res.final"
}

T_LOOP=$(now)
for ag in "${AGENTS[@]}"; do
  crash_loop "$ag" "$PER_AGENT" > "$WORK/loop-$ag.out" 2>&1 &
  _PIDS["loop-$ag"]=$!
  _ORDER+=("loop-$ag")
done
for ag in "${AGENTS[@]}"; do
  wait_exit "loop-$ag" 240 || stop "loop-$ag"
done
T_LOOP_END=$(elapsed "$T_LOOP")

iters=0; hits=0; hit_kinds=""; commits=0; aimed=0; late=0
for ag in "${AGENTS[@]}"; do
  [ -s "$WORK/loop-$ag.out" ] && diag "$(cat "$WORK/loop-$ag.out")"
  if [ -f "$WORK/loop-$ag.res" ]; then
    # shellcheck disable=SC1090
    ( . "$WORK/loop-$ag.res"; echo "$iters $hits $commits $aimed $late $hit_kinds" ) > "$WORK/loop-$ag.sum"
    read -r i h c m l k < "$WORK/loop-$ag.sum"
    iters=$((iters + i)); hits=$((hits + h)); commits=$((commits + c)); aimed=$((aimed + m)); late=$((late + l))
    hit_kinds="$hit_kinds $k"
  else
    not_ok "the crash loop of $ag finished" "$(tail -n 5 "$WORK/loop-$ag.out")"
  fi
done
summary=$(printf '%s\n' $hit_kinds | grep . | sort | uniq -c | awk '{ printf "%s%s=%s", (NR > 1 ? ", " : ""), $2, $1 }')
diag "$iters kills in ${T_LOOP_END}s; aimed at the renewal: $aimed; landed inside a renewal: $hits (${summary:-none}); runs that completed a renewal: $commits; restarts too late for the certificate: $late"
check "at least 30 kills ($iters)" test "$iters" -ge 30
expect_eq "after every kill, DIR/current was a key and certificate that belong together and verify against the CA" \
  "" "$(cat "$WORK"/loop-*.bad 2>/dev/null | grep '^pair: ')"
expect_eq "after every kill, the agent came back and connected with the certificate DIR/current holds" \
  "" "$(cat "$WORK"/loop-*.bad 2>/dev/null | grep '^connect: ')"
check "restarts that came after the certificate's end (a slow machine) were rare: $late" test "$late" -le 3
check "several kills landed inside a renewal (a generation staged but not switched to): $hits" test "$hits" -ge 3
check "... and several runs completed a renewal before being killed: $commits" test "$commits" -ge 3

# --- afterwards: one more renewal cleans up, and the agents serve ------------------------
for ag in "${AGENTS[@]}"; do
  f_body=""; f_renewed=0; f_gens=""; f_detail=""; f_pair="(no result)"; f_exit=""; f_current=""; f_planted=""; f_planted_left=""
  # shellcheck disable=SC1090
  [ -f "$WORK/loop-$ag.res.final" ] && . "$WORK/loop-$ag.res.final"
  expect_eq "$ag serves after all this" "still here" "$f_body"
  if [ "$f_renewed" = 1 ]; then
    ok "... and renews"
    expect_eq "... then only the current and the previous generation remain (staged leftovers removed)" \
      2 "$(wc -w <<< "$f_gens")"
    diag "$ag's generations: $f_detail(current: $f_current)"
    if [ -n "$f_planted" ]; then
      expect_eq "... also a generation left by a kill inside the atomic write of its key ($f_planted/key.pem.tmp.*) is removed" \
        "" "$f_planted_left"
    fi
  else
    not_ok "... and renews" "$(tail -n 5 "$WORK/$ag-last.log")"
  fi
  expect_eq "... DIR/current is a valid pair" "" "$f_pair"
  expect_eq "... it exits 0 on SIGTERM" 0 "$f_exit"
  stop "relay-$ag"
done
