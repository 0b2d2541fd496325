#!/usr/bin/env bash
# Regenerates the seed files of tests/fuzz/corpus/ from their sources: the
# repository's own policy, config and scenario files, the address forms
# below, and the dispatcher programs in seeds/*.textproto (encoded with
# protoc). Files it does not write (crash regressions, found inputs) stay.
# Usage: tests/fuzz/make-seeds.sh
set -euo pipefail
cd "$(dirname "$0")"
root=../..
corpus=corpus
mkdir -p "$corpus"/{address,policy,config,scenario,sockopt,dispatcher}

# policy: the example policies (text format and JSON).
for f in "$root"/deploy/examples/policy.*; do
  cp "$f" "$corpus/policy/seed-$(basename "$f")"
done
# config: the shipped agent configs.
for f in "$root"/deploy/config/*.textproto "$root"/deploy/config/*.json; do
  cp "$f" "$corpus/config/seed-$(basename "$f")"
done
# scenario: every example scenario and the multi-host one.
for f in "$root"/examples/scenarios/*.yaml "$root"/tests/multihost/scenario.yaml; do
  cp "$f" "$corpus/scenario/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
done

# address: a selector byte (see address_fuzz.cc), then host, port, flowinfo
# and scope_id separated by newlines.
n=0
address() {  # selector(octal escape) text
  n=$((n + 1))
  printf "$1%s" "$2" > "$corpus/address/seed-$(printf %02d $n)"
}
NL=$'\n'
# AF_INET (selector 0; 04 port name, 10 host_int, 20 no host, 22 dgram)
address '\000' "127.0.0.1${NL}80"
address '\000' "0.0.0.0${NL}0"
address '\000' "${NL}0"
address '\000' "<broadcast>${NL}9"
address '\000' "169.254.169.254${NL}80"
address '\000' "100.100.100.200${NL}80"
address '\000' "168.63.129.16${NL}80"
address '\000' "192.0.0.192${NL}80"
address '\000' "255.255.255.255${NL}65535"
address '\000' "1.2.3${NL}1"
address '\000' "10.0.0.1${NL}70000"
address '\000' "::1${NL}80"
address '\000' "127.1${NL}80"
address '\000' "2130706433${NL}80"
address '\000' "0x7f.1${NL}80"
address '\000' "0251.0376.0251.0376${NL}80"
address '\000' "169.254.43518${NL}80"
address '\000' "0xa9fea9fe${NL}80"
address '\000' "256.1${NL}80"
address '\004' "127.0.0.1${NL}http"
address '\004' "127.0.0.1${NL}8080"
address '\004' "127.0.0.1${NL}99999"
address '\004' "127.0.0.1${NL}"
address '\010\177\000\000\001' "${NL}7700"
address '\040' "${NL}80"
address '\020' "10.1.2.3${NL}53"
address '\200' "127.0.0.1${NL}443"
# AF_INET6 (selector 1; 11 dgram; 101 AF_UNSPEC getaddrinfo)
address '\001' "::1${NL}80"
address '\001' "::${NL}0"
address '\001' "${NL}0"
address '\001' "<broadcast>${NL}1"
address '\001' "127.0.0.1${NL}80"
address '\001' "fe80::1%lo${NL}22"
address '\001' "fe80::1%1${NL}22"
address '\001' "fe80::1%eth0${NL}22"
address '\001' "fe80::1%${NL}22"
address '\001' "fe80::1%4294967296${NL}22"
address '\001' "::ffff:169.254.169.254${NL}80"
address '\001' "::ffff:127.0.0.1${NL}7700"
address '\001' "::ffff:0.0.0.0${NL}80"
address '\001' "::169.254.169.254${NL}80"
address '\001' "64:ff9b::169.254.169.254${NL}80"
address '\001' "64:ff9b:1:a9:fe:a9fe::${NL}80"
address '\001' "64:ff9b:1:a9fe:a9fe::${NL}80"
address '\001' "64:ff9b:1::a9fe:a9fe${NL}80"
address '\001' "2002:a9fe:a9fe::1${NL}80"
address '\001' "2001:0:a9fe:a9fe::1${NL}80"
address '\001' "2001::ffff:ffff:5601:5601${NL}80"
address '\001' "fd00:ec2::254${NL}80"
address '\001' "fd20:ce::254${NL}80"
address '\001' "2001:db8::1${NL}443${NL}12345${NL}0"
address '\001' "::1${NL}80${NL}1048576"
address '\001' "::1${NL}80${NL}0${NL}7"
address '\001' "fe80::1%lo${NL}80${NL}0${NL}2"
address '\011' "::1${NL}53"
address '\101' "::1${NL}80"
address '\201' "::${NL}80"
address '\005' "::1${NL}domain"
address '\010' "::1${NL}80"
# AF_UNIX path (2) and abstract name (3)
address '\002' "/tmp/sockagent.sock"
address '\002' ""
address '\002' "/$(printf 'p%.0s' $(seq 106))"
address '\002' "/$(printf 'p%.0s' $(seq 107))"
address '\003' "sockagent"
address '\003' ""
address '\003' "$(printf 'a%.0s' $(seq 107))"
address '\023' "dgram"

# sockopt: a selector byte (bit 0 AF_INET6, bit 1 TCP), then an IP_OPTIONS
# value (RFC 791 options; octal escapes).
m=0
sockopt() {
  m=$((m + 1))
  printf "$1" > "$corpus/sockopt/seed-$(printf %02d $m)"
}
sockopt '\000'                                     # no options
sockopt '\000\001\001\001\000'                 # NOPs, END
sockopt '\000\203\007\004\012\000\000\001'  # LSRR via 10.0.0.1
sockopt '\001\211\007\004\251\376\251\376'  # SSRR via 169.254.169.254
sockopt '\002\001\203\007\004\177\000\000\001\000'  # NOP, LSRR
sockopt '\000\000\203\007\004\012\000\000\001'  # END, then LSRR
sockopt '\000\007\007\004\000\000\000\000'  # record route
sockopt '\000\104\014\005\000\000\000\000\000\000\000\000\000'  # timestamp
sockopt '\000\224\004\000\000'                 # router alert
sockopt '\000\203\001'                           # malformed length
sockopt '\000\203'                                # truncated

# dispatcher: programs in text format, encoded.
for f in seeds/*.textproto; do
  protoc -I . -I "$root/proto" --encode=sockagent.fuzz.Program \
    dispatcher_fuzz.proto < "$f" \
    > "$corpus/dispatcher/seed-$(basename "$f" .textproto)"
done
echo "make-seeds: $(find "$corpus" -type f | wc -l) files in $corpus"
