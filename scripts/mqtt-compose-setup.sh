#!/usr/bin/env bash
# Prepares the broker files docker-compose.yml mounts, from the passwords in .env:
#   deploy/mosquitto/passwd   users msc-gateway-1 (MQTT_GATEWAY_PASSWORD), WARDA-0001 (MQTT_SIM_WARDA_PASSWORD)
#                             and WARDB-0001 (MQTT_SIM_WARDB_PASSWORD), the demo consoles of `--profile demo`
#   deploy/mosquitto/certs/   a CA and a server certificate for mosquitto, localhost and 127.0.0.1, unless present
#                             (other names: scripts/mqtt-tls-certs.sh NAME ...)
# Run it after `cp .env.example .env` and after every password change in .env; it is safe to run again.
#
#   scripts/mqtt-compose-setup.sh [ENV-FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
env_file="${1:-.env}"
[ -f "$env_file" ] || { echo "mqtt-compose-setup: $env_file not found (cp .env.example .env, then change every password)" >&2; exit 1; }

value() {
  local v
  v="$(grep -E "^$1=" "$env_file" | tail -n 1 | cut -d= -f2-)"
  [ -n "$v" ] || { echo "mqtt-compose-setup: $1 is not set in $env_file" >&2; exit 1; }
  case "$v" in change-me*) echo "mqtt-compose-setup: warning: $1 is still the example value" >&2 ;; esac
  printf '%s' "$v"
}

add() { # NAME VAR [--gateway]
  local pw
  pw="$(value "$2")"
  MQTT_NEW_PASSWORD="$pw" scripts/mqtt-add-console.sh --rotate ${3:-} "$1" | sed -n 1p   # the rest prints the password
}
add msc-gateway-1 MQTT_GATEWAY_PASSWORD --gateway
add WARDA-0001 MQTT_SIM_WARDA_PASSWORD
add WARDB-0001 MQTT_SIM_WARDB_PASSWORD

if [ -s deploy/mosquitto/certs/server.crt ] && [ -s deploy/mosquitto/certs/server.key ]; then
  echo "TLS: keeping deploy/mosquitto/certs/server.crt"
else
  scripts/mqtt-tls-certs.sh mosquitto localhost 127.0.0.1
fi
# The broker reads its password file and key as its own user (uid 1883 in the eclipse-mosquitto image).
if [ "$(id -u)" = 0 ]; then
  chown 1883 deploy/mosquitto/passwd deploy/mosquitto/certs/server.key
else
  echo "now: sudo chown 1883 deploy/mosquitto/passwd deploy/mosquitto/certs/server.key  (mosquitto's uid in its image)"
fi
