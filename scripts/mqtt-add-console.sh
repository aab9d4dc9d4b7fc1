#!/usr/bin/env bash
# Gives a console (or, with --gateway, a gateway) its own MQTT user in mosquitto's password file.
#
#   scripts/mqtt-add-console.sh [options] DEVICE-ID
#   scripts/mqtt-add-console.sh --gateway [options] NAME
#
#   --file PASSWD    password file (default deploy/mosquitto/passwd; made 0600 if missing)
#   --acl ACL        ACL file a --gateway block goes to (default deploy/mosquitto/acl)
#   --rotate         set a new password even when the user exists (password rotation)
#   --broker URL     broker URL to print in the instructions (default mqtts://<this host>:8883)
#   --prefix P       topic root to print (default msc/v1; the shipped ACL is written for msc/v1)
#
# The password is $MQTT_NEW_PASSWORD when set, else 24 random bytes (base64url). It is printed once, here, and
# is kept nowhere but in the console's (or gateway's) own configuration: mosquitto keeps only a salted hash.
# It reaches mosquitto_passwd on its standard input, never on a command line (which `ps` shows).
#
# Idempotent: a user that exists is left as it is (exit 0) unless --rotate; a gateway's ACL block is added
# only when missing. A console's user name is its device id (the ACL's %u patterns rely on it), so the id must
# be one the gateway accepts: 1-64 of [A-Za-z0-9._-], starting with a letter or digit, and not `gateway`.
# Mosquitto reads the files again on SIGHUP: `docker compose kill -s HUP mosquitto`.
set -euo pipefail

file="deploy/mosquitto/passwd"
acl="deploy/mosquitto/acl"
gateway=false
rotate=false
broker="mqtts://$(hostname -f 2>/dev/null || hostname):8883"
prefix="msc/v1"
name=""
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --file) file="$2"; shift 2 ;;
    --acl) acl="$2"; shift 2 ;;
    --gateway) gateway=true; shift ;;
    --rotate) rotate=true; shift ;;
    --broker) broker="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "mqtt-add-console: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$name" ] || { echo "mqtt-add-console: one name at a time" >&2; exit 2; }; name="$1"; shift ;;
  esac
done
[ -n "$name" ] || { usage >&2; exit 2; }

# The gateway's isValidDeviceId (src/protocol/types.ts). Gateway users follow the same grammar: a user name with
# `+`, `#` or `/` would break the ACL's %u patterns, and `:` the password file.
if ! [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || [ "$name" = "gateway" ]; then
  what=$([ "$gateway" = true ] && echo "gateway name" || echo "device id")
  echo "mqtt-add-console: invalid $what '$name': 1-64 of [A-Za-z0-9._-], starting with a letter or digit," \
    "and not 'gateway'" >&2
  exit 2
fi
command -v mosquitto_passwd >/dev/null || {
  echo "mqtt-add-console: mosquitto_passwd not found (Debian/Ubuntu: apt-get install mosquitto)" >&2; exit 1; }

kind=$([ "$gateway" = true ] && echo gateway || echo console)
if [ ! -e "$file" ]; then
  mkdir -p "$(dirname "$file")"
  (umask 077; : >"$file")
fi
exists=false
if cut -d: -f1 "$file" | grep -qxF -- "$name"; then exists=true; fi

add_gateway_acl() {
  # A `user` line starts that user's block; blocks sit after the global patterns, so appending is safe.
  if grep -qxF -- "user $name" "$acl"; then return; fi
  printf '\nuser %s\ntopic read %s/#\ntopic write %s/+/cmd\n' "$name" "$prefix" "$prefix" >>"$acl"
  echo "added an ACL block for gateway '$name' to $acl"
}

if [ "$exists" = true ] && [ "$rotate" = false ]; then
  echo "$kind '$name' already has a user in $file: nothing changed (--rotate sets a new password)"
  [ "$gateway" = true ] && add_gateway_acl
  exit 0
fi

password="${MQTT_NEW_PASSWORD:-}"
if [ -z "$password" ]; then
  password="$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
fi
printf '%s\n%s\n' "$password" "$password" | mosquitto_passwd "$file" "$name" >/dev/null
chmod go-rwx "$file" 2>/dev/null || true
[ "$gateway" = true ] && add_gateway_acl

verb=$([ "$exists" = true ] && echo "new password for" || echo "added")
echo "$verb $kind '$name' in $file"
echo "reload the broker: docker compose kill -s HUP mosquitto   (or: systemctl reload mosquitto)"
echo
if [ "$gateway" = true ]; then
  cat <<TXT
Configure the gateway '$name' (environment, or the same keys under mqtt: in its config file):
  MSC_MQTT=$broker
  MSC_MQTT_USERNAME=$name
  MSC_MQTT_PASSWORD=$password        (or put it in a file and set MSC_MQTT_PASSWORD_FILE)
  MSC_MQTT_CA=/path/to/ca.crt        (the CA that signed the broker's certificate)
It may read everything under $prefix/ and publish $prefix/+/cmd.
TXT
else
  cat <<TXT
Configure the console '$name':
  broker:     $broker   (TLS; trust the CA certificate ca.crt from scripts/mqtt-tls-certs.sh)
  username:   $name
  password:   $password
  client id:  $name     (the broker uses the user name as the client id anyway)
  publishes:  $prefix/$name/{hello,status,telemetry,state,event,ack}   (last will: $prefix/$name/status)
  subscribes: $prefix/$name/cmd
TXT
fi
echo "The password is shown only now; mosquitto keeps only its hash."
