#!/usr/bin/env bash
# Makes a private CA and a server certificate for the mosquitto TLS listener (8883).
#
#   scripts/mqtt-tls-certs.sh [--dir DIR] [--days N] [NAME ...]
#
# NAME: every host name or IP address clients use to reach the broker (the certificate's subjectAltName).
# Default: mosquitto (the compose service), localhost, 127.0.0.1. Add the broker's ward name, e.g.
#   scripts/mqtt-tls-certs.sh mosquitto broker.ward3.example 10.20.0.5
# DIR (default deploy/mosquitto/certs) gets ca.crt, ca.key, server.crt, server.key. ca.crt goes to every client
# (gateway: mqtt.ca / MSC_MQTT_CA; console: its CA setting); ca.key signs the next server certificate: keep it
# off the broker host if you can. An existing CA is reused, so clients keep trusting a renewed server certificate.
# Nothing here is committed: deploy/mosquitto/certs/ is in .gitignore.
set -euo pipefail

dir="deploy/mosquitto/certs"
days=825
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "mqtt-tls-certs: unknown option $1" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(mosquitto localhost 127.0.0.1)
command -v openssl >/dev/null || { echo "mqtt-tls-certs: openssl is not installed" >&2; exit 1; }

mkdir -p "$dir"
umask 077
san=""
for n in "${names[@]}"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san="${san%,}"

if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.crt" ]; then
  openssl req -x509 -new -newkey rsa:3072 -nodes -sha256 -days 3650 \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/CN=msc-gateway MQTT CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "made a new CA: $dir/ca.crt (give it to the gateway and every console)"
else
  echo "reusing the CA in $dir"
fi

openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$dir/server.key" -out "$dir/server.csr" \
  -subj "/CN=${names[0]}" 2>/dev/null
ext="$(mktemp)"
trap 'rm -f "$ext" "$dir/server.csr"' EXIT
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
  "$san" >"$ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days "$days" -sha256 -extfile "$ext" -out "$dir/server.crt" 2>/dev/null
# The CA certificate is public; clients running as another user (the gateway image's `node`) must read it.
chmod 0644 "$dir/ca.crt" "$dir/server.crt"
echo "made $dir/server.crt for $san (valid $days days)"
echo "mosquitto reads server.key after dropping to its own user (uid 1883 in the eclipse-mosquitto image):"
echo "  sudo chown 1883 $dir/server.key    # keeps it 0600 and readable by the broker only"
